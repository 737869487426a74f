package api

import (
	"context"
	"strconv"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// tokenUpdates streams the token each time it changes, starting with its
// current state. Every subscription of a workflow shares one read of its
// stream (edge/live).
func (a *API) tokenUpdates(ctx context.Context, p gql.Params) (any, error) {
	id := str(p.Args, "tokenId")
	if err := (&wire.GetTokenRequest{ID: id}).Validate(); err != nil {
		return nil, err
	}
	ch, err := a.live.Token(ctx, a.client(ctx), id)
	if err != nil {
		return nil, err
	}
	return pump(ctx, a.open, "tokenUpdates", ch, func(v any) any { return v }), nil
}

// workflowEvents streams a workflow's events as they are committed,
// resuming after afterSequence when given.
func (a *API) workflowEvents(ctx context.Context, p gql.Params) (any, error) {
	types := stringList(p.Args["eventTypes"])
	return a.watchEvents(ctx, p, "workflowEvents", &wire.HistoryRequest{WorkflowID: str(p.Args, "workflowId"), EventTypes: types},
		func(e *wire.Event) bool { return wire.TypeIn(types, e.EventType) }, event)
}

// placeEvents streams the events that enter, leave or happen in one place.
func (a *API) placeEvents(ctx context.Context, p gql.Params) (any, error) {
	wf, place := str(p.Args, "workflowId"), str(p.Args, "placeId")
	if err := (&wire.TokensInPlaceRequest{WorkflowID: wf, Place: place}).Validate(); err != nil {
		return nil, err
	}
	return a.watchEvents(ctx, p, "placeEvents", &wire.HistoryRequest{WorkflowID: wf}, func(e *wire.Event) bool {
		return e.Place == place || e.FromPlace == place || e.ToPlace == place
	}, event)
}

// bulkProgress streams the bulk_progress events of one bulk transition.
func (a *API) bulkProgress(ctx context.Context, p gql.Params) (any, error) {
	key := str(p.Args, "idempotencyKey")
	r := &wire.HistoryRequest{WorkflowID: str(p.Args, "workflowId"), EventTypes: []string{wire.EventBulkProgress}}
	return a.watchEvents(ctx, p, "bulkProgress", r, func(e *wire.Event) bool {
		return e.EventType == wire.EventBulkProgress && e.Progress != nil && e.Progress.IdempotencyKey == key
	}, func(v any) any {
		rec, ok := v.(wire.EventRecord)
		if !ok {
			return v // an error ending the stream
		}
		pr := rec.Event.Progress
		return map[string]any{"idempotencyKey": pr.IdempotencyKey, "processed": pr.Processed, "failed": pr.Failed, "done": pr.Done,
			"timestamp": rec.Event.Timestamp, "sequence": strconv.FormatUint(rec.Sequence, 10)}
	})
}

// watchEvents validates r, then streams the events keep accepts, shaped by shape.
func (a *API) watchEvents(ctx context.Context, p gql.Params, field string, r *wire.HistoryRequest, keep func(*wire.Event) bool, shape func(any) any) (any, error) {
	after, err := sequenceArg(p.Args, "afterSequence")
	if err != nil {
		return nil, err
	}
	r.AfterSequence = after
	if err := r.Validate(); err != nil {
		return nil, err
	}
	c := a.client(ctx)
	wf, err := c.GetWorkflow(ctx, r.WorkflowID) // in the caller's scope: the full id, or NOT_FOUND
	if err != nil {
		return nil, err
	}
	ch, err := a.live.Events(ctx, c, wf.ID, after, keep)
	if err != nil {
		return nil, err
	}
	return pump(ctx, a.open, field, ch, shape), nil
}

// event shapes an event for the WorkflowEvent type.
func event(v any) any {
	rec, ok := v.(wire.EventRecord)
	if !ok {
		return v // an error ending the stream
	}
	e := rec.Event
	return map[string]any{
		"eventType": e.EventType, "workflowId": e.WorkflowID, "tokenId": optional(e.TokenID),
		"place": optional(e.Place), "fromPlace": optional(e.FromPlace), "toPlace": optional(e.ToPlace),
		"transitionId": optional(e.TransitionID), "timestamp": e.Timestamp, "triggeredBy": e.TriggeredBy, "triggeredByClaim": e.TriggeredByClaim,
		"natsSequence": strconv.FormatUint(e.NatsSequence, 10), "revision": optionalInt(e.Revision),
		"sequence": strconv.FormatUint(rec.Sequence, 10), "workflowVersion": optionalInt(uint64(e.WorkflowVersion)),
	}
}

func optionalInt(n uint64) any {
	if n == 0 {
		return nil
	}
	return int64(n)
}

// pump turns a channel into the executor's source stream and counts it as
// an open subscription while it lasts.
func pump(ctx context.Context, open metrics.Gauge, field string, in <-chan any, shape func(any) any) <-chan any {
	out := make(chan any)
	open.Add(1, field)
	go func() {
		defer open.Add(-1, field)
		defer close(out)
		for v := range in {
			select {
			case out <- shape(v):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func sequenceArg(args map[string]any, name string) (uint64, error) {
	s := str(args, name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fail.New(fail.BadInput, "%s must be a stream sequence (a decimal number)", name)
	}
	return n, nil
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
