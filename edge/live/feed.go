package live

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// kind is what a feed reads of a workflow's stream.
type kind uint8

const (
	kindEvents kind = iota // workflows.<wf>.events.>
	kindTokens             // workflows.<wf>.places.*.tokens.*
)

func (k kind) String() string {
	if k == kindTokens {
		return "tokens"
	}
	return "events"
}

func (k kind) filter(wf string) string {
	if k == kindTokens {
		return subjects.AllTokens(wf)
	}
	return subjects.AllEvents(wf)
}

// feedKey names a feed: a workflow and what is read of it.
type feedKey struct {
	wf   string
	kind kind
}

// feed reads one workflow stream with an ordered consumer and offers each
// message to its subscriptions.
type feed struct {
	key  feedKey
	js   jetstream.JetStream
	cons jetstream.Consumer
	msgs jetstream.MessagesContext

	mu    sync.Mutex
	subs  map[*sub]struct{} // guarded by mu
	ended error             // why the feed stopped reading, guarded by mu
}

// inactiveThreshold removes a feed's consumer on the server when its edge
// went away without deleting it.
const inactiveThreshold = 10 * time.Second

// pullMaxBytes bounds what a feed's consumer holds in the edge before it
// is dispatched: twice the largest message a server accepts by default.
const pullMaxBytes = 16 << 20

// startFeed starts reading key's stream from its next message, with first
// already subscribed.
func startFeed(ctx context.Context, js jetstream.JetStream, key feedKey, first *sub) (*feed, error) {
	cons, err := js.OrderedConsumer(ctx, subjects.StreamName(key.wf), jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{key.kind.filter(key.wf)},
		DeliverPolicy:     jetstream.DeliverNewPolicy,
		InactiveThreshold: inactiveThreshold,
	})
	if err != nil {
		return nil, jserr.Classify(notFound(key.wf, err))
	}
	msgs, err := cons.Messages(jetstream.PullMaxBytes(pullMaxBytes))
	if err != nil {
		return nil, jserr.Classify(err)
	}
	f := &feed{key: key, js: js, cons: cons, msgs: msgs, subs: map[*sub]struct{}{first: {}}}
	go f.run()
	return f, nil
}

// run offers every message to every subscription until the feed stops.
// Offering never blocks, so a slow subscriber cannot hold the feed.
func (f *feed) run() {
	for {
		m, err := f.msgs.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return
		}
		if err != nil {
			f.end(fail.Wrap(fail.Unavailable, err, "live updates of workflow "+f.key.wf+" ended: "+err.Error()))
			return
		}
		it := newItem(f.key.kind, m)
		f.mu.Lock()
		for s := range f.subs {
			s.offer(it)
		}
		f.mu.Unlock()
	}
}

// end ends every subscription with err, and any added later.
func (f *feed) end(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended = err
	for s := range f.subs {
		s.end(err)
	}
}

// add subscribes s, or reports false when the feed has ended (the hub
// then starts a new one).
func (f *feed) add(s *sub) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended != nil {
		return false
	}
	f.subs[s] = struct{}{}
	return true
}

// remove removes s and returns how many subscriptions are left.
func (f *feed) remove(s *sub) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, s)
	return len(f.subs)
}

// stop stops reading and deletes the consumer.
func (f *feed) stop() {
	f.msgs.Stop()
	info := f.cons.CachedInfo()
	if info == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = f.js.DeleteConsumer(ctx, subjects.StreamName(f.key.wf), info.Name)
	}()
}
