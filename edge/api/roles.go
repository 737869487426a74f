package api

import (
	"context"
	"fmt"
	"strings"

	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/edge/gql"
)

// CodeForbidden is the extensions.code of a field the caller's role does
// not allow.
const CodeForbidden = "FORBIDDEN"

// forbiddenError is a field the caller may not use.
type forbiddenError string

func (e forbiddenError) Error() string     { return string(e) }
func (forbiddenError) GraphQLCode() string { return CodeForbidden }

// required is the role a root field needs: viewers read and subscribe,
// operators also create tokens, fire and update, admins also manage
// definitions and event subscriptions.
func required(root, field string) auth.Role {
	if root != "Mutation" {
		return auth.Viewer
	}
	switch field {
	case "createWorkflow", "createEventSubscription", "deleteEventSubscription":
		return auth.Admin
	}
	return auth.Operator
}

// allow wraps the resolver of key ("Type.field") with the role check when
// authentication is required; fields below the root pass.
func (a *API) allow(key string, f gql.ResolveFunc) gql.ResolveFunc {
	root, field, _ := strings.Cut(key, ".")
	if !a.requireAuth || (root != "Query" && root != "Mutation" && root != "Subscription") {
		return f
	}
	need := required(root, field)
	return func(ctx context.Context, p gql.Params) (any, error) {
		id, ok := auth.FromContext(ctx)
		if !ok {
			return nil, forbiddenError("authentication required")
		}
		if id.Role < need {
			return nil, forbiddenError(fmt.Sprintf("%s needs the %s role; %s has the %s role", field, need, id.Name, id.Role))
		}
		return f(ctx, p)
	}
}

// actor is who a mutation records as triggeredBy: the authenticated
// identity when there is one, else what the client said.
func actor(ctx context.Context, claimed string) string {
	if id, ok := auth.FromContext(ctx); ok {
		return id.Name
	}
	return claimed
}
