package api

import (
	"context"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/shared/flow"
)

// tokenTimers is Token.timers: never null.
func tokenTimers(_ context.Context, p gql.Params) (any, error) {
	if ts := p.Parent.(*flow.Token).Timers; ts != nil {
		return ts, nil
	}
	return []flow.Timer{}, nil
}

// transitionTimer resolves Transition.after or .at: null when unset.
func transitionTimer(get func(flow.Transition) string) gql.ResolveFunc {
	return func(_ context.Context, p gql.Params) (any, error) {
		switch t := p.Parent.(type) {
		case flow.Transition:
			return optional(get(t)), nil
		case *flow.Transition:
			return optional(get(*t)), nil
		}
		return nil, nil
	}
}
