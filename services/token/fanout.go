package token

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
)

// fanOutReserve is the time a request over many tokens (migration, bulk
// transition) keeps before its deadline to answer: it starts no token
// later than that.
const fanOutReserve = 500 * time.Millisecond

// fanOut calls one with each token candidates yields, n at a time, so the
// committer packs their changes into groups. It stops taking tokens when
// the deadline is near and reports whether it got through all of them.
func fanOut(ctx context.Context, n int, candidates func(yield func(*flow.Token) bool) error, one func(*flow.Token)) (complete bool, err error) {
	work := make(chan *flow.Token)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				one(t)
			}
		}()
	}
	complete = true
	err = candidates(func(t *flow.Token) bool {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < fanOutReserve {
			complete = false
			return false
		}
		work <- t
		return true
	})
	close(work)
	wg.Wait()
	return complete, err
}

// rawReply encodes a reply that a routed request passes on as it is.
func rawReply(v any, what string) (*json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fail.Wrap(fail.Internal, err, "encode "+what)
	}
	raw := json.RawMessage(b)
	return &raw, nil
}
