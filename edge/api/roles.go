package api

import (
	"context"
	"strings"

	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
)

// required is the role a root field needs: viewers read and subscribe,
// operators also create tokens, fire, update and archive them, admins also
// manage definitions and event subscriptions and delete tokens and
// workflows.
func required(root, field string) auth.Role {
	if root != "Mutation" {
		return auth.Viewer
	}
	switch field {
	case "createWorkflow", "updateWorkflow", "migrateTokens", "createEventSubscription", "deleteEventSubscription", "deleteToken", "deleteWorkflow":
		return auth.Admin
	}
	return auth.Operator
}

// allow wraps the resolver of key ("Type.field") with the role check and
// the tenant's request rate when authentication is required; fields below
// the root pass.
func (a *API) allow(key string, f gql.ResolveFunc) gql.ResolveFunc {
	root, field, _ := strings.Cut(key, ".")
	if a.authn == nil || (root != "Query" && root != "Mutation" && root != "Subscription") {
		return f
	}
	need := required(root, field)
	return func(ctx context.Context, p gql.Params) (any, error) {
		id, ok := auth.FromContext(ctx)
		if !ok {
			return nil, codedError{fail.New(fail.Forbidden, "authentication required")}
		}
		if id.Role < need {
			return nil, codedError{fail.New(fail.Forbidden, "%s needs the %s role; %s has the %s role", field, need, id.Name, id.Role)}
		}
		if err := a.rates.take(id.Tenant, a.authn.Quota(id.Tenant).RequestsPerSecond); err != nil {
			return nil, codedError{err}
		}
		return f(ctx, p)
	}
}

// client is the services' client in the caller's tenant scope: an
// identity's tenant (or every tenant), and every tenant on an open edge.
// The services enforce the scope; the edge only chooses it.
func (a *API) client(ctx context.Context) *client.Client {
	if id, ok := auth.FromContext(ctx); ok {
		return a.c.As(id.Scope())
	}
	return a.c
}

// attribute sets who a mutation records as triggeredBy (by): the
// authenticated identity when there is one, with a different name the
// client gave kept apart as its claim; on an open edge, the client's word.
func attribute(ctx context.Context, by, claim *string) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return
	}
	if *by != "" && *by != id.Name {
		*claim = *by
	}
	*by = id.Name
}
