// Package auth authenticates the edge's clients and says what their role
// allows. A client sends "Authorization: Bearer <credential>", where the
// credential is an API key from the auth file or a JWT signed by a key the
// auth file names (HMAC secret from the environment, or RSA keys from a
// JWKS file). JWTs are verified with github.com/golang-jwt/jwt/v5; API
// keys are compared as SHA-256 digests in constant time, and are never
// logged.
//
// The auth file (YAML or JSON):
//
//	apiKeys:
//	  - {name: acme-admin, key: "sha256:<hex>", tenant: acme, role: admin}
//	  - {name: ops, key: "plain-key", tenant: "*", role: viewer}  # "*": every tenant; plain: a warning at start
//	jwt:
//	  issuer: https://idp.example
//	  audience: circuit-breaker
//	  jwksFile: keys.json        # or hmacSecretEnv: CB_JWT_SECRET
//	  tenantClaim: tenant        # or tenant: acme (one tenant, or "*", for every token)
//	  roleClaim: role
//	tenants:                     # optional quotas per tenant
//	  acme: {maxWorkflows: 20, maxLiveTokens: 100000, requestsPerSecond: 200}
//	metricsOpen: false           # /metrics for admins only (default) or open
//
// Every credential acts for one tenant, or for all of them ("*"): the edge
// calls the services in that tenant's scope (shared/tenant), so a tenant
// sees and changes only its own workflows, whatever the query.
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/cbnats/circuitbreaker/shared/tenant"
)

// Role is what an identity may do.
type Role int

// The roles, each allowing what the one before allows.
const (
	Viewer   Role = iota + 1 // queries and subscriptions
	Operator                 // + create tokens, fire, update
	Admin                    // + definitions and event subscriptions
)

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return Viewer, nil
	case "operator":
		return Operator, nil
	case "admin":
		return Admin, nil
	}
	return 0, fmt.Errorf("unknown role %q (viewer, operator or admin)", s)
}

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Operator:
		return "operator"
	case Admin:
		return "admin"
	}
	return "none"
}

// Identity is an authenticated client.
type Identity struct {
	Name    string    // the API key's name, or the JWT's subject
	Tenant  string    // the tenant it acts for, or AllTenants
	Role    Role      // what it may do
	Expires time.Time // zero for API keys; a JWT's expiry
}

// AllTenants is the Tenant of a credential that acts for every tenant.
const AllTenants = "*"

// Scope is the tenant scope the identity's requests are served in.
func (id Identity) Scope() tenant.Scope {
	if id.Tenant == AllTenants {
		return tenant.All
	}
	return tenant.Scope(id.Tenant)
}

const tenantRule = `a tenant is letters, digits, '_' and '-', not starting with '_', or "*" for every tenant`

func validTenant(t string) bool { return t == AllTenants || tenant.Valid(t) }

// Errors of Authenticate; their text is safe to show a client (it never
// holds the credential).
var (
	ErrMissing = errors.New("auth: missing credentials: send Authorization: Bearer <API key or JWT>")
	ErrInvalid = errors.New("auth: invalid credentials")
)
