// Package api resolves the GraphQL schema in schema/ by calling the
// services over NATS with shared/client. It holds no state: every field is
// a request (or a per-request memoised one) to a service.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/edge/live"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// API resolves fields with a client of the services.
type API struct {
	c     *client.Client
	live  *live.Hub           // subscriptions
	open  metrics.Gauge       // subscriptions streaming now, by field
	authn *auth.Authenticator // nil: an open edge
	rates *rates              // requestsPerSecond per tenant
}

// New returns an API calling the services through c and streaming
// subscriptions from hub, recording open subscriptions in reg. With an
// Authenticator, every root field needs an authenticated identity (in the
// request's context, see edge/auth) whose role allows it, within its
// tenant's request rate.
func New(c *client.Client, hub *live.Hub, reg *metrics.Registry, authn *auth.Authenticator) *API {
	return &API{c: c, live: hub, authn: authn, rates: newRates(),
		open: reg.Gauge("cb_subscriptions_open", "GraphQL subscriptions streaming now, by field.", "field")}
}

// codedError gives a service error its GraphQL extensions.code.
type codedError struct{ err error }

func (e codedError) Error() string       { return e.err.Error() }
func (e codedError) Unwrap() error       { return e.err }
func (e codedError) GraphQLCode() string { return fail.KindOf(e.err).String() }

// coded wraps a resolver so its errors carry their kind as the code.
func coded(f gql.ResolveFunc) gql.ResolveFunc {
	return func(ctx context.Context, p gql.Params) (any, error) {
		v, err := f(ctx, p)
		if err != nil {
			return nil, codedError{err}
		}
		return v, nil
	}
}

// orNull turns "not found" into a null result, as the original did for
// lookups that return an optional object.
func orNull[T any](v *T, err error) (any, error) {
	if errors.Is(err, fail.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Resolvers returns the resolver of every field that is not a plain read
// of its parent's JSON field.
func (a *API) Resolvers() gql.Resolvers {
	r := gql.Resolvers{
		"Query.workflow":              a.workflow,
		"Query.workflows":             a.workflows,
		"Query.token":                 a.token,
		"Query.natsToken":             a.token,
		"Query.tokens":                a.tokens,
		"Query.availableTransitions":  a.availableTransitions,
		"Query.transitionEvaluations": a.transitionEvaluations,
		"Query.tokensInPlace":         a.tokensInPlace,
		"Query.findToken":             a.findToken,
		"Query.events":                a.events,
		"Query.workflowStats":         a.workflowStats,
		"Query.eventSubscriptions":    a.eventSubscriptions,
		"Query.findTokens":            a.findTokens,
		"Query.countTokens":           a.countTokens,

		"Mutation.createWorkflow":       a.createWorkflow,
		"Mutation.updateWorkflow":       a.updateWorkflow,
		"Mutation.migrateTokens":        a.migrateTokens,
		"Mutation.bulkTransitionTokens": a.bulkTransitionTokens,
		"Workflow.versions":             a.workflowVersions,
		"Workflow.searchIndex":          a.workflowSearchIndex,
		"SearchIndex.startedAt": func(_ context.Context, p gql.Params) (any, error) {
			return optionalTime(p.Parent.(*wire.SearchIndex).StartedAt), nil
		},
		"SearchIndex.updatedAt": func(_ context.Context, p gql.Params) (any, error) {
			return optionalTime(p.Parent.(*wire.SearchIndex).UpdatedAt), nil
		},
		"SearchIndex.finishedAt": func(_ context.Context, p gql.Params) (any, error) {
			return optionalTime(p.Parent.(*wire.SearchIndex).FinishedAt), nil
		},
		"Mutation.createToken":             a.createToken,
		"Mutation.createWorkflowInstance":  a.createWorkflowInstance,
		"Mutation.fireTransition":          a.fire,
		"Mutation.transitionTokenWithNats": a.fire,
		"Mutation.updateToken":             a.updateToken,
		"Mutation.createEventSubscription": a.createEventSubscription,
		"Mutation.deleteEventSubscription": a.deleteEventSubscription,
		"Mutation.archiveToken":            a.archiveToken,
		"Mutation.deleteToken":             a.deleteToken,
		"Mutation.deleteWorkflow":          a.deleteWorkflow,

		"Subscription.tokenUpdates":   a.tokenUpdates,
		"Subscription.workflowEvents": a.workflowEvents,
		"Subscription.placeEvents":    a.placeEvents,
		"Subscription.bulkProgress":   a.bulkProgress,
		"BulkResult.outcomes":         bulkOutcomes,

		"Token.workflow": a.tokenWorkflow,
		"Token.natsSequence": func(_ context.Context, p gql.Params) (any, error) {
			return seq(p.Parent.(*flow.Token).NatsSequence), nil
		},
		"Token.cursor":   func(_ context.Context, p gql.Params) (any, error) { return tokenCursor(p.Parent.(*flow.Token)), nil },
		"Token.revision": func(_ context.Context, p gql.Params) (any, error) { return int64(p.Parent.(*flow.Token).Revision), nil },

		"Token.timers":            tokenTimers,
		"Transition.after":        transitionTimer(func(t flow.Transition) string { return t.After }),
		"Transition.at":           transitionTimer(func(t flow.Transition) string { return t.At }),
		"Token.history":           a.tokenHistory(true),
		"Token.transitionHistory": a.tokenHistory(false),
		"Token.archivedAt": func(_ context.Context, p gql.Params) (any, error) {
			if at := p.Parent.(*flow.Token).ArchivedAt; at != nil {
				return at.Format(time.RFC3339Nano), nil
			}
			return nil, nil
		},
		"Workflow.description": func(_ context.Context, p gql.Params) (any, error) {
			return optional(p.Parent.(*flow.Definition).Description), nil
		},
		"Workflow.archiveAfter": func(_ context.Context, p gql.Params) (any, error) {
			return optional(p.Parent.(*flow.Definition).ArchiveAfter), nil
		},
	}
	for k, f := range a.analyticsResolvers() { // analytics and health (edge/api/analytics.go)
		r[k] = f
	}
	for k, f := range r {
		r[k] = a.allow(k, coded(f))
	}
	return r
}

// seq renders a stream sequence as the original did: a decimal string, or
// null when unset.
func seq(n uint64) any {
	if n == 0 {
		return nil
	}
	return strconv.FormatUint(n, 10)
}

func raw(m json.RawMessage) any {
	if len(m) == 0 {
		return nil
	}
	return m
}

func optional(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// decode converts a GraphQL input object into a wire request: the input
// types use the wire's field names. A null field counts as absent.
func decode[T any](in any) (*T, error) {
	if m, ok := in.(map[string]any); ok {
		in = withoutNulls(m)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fail.Wrap(fail.BadInput, err, "invalid input")
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fail.Wrap(fail.BadInput, err, "invalid input: "+err.Error())
	}
	return v, nil
}

// page reads the pagination arguments.
func page(args map[string]any) wire.Page {
	var p wire.Page
	if n, ok := args["first"]; ok && n != nil {
		p.First = int(toInt(n))
	}
	if s, ok := args["after"].(string); ok {
		p.After = s
	}
	return p
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return 0
}

func str(args map[string]any, name string) string {
	s, _ := args[name].(string)
	return s
}

func withoutNulls(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if v != nil {
			out[k] = v
		}
	}
	return out
}
