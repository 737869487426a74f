// Package tenant confines a request to one tenant's workflows.
//
// A workflow belongs to the tenant its id names before "::" (the original
// guide's "tenant_a::document_approval"); an id without a tenant belongs to
// none. Every request travels on a subject that names its scope,
// cb.<scope>.<service>.<op> (see shared/subjects): a tenant's name, or All
// for a caller that acts for every tenant (the edge, operators). NATS
// permissions can therefore confine a tenant's own NATS user to
// cb.<tenant>.>, and the services, not only the edge, decide what a
// request may see:
//
//   - In a tenant's scope a workflow id without a tenant is that tenant's:
//     "orders" means "acme::orders" for acme. Replies carry full ids.
//   - Another tenant's workflow, and every token, event and subscription
//     of it, behaves exactly as if it did not exist (NOT_FOUND with the
//     same text); lists hold only the scope's own workflows.
//   - In the All scope every workflow is visible under its full id.
package tenant

import (
	"context"
	"strings"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// All is the scope of a caller that acts for every tenant, as it appears
// in request subjects. Tenant names cannot start with '_', so no tenant
// can be named All.
const All Scope = subjects.AllTenants

// Scope is the tenant a request acts for, or All.
type Scope string

// Valid reports whether name can name a tenant: a workflow-name-safe
// string ([A-Za-z0-9_-]) that does not start with '_'.
func Valid(name string) bool { return flow.ValidName(name) && !strings.HasPrefix(name, "_") }

// Parse reads a scope from a request subject's scope token.
func Parse(token string) (Scope, error) {
	if Scope(token) == All || Valid(token) {
		return Scope(token), nil
	}
	return "", fail.New(fail.BadInput, "%q is not a tenant: the subject's second token names a tenant or %s", token, All)
}

// OfWorkflow returns the tenant a workflow id names, or "" for none.
func OfWorkflow(id string) string {
	t, _, ok := strings.Cut(id, flow.TenantSeparator)
	if !ok {
		return ""
	}
	return t
}

// Sees reports whether a workflow is visible in the scope.
func (s Scope) Sees(workflowID string) bool {
	return s == All || OfWorkflow(workflowID) == string(s)
}

// Qualify returns the full id a workflow id means in the scope: a
// tenant's scope puts its name before an id that names no tenant.
func (s Scope) Qualify(id string) string {
	if s == All || id == "" || strings.Contains(id, flow.TenantSeparator) {
		return id
	}
	return string(s) + flow.TenantSeparator + id
}

// Prefix is what every workflow id of the scope starts with ("" for All).
func (s Scope) Prefix() string {
	if s == All {
		return ""
	}
	return string(s) + flow.TenantSeparator
}

// Resolve returns the full id of a workflow the scope may see, or the
// NOT_FOUND an absent workflow gets (same text: nothing tells a tenant
// that another tenant's workflow exists).
func (s Scope) Resolve(id string) (string, error) {
	full := s.Qualify(id)
	if !s.Sees(full) {
		return "", WorkflowNotFound(id)
	}
	return full, nil
}

// WorkflowNotFound is the error of a workflow that does not exist, or is
// another tenant's.
func WorkflowNotFound(id string) error { return fail.New(fail.NotFound, "Workflow not found: %s", id) }

// TokenNotFound is the error of a token that does not exist, or is
// another tenant's.
func TokenNotFound(id string) error { return fail.New(fail.NotFound, "Token not found: %s", id) }

type scopeKey struct{}

// WithScope returns ctx carrying s.
func WithScope(ctx context.Context, s Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// FromContext returns the scope of the request ctx serves. A context
// without one is the service's own work (loading, retention), which sees
// every tenant: requests from outside always carry their subject's scope.
func FromContext(ctx context.Context) Scope {
	if s, ok := ctx.Value(scopeKey{}).(Scope); ok {
		return s
	}
	return All
}
