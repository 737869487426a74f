package clustertest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// acked is the last acknowledged state of a token.
type acked struct {
	wf    string
	rev   uint64
	place string
}

// success is one acknowledged write: when it was sent and answered.
type success struct {
	wf         string
	start, end time.Time
}

// load runs writers on cycle workflows: each creates a token (with an
// idempotency key, so a create whose outcome is unknown can be retried
// onto the same token), fires it round the cycle a few times, then starts
// another. Every acknowledged result is recorded. A write that fails is
// settled by reading the token; the next fire pins the revision it read,
// so a write that did commit after all shows up as a CONFLICT and is
// settled again instead of firing twice.
//
// After every acknowledged write the token is read back at once, to count
// reads that do not see it (read-your-writes).
type load struct {
	t    testing.TB
	c    *client.Client
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	tokens   map[string]acked // token id → last acknowledged state
	oks      []success
	errs     map[string]int // error kind → count, during writes
	samples  []string       // a few error messages
	stale    []time.Time    // read-backs that did not see an acknowledged write
	staleMsg []string
	settled  int // writes settled by reading
}

// firesPerToken is how many fires a writer makes on a token before it
// creates the next one; it keeps histories short.
const firesPerToken = 6

func newLoad(t testing.TB, c *client.Client) *load {
	return &load{t: t, c: c, stop: make(chan struct{}), tokens: make(map[string]acked), errs: make(map[string]int)}
}

// run starts n writers on workflow wf.
func (l *load) run(wf string, n int) {
	for w := range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.writer(wf, fmt.Sprintf("%s-w%d", wf, w))
		}()
	}
}

// halt stops the writers and waits for them to settle what they hold.
func (l *load) halt() {
	close(l.stop)
	l.wg.Wait()
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *load) writer(wf, name string) {
	for i := 0; !l.stopped(); i++ {
		cur := l.create(wf, fmt.Sprintf("%s-%d", name, i))
		for f := 0; cur != nil && f < firesPerToken && !l.stopped(); f++ {
			cur = l.fire(cur)
		}
		if cur == nil {
			return
		}
	}
}

// create creates a token, retrying with the same idempotency key until it
// is acknowledged (so every token that exists is known to the load), or
// gives up after settleLimit.
func (l *load) create(wf, key string) *flow.Token {
	first := time.Now()
	for {
		start := time.Now()
		ctx, cancel := opCtx()
		tok, err := l.c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: wf, IdempotencyKey: key, TriggeredBy: "load"})
		cancel()
		if err == nil {
			l.ok(wf, start, tok)
			return tok
		}
		l.failed(err)
		if time.Since(first) > settleLimit {
			l.t.Errorf("create %s: not acknowledged within %v: %v", key, settleLimit, err)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settleLimit bounds how long a writer tries to learn a token's state.
const settleLimit = 30 * time.Second

// fire fires the next transition of the cycle on cur, pinned to cur's
// revision, and returns the token's state afterwards: the acknowledged
// one, or the one read to settle a failure.
func (l *load) fire(cur *flow.Token) *flow.Token {
	start := time.Now()
	ctx, cancel := opCtx()
	next, err := l.c.Fire(ctx, &wire.FireRequest{TokenID: cur.ID, TransitionID: cycleFires[cur.Place],
		ExpectedRevision: cur.Revision, TriggeredBy: "load"})
	cancel()
	if err == nil {
		l.ok(cur.WorkflowID, start, next)
		return next
	}
	l.failed(err)
	return l.settle(cur.ID)
}

// settle reads a token until the read succeeds.
func (l *load) settle(id string) *flow.Token {
	first := time.Now()
	for {
		ctx, cancel := opCtx()
		tok, err := l.c.GetToken(ctx, id)
		cancel()
		if err == nil {
			l.mu.Lock()
			l.settled++
			l.mu.Unlock()
			return tok
		}
		if time.Since(first) > settleLimit {
			l.t.Errorf("token %s: unreadable for %v: %v", id, settleLimit, err)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ok records an acknowledged write and reads the token back at once.
func (l *load) ok(wf string, start time.Time, tok *flow.Token) {
	end := time.Now()
	l.mu.Lock()
	l.oks = append(l.oks, success{wf: wf, start: start, end: end})
	if a, seen := l.tokens[tok.ID]; !seen || tok.Revision > a.rev {
		l.tokens[tok.ID] = acked{wf: wf, rev: tok.Revision, place: tok.Place}
	}
	l.mu.Unlock()

	ctx, cancel := opCtx()
	got, err := l.c.GetToken(ctx, tok.ID)
	cancel()
	switch {
	case errors.Is(err, fail.ErrNotFound):
		l.staleRead(fmt.Sprintf("token %s acknowledged at revision %d, read back: not found", tok.ID, tok.Revision))
	case err != nil: // the read itself failed (node going down): not a stale read
	case got.Revision < tok.Revision:
		l.staleRead(fmt.Sprintf("token %s acknowledged at revision %d in %s, read back at revision %d in %s",
			tok.ID, tok.Revision, tok.Place, got.Revision, got.Place))
	}
}

func (l *load) staleRead(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stale = append(l.stale, time.Now())
	if len(l.staleMsg) < 5 {
		l.staleMsg = append(l.staleMsg, msg)
	}
}

func (l *load) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := fail.KindOf(err).String()
	l.errs[k]++
	if len(l.samples) < 8 {
		l.samples = append(l.samples, k+": "+err.Error())
	}
}

// okCount counts acknowledged writes on wf sent after t0.
func (l *load) okCount(wf string, t0 time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.oks {
		if s.wf == wf && s.start.After(t0) {
			n++
		}
	}
	return n
}

// staleBefore counts stale read-backs before t0 and from t0 on.
func (l *load) staleBefore(t0 time.Time) (before, after int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.stale {
		if s.Before(t0) {
			before++
		} else {
			after++
		}
	}
	return before, after
}

// recovery is how long after t0 the n-th write on wf sent after t0 was
// answered: when writes flow again, not just trickle.
func (l *load) recovery(wf string, t0 time.Time, n int) (time.Duration, bool) {
	l.mu.Lock()
	var ends []time.Time
	for _, s := range l.oks {
		if s.wf == wf && s.start.After(t0) {
			ends = append(ends, s.end)
		}
	}
	l.mu.Unlock()
	if len(ends) < n {
		return 0, false
	}
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	return ends[n-1].Sub(t0), true
}

// outage measures the writes on wf around a failure that began at t0:
// gap is from the last write answered before t0 to the first answered
// write sent after t0; longest is the longest pause between two answered
// writes from a second before t0 on.
func (l *load) outage(wf string, t0 time.Time) (gap, longest time.Duration, at time.Time, err error) {
	l.mu.Lock()
	var ends []time.Time
	var lastBefore, firstAfter time.Time
	for _, s := range l.oks {
		if s.wf != wf {
			continue
		}
		ends = append(ends, s.end)
		if s.end.Before(t0) && s.end.After(lastBefore) {
			lastBefore = s.end
		}
		if s.start.After(t0) && (firstAfter.IsZero() || s.end.Before(firstAfter)) {
			firstAfter = s.end
		}
	}
	l.mu.Unlock()
	if lastBefore.IsZero() || firstAfter.IsZero() {
		return 0, 0, at, fmt.Errorf("no write on %s answered before (%v) or sent after (%v) the failure", wf, lastBefore, firstAfter)
	}
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(ends); i++ {
		if d := ends[i].Sub(ends[i-1]); ends[i].After(t0.Add(-time.Second)) && d > longest {
			longest, at = d, ends[i-1]
		}
	}
	return firstAfter.Sub(lastBefore), longest, at, nil
}

// timeline logs the answered writes per workflow in half-second slots
// around t0.
func (l *load) timeline(t0 time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slots := map[string]map[int]int{}
	lo, hi := 0, 0
	for _, s := range l.oks {
		if slots[s.wf] == nil {
			slots[s.wf] = map[int]int{}
		}
		i := int(s.end.Sub(t0).Truncate(500*time.Millisecond) / (500 * time.Millisecond))
		if s.end.Before(t0) {
			i--
		}
		slots[s.wf][i]++
		lo, hi = min(lo, i), max(hi, i)
	}
	for wf, m := range slots {
		line := ""
		for i := lo; i <= hi; i++ {
			if i == 0 {
				line += " |"
			}
			line += fmt.Sprintf(" %d", m[i])
		}
		l.t.Logf("writes on %s per 0.5 s (| marks t0):%s", wf, line)
	}
}

// report logs what the load saw.
func (l *load) report() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("load: %d acknowledged writes on %d tokens; errors by kind %v; %d settled by reading; %d stale read-backs",
		len(l.oks), len(l.tokens), l.errs, l.settled, len(l.stale))
	for _, s := range l.samples {
		l.t.Logf("  error: %s", s)
	}
	for _, s := range l.staleMsg {
		l.t.Logf("  stale: %s", s)
	}
}
