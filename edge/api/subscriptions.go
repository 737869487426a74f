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
// current state. Each subscriber has its own JetStream ordered consumer,
// removed when the subscription ends.
func (a *API) tokenUpdates(ctx context.Context, p gql.Params) (any, error) {
	ch, err := a.c.WatchToken(ctx, str(p.Args, "tokenId"))
	if err != nil {
		return nil, err
	}
	return pump(ctx, a.open, "tokenUpdates", ch, func(v any) any { return v }), nil
}

// workflowEvents streams a workflow's events as they are committed,
// resuming after afterSequence when given.
func (a *API) workflowEvents(ctx context.Context, p gql.Params) (any, error) {
	after, err := sequenceArg(p.Args, "afterSequence")
	if err != nil {
		return nil, err
	}
	ch, err := a.c.WatchEvents(ctx, str(p.Args, "workflowId"), after, stringList(p.Args["eventTypes"]))
	if err != nil {
		return nil, err
	}
	return pump(ctx, a.open, "workflowEvents", ch, event), nil
}

// placeEvents streams the events that enter, leave or happen in one place.
func (a *API) placeEvents(ctx context.Context, p gql.Params) (any, error) {
	place := str(p.Args, "placeId")
	after, err := sequenceArg(p.Args, "afterSequence")
	if err != nil {
		return nil, err
	}
	ch, err := a.c.WatchEvents(ctx, str(p.Args, "workflowId"), after, nil)
	if err != nil {
		return nil, err
	}
	in := make(chan wire.EventRecord)
	go func() {
		defer close(in)
		for rec := range ch {
			e := rec.Event
			if e.Place == place || e.FromPlace == place || e.ToPlace == place {
				select {
				case in <- rec:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return pump(ctx, a.open, "placeEvents", (<-chan wire.EventRecord)(in), event), nil
}

// event shapes an event for the WorkflowEvent type.
func event(v any) any {
	rec := v.(wire.EventRecord)
	e := rec.Event
	return map[string]any{
		"eventType": e.EventType, "workflowId": e.WorkflowID, "tokenId": optional(e.TokenID),
		"place": optional(e.Place), "fromPlace": optional(e.FromPlace), "toPlace": optional(e.ToPlace),
		"transitionId": optional(e.TransitionID), "timestamp": e.Timestamp, "triggeredBy": e.TriggeredBy,
		"natsSequence": strconv.FormatUint(e.NatsSequence, 10), "revision": optionalInt(e.Revision),
		"sequence": strconv.FormatUint(rec.Sequence, 10),
	}
}

func optionalInt(n uint64) any {
	if n == 0 {
		return nil
	}
	return int64(n)
}

// pump turns a typed channel into the executor's source stream and counts
// it as an open subscription while it lasts.
func pump[T any](ctx context.Context, open metrics.Gauge, field string, in <-chan T, shape func(any) any) <-chan any {
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
