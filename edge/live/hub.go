// Package live streams committed changes to the edge's GraphQL
// subscriptions. A Hub reads each watched workflow's stream once — one
// JetStream ordered consumer per workflow and kind (events, token states)
// in this process, however many subscriptions watch it — and fans each
// message out to the subscriptions it matches.
//
// Fan-out never waits for a subscriber: each subscription queues what it
// has not taken yet, up to MaxQueuedBytes, and one that falls further
// behind is ended with a RESOURCE_EXHAUSTED error while the feed and every
// other subscription go on. A subscription that resumes after a sequence
// first replays the stored events through the event service, with the live
// messages that arrive meanwhile held (and dropped and read again from the
// store if they overflow), then goes live; duplicates are removed by stream
// sequence, so nothing is lost or repeated at the seam.
package live

import (
	"context"
	"errors"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Options bounds the live subscriptions of one edge process. The zero
// value is useful.
type Options struct {
	// MaxPerWorkflow bounds the live subscriptions of one workflow; more
	// are refused with RESOURCE_EXHAUSTED. Default 1000.
	MaxPerWorkflow int
	// MaxQueuedBytes bounds what one subscription may fall behind by (the
	// stored size of the messages queued for it); a subscription further
	// behind is ended with RESOURCE_EXHAUSTED. Default 4 MiB.
	MaxQueuedBytes int
}

// Defaults of Options.
const (
	DefaultMaxPerWorkflow = 1000
	DefaultMaxQueuedBytes = 4 << 20
)

func (o Options) withDefaults() Options {
	if o.MaxPerWorkflow <= 0 {
		o.MaxPerWorkflow = DefaultMaxPerWorkflow
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	return o
}

// Hub serves live subscriptions. It is safe for concurrent use.
type Hub struct {
	js      jetstream.JetStream // on a connection of its own: no subscriber can starve request replies
	opts    Options
	feeds   metrics.Gauge
	refused metrics.Counter
	reread  metrics.Counter

	mu    sync.Mutex
	feed  map[feedKey]*feed // guarded by mu
	count map[string]int    // live subscriptions per workflow, guarded by mu
}

// New returns a Hub reading streams through js, recording its feeds and
// refusals in reg. Replays and token reads go through the services with
// each subscriber's own client, in its tenant scope.
func New(js jetstream.JetStream, o Options, reg *metrics.Registry) *Hub {
	return &Hub{js: js, opts: o.withDefaults(), feed: map[feedKey]*feed{}, count: map[string]int{},
		feeds:   reg.Gauge("cb_live_feeds", "Workflow streams read for live subscriptions (one consumer each).", "kind"),
		refused: reg.Counter("cb_live_refused_total", "Live subscriptions refused or ended by a limit.", "reason"),
		reread:  reg.Counter("cb_live_rereads_total", "Replays read the store again because the live events held meanwhile overflowed.")}
}

// Events streams workflow wf's events that keep accepts: those after
// stream sequence after when it is set, else those committed from now on.
// The channel yields wire.EventRecord values, then an error if the stream
// ends for any reason but ctx; it closes when ctx ends.
func (h *Hub) Events(ctx context.Context, c *client.Client, wf string, after uint64, keep func(*wire.Event) bool) (<-chan any, error) {
	s := newSub(h.opts.MaxQueuedBytes, after > 0, func(it *item) bool {
		ev, err := it.event()
		return err == nil && keep(ev)
	})
	f, err := h.join(ctx, feedKey{wf, kindEvents}, s)
	if err != nil {
		return nil, err
	}
	return h.serve(ctx, f, s, func(emit func(any) bool) (uint64, error) {
		if after == 0 {
			return 0, nil
		}
		return h.replay(ctx, c, wf, after, s, keep, emit)
	}), nil
}

// Token streams a token's state: its current state, then every change.
// The channel yields *flow.Token values, then an error if the stream ends
// for any reason but ctx; it closes when ctx ends.
func (h *Hub) Token(ctx context.Context, c *client.Client, tokenID string) (<-chan any, error) {
	first, err := c.GetToken(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	s := newSub(h.opts.MaxQueuedBytes, false, func(it *item) bool {
		return !it.deleted && it.tokenID == tokenID
	})
	f, err := h.join(ctx, feedKey{first.WorkflowID, kindTokens}, s)
	if err != nil {
		return nil, err
	}
	return h.serve(ctx, f, s, func(emit func(any) bool) (uint64, error) {
		cur, err := c.GetToken(ctx, tokenID) // read after joining: no change falls between
		if err != nil {
			return 0, err
		}
		emit(cur)
		return cur.NatsSequence, nil
	}), nil
}

// serve runs a joined subscription: catchUp emits what came before it
// went live and returns the last stream sequence it covered; then the
// queued and live messages follow.
func (h *Hub) serve(ctx context.Context, f *feed, s *sub, catchUp func(emit func(any) bool) (uint64, error)) <-chan any {
	out := make(chan any)
	emit := func(v any) bool {
		select {
		case out <- v:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer close(out)
		defer h.leave(f, s)
		last, err := catchUp(emit)
		if err == nil {
			err = s.live(ctx, last, emit)
		}
		if err != nil && ctx.Err() == nil {
			if fail.KindOf(err) == fail.ResourceExhausted {
				h.refused.Inc("too_slow")
			}
			emit(err)
		}
	}()
	return out
}

// replay emits the stored events after sequence after, page by page, until
// the store has no more and no live message was lost meanwhile.
func (h *Hub) replay(ctx context.Context, c *client.Client, wf string, after uint64, s *sub, keep func(*wire.Event) bool, emit func(any) bool) (uint64, error) {
	last := after
	for {
		page, err := c.Replay(ctx, &wire.HistoryRequest{WorkflowID: wf, AfterSequence: last, First: wire.MaxPageSize})
		if err != nil {
			return 0, err
		}
		for _, rec := range page.Items {
			if keep(&rec.Event) && !emit(rec) {
				return 0, ctx.Err()
			}
			last = rec.Sequence
		}
		if page.Next != 0 {
			last = page.Next
			continue
		}
		if s.caughtUp() {
			return last, nil
		}
		h.reread.Inc()
	}
}

// join adds s to the feed of key, starting the feed if it is the first.
func (h *Hub) join(ctx context.Context, key feedKey, s *sub) (*feed, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count[key.wf] >= h.opts.MaxPerWorkflow {
		h.refused.Inc("per_workflow")
		return nil, fail.New(fail.ResourceExhausted, "live subscription limit reached: at most %d per workflow on this edge", h.opts.MaxPerWorkflow)
	}
	f := h.feed[key]
	if f == nil || !f.add(s) { // none yet, or it ended (its stream failed): start one
		if f != nil {
			h.feeds.Add(-1, key.kind.String()) // the ended one leaves the map; its subscribers still leave it
		}
		var err error
		if f, err = startFeed(ctx, h.js, key, s); err != nil {
			return nil, err
		}
		h.feed[key] = f
		h.feeds.Add(1, key.kind.String())
	}
	h.count[key.wf]++
	return f, nil
}

// leave removes s from f, stopping f when s was the last.
func (h *Hub) leave(f *feed, s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count[f.key.wf]--; h.count[f.key.wf] == 0 {
		delete(h.count, f.key.wf)
	}
	if f.remove(s) == 0 {
		if h.feed[f.key] == f {
			delete(h.feed, f.key)
			h.feeds.Add(-1, f.key.kind.String())
		}
		f.stop()
	}
}

// notFound maps a missing stream to the workflow's NOT_FOUND.
func notFound(wf string, err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fail.New(fail.NotFound, "Workflow not found: %s", wf)
	}
	return err
}
