package token

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Bulk transitions: the tokens are found like a search (the bulk's place
// and filter, see search.go), then each is fired as a fire request of its
// own — guards, compare-and-swap, the bulk's idempotency key — with
// bulkWorkers in flight, so the committer commits them in groups (one
// atomic batch per group). A bulk_progress event reports every
// progressEvery tokens and the end.

const (
	bulkWorkers   = 64
	progressEvery = 1000
)

func (s *Service) bulk(ctx context.Context, r *wire.BulkTransitionRequest) (*json.RawMessage, error) {
	return route(ctx, s.writers, r.WorkflowID, opBulk, r, s.bulkHere)
}

func (s *Service) bulkHere(ctx context.Context, r *wire.BulkTransitionRequest) (*json.RawMessage, error) {
	q, err := s.newQuery(ctx, r.WorkflowID)
	if err != nil {
		return nil, err
	}
	f := wire.TokenFilter{WorkflowIDs: []string{r.WorkflowID}, Places: []string{r.FromPlace}}
	if r.Filter != nil {
		f.And = []wire.TokenFilter{*r.Filter}
	}
	if err := q.check(&f); err != nil {
		return nil, err
	}
	b := &bulkRun{s: s, r: r, res: &wire.BulkResult{DryRun: r.DryRun, Errors: []string{}, Outcomes: []wire.BulkOutcome{}}, reasons: map[string]bool{}}
	complete, err := fanOut(ctx, bulkWorkers, func(yield func(*flow.Token) bool) error {
		_, err := s.searchWorkflow(ctx, r.WorkflowID, &f, "", 0, yield)
		return err
	}, func(t *flow.Token) { b.one(ctx, t) })
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.res.Complete = complete
	b.res.Success = complete && b.res.FailedCount == 0
	b.mu.Unlock()
	b.progress(ctx, true)
	return rawReply(b.res, "bulk result")
}

// bulkRun is one bulk transition in progress.
type bulkRun struct {
	s       *Service
	r       *wire.BulkTransitionRequest
	mu      sync.Mutex // guards res, reasons and reported
	res     *wire.BulkResult
	reasons map[string]bool
	sent    int // progress events sent
}

// one fires the transition on one token (or, dry, checks that it could).
func (b *bulkRun) one(ctx context.Context, t *flow.Token) {
	fr := &wire.FireRequest{TokenID: t.ID, TransitionID: b.r.TransitionID, NewPlace: b.r.ToPlace, Data: b.r.Data,
		IdempotencyKey: b.r.IdempotencyKey, TriggeredBy: b.r.TriggeredBy}
	var err error
	o := wire.BulkOutcome{TokenID: t.ID}
	if b.r.DryRun {
		var m *flow.Machine
		if m, err = b.s.store.Machine(ctx, t.WorkflowID, t.WorkflowVersion); err == nil {
			var next *flow.Token
			next, _, err = m.FireContext(ctx, t, flow.FireRequest{TransitionID: fr.TransitionID, NewPlace: fr.NewPlace, Data: fr.Data})
			if err == nil {
				o.ToPlace = next.Place
			}
		}
	} else {
		b.s.store.Hint(t) // saves the fire its read
		var raw *json.RawMessage
		if raw, err = b.s.fireHere(ctx, fr); err == nil {
			var moved struct{ Place string }
			_ = json.Unmarshal(*raw, &moved)
			o.ToPlace = moved.Place
		}
	}
	if err != nil {
		o.Error, o.Code = err.Error(), fail.KindOf(err).String()
	}
	b.record(ctx, o)
}

func (b *bulkRun) record(ctx context.Context, o wire.BulkOutcome) {
	b.mu.Lock()
	b.res.ProcessedCount++
	if o.Error != "" {
		b.res.FailedCount++
		if reason := o.Code + ": " + o.Error; len(b.reasons) < 100 && !b.reasons[o.Code] {
			b.reasons[o.Code] = true
			b.res.Errors = append(b.res.Errors, reason)
		}
	}
	if len(b.res.Outcomes) < wire.MaxMigrationOutcomes {
		b.res.Outcomes = append(b.res.Outcomes, o)
	}
	due := b.res.ProcessedCount%progressEvery == 0
	b.mu.Unlock()
	if due {
		b.progress(ctx, false)
	}
}

// progress stores a bulk_progress event (best effort: a lost one is
// followed by the next).
func (b *bulkRun) progress(ctx context.Context, done bool) {
	if b.r.DryRun {
		return
	}
	b.mu.Lock()
	b.sent++
	n := b.sent
	p := &wire.BulkProgress{IdempotencyKey: b.r.IdempotencyKey, Processed: b.res.ProcessedCount, Failed: b.res.FailedCount, Done: done && b.res.Complete}
	b.mu.Unlock()
	ev := wire.Event{EventType: wire.EventBulkProgress, WorkflowID: b.r.WorkflowID, TransitionID: b.r.TransitionID,
		Place: b.r.FromPlace, Timestamp: b.s.now(), TriggeredBy: optional(b.r.TriggeredBy), Progress: p}
	id := fmt.Sprintf("bulk:%s:%s:%d:%d", b.r.IdempotencyKey, ev.Timestamp.Format(time.RFC3339Nano), n, p.Processed)
	_ = b.s.store.AppendEvent(context.WithoutCancel(ctx), ev, id)
}
