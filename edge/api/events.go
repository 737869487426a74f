package api

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// events reads stored events through the event service.
func (a *API) events(ctx context.Context, p gql.Params) (any, error) {
	after, err := sequenceArg(p.Args, "afterSequence")
	if err != nil {
		return nil, err
	}
	since, err := timeArg(p.Args, "since")
	if err != nil {
		return nil, err
	}
	until, err := timeArg(p.Args, "until")
	if err != nil {
		return nil, err
	}
	page, err := a.client(ctx).History(ctx, &wire.HistoryRequest{WorkflowID: str(p.Args, "workflowId"), TokenID: str(p.Args, "tokenId"),
		EventTypes: stringList(p.Args["eventTypes"]), AfterSequence: after, Since: since, Until: until, First: page(p.Args).First})
	if err != nil {
		return nil, err
	}
	out := make([]any, len(page.Items))
	for i, rec := range page.Items {
		out[i] = event(rec)
	}
	return out, nil
}

func timeArg(args map[string]any, name string) (time.Time, error) {
	s := str(args, name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fail.New(fail.BadInput, "%s must be an RFC 3339 time", name)
	}
	return wire.ClampEventTime(t), nil // "0001-01-01T00:00:00Z" would read as absent
}

func (a *API) workflowStats(ctx context.Context, p gql.Params) (any, error) {
	r := &wire.StatsRequest{WorkflowID: str(p.Args, "workflowId")}
	if n, ok := p.Args["windowMinutes"]; ok && n != nil {
		r.WindowMinutes = int(toInt(n))
	}
	st, err := a.client(ctx).Stats(ctx, r)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"workflowId": st.WorkflowID, "tokens": int64(st.Tokens), "events": int64(st.Events),
		"tokensPerPlace": counts(st.TokensPerPlace, "place"), "eventsPerType": counts(st.EventsPerType, "eventType"),
		"windowMinutes": int64(st.WindowMinutes), "transitionsInWindow": int64(st.TransitionsInWindow),
		"transitionsPerMinute": st.TransitionsPerMinute,
	}, nil
}

// counts turns a map into a list sorted by key.
func counts(m map[string]int, key string) []any {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = map[string]any{key: k, "count": int64(m[k])}
	}
	return out
}

func (a *API) eventSubscriptions(ctx context.Context, p gql.Params) (any, error) {
	list, err := a.client(ctx).Subscriptions(ctx, str(p.Args, "workflowId"))
	if err != nil {
		return nil, err
	}
	out := make([]any, len(list.Items))
	for i := range list.Items {
		out[i] = subscription(&list.Items[i])
	}
	return out, nil
}

func (a *API) createEventSubscription(ctx context.Context, p gql.Params) (any, error) {
	in, err := input[struct {
		wire.SubscribeRequest
		StartSequence string `json:"startSequence"`
	}](p.Args["input"])
	if err != nil {
		return nil, err
	}
	r := in.SubscribeRequest
	if in.StartSequence != "" {
		if r.StartSequence, err = strconv.ParseUint(in.StartSequence, 10, 64); err != nil {
			return nil, fail.New(fail.BadInput, "startSequence must be a stream sequence (a decimal number)")
		}
	}
	info, err := a.client(ctx).CreateSubscription(ctx, &r)
	if err != nil {
		return nil, err
	}
	return subscription(info), nil
}

func (a *API) deleteEventSubscription(ctx context.Context, p gql.Params) (any, error) {
	err := a.client(ctx).DeleteSubscription(ctx, str(p.Args, "workflowId"), str(p.Args, "name"))
	if fail.KindOf(err) == fail.NotFound {
		return false, nil
	}
	return err == nil, err
}

func subscription(s *wire.SubscriptionInfo) map[string]any {
	return map[string]any{
		"workflowId": s.WorkflowID, "name": s.Name, "stream": s.Stream, "consumer": s.Consumer, "filter": s.Filter,
		"maxDeliver": int64(s.MaxDeliver), "pending": int64(s.Pending), "ackPending": int64(s.AckPending),
		"redelivered": int64(s.Redelivered), "ackFloor": strconv.FormatUint(s.AckFloor, 10),
	}
}
