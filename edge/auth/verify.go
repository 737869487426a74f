package auth

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cbnats/circuitbreaker/shared/quota"
)

// maxCredential bounds a credential's length: a larger one is refused
// before any parsing.
const maxCredential = 8 << 10

// verifier checks JWTs.
type verifier struct {
	cfg  JWTConfig
	hmac []byte                    // HS256 secret, or nil
	rsa  map[string]*rsa.PublicKey // RS256/384/512 keys by kid, or nil
}

func newVerifier(c JWTConfig, getenv func(string) string) (*verifier, error) {
	v := &verifier{cfg: c}
	switch {
	case c.HMACSecretEnv != "" && c.JWKSFile != "":
		return nil, fmt.Errorf("give jwksFile or hmacSecretEnv, not both")
	case c.HMACSecretEnv != "":
		if v.hmac = []byte(getenv(c.HMACSecretEnv)); len(v.hmac) < 32 {
			return nil, fmt.Errorf("$%s must hold a secret of at least 32 bytes", c.HMACSecretEnv)
		}
	case c.JWKSFile != "":
		var err error
		if v.rsa, err = loadJWKS(c.JWKSFile); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("jwksFile or hmacSecretEnv is required")
	}
	if c.Issuer == "" || c.Audience == "" {
		return nil, fmt.Errorf("issuer and audience are required")
	}
	if (c.TenantClaim == "") == (c.Tenant == "") {
		return nil, fmt.Errorf("give tenantClaim (the claim naming each token's tenant) or tenant (one tenant, or \"*\", for every token), not both")
	}
	if c.Tenant != "" && !validTenant(c.Tenant) {
		return nil, fmt.Errorf("tenant %q: %s", c.Tenant, tenantRule)
	}
	return v, nil
}

// verify checks a JWT's signature, algorithm, issuer, audience, expiry and
// not-before, and reads its identity.
func (v *verifier) verify(token string) (Identity, error) {
	methods := []string{"HS256"}
	if v.rsa != nil {
		methods = []string{"RS256", "RS384", "RS512"}
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, v.key, jwt.WithValidMethods(methods), jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAudience(v.cfg.Audience), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(5*time.Second))
	if err != nil {
		return Identity{}, ErrInvalid
	}
	sub, _ := claims.GetSubject()
	role, err := ParseRole(claimString(claims, v.cfg.RoleClaim))
	tenant := v.cfg.Tenant
	if v.cfg.TenantClaim != "" {
		tenant = claimString(claims, v.cfg.TenantClaim)
		if tenant == AllTenants { // every tenant: only the auth file may grant it
			return Identity{}, ErrInvalid
		}
	}
	if sub == "" || err != nil || !validTenant(tenant) {
		return Identity{}, ErrInvalid
	}
	exp, _ := claims.GetExpirationTime()
	return Identity{Name: sub, Tenant: tenant, Role: role, Expires: exp.Time}, nil
}

// key finds the verification key of a token.
func (v *verifier) key(t *jwt.Token) (any, error) {
	if v.hmac != nil {
		return v.hmac, nil
	}
	kid, _ := t.Header["kid"].(string)
	if k, ok := v.rsa[kid]; ok {
		return k, nil
	}
	if len(v.rsa) == 1 && kid == "" {
		for _, k := range v.rsa {
			return k, nil
		}
	}
	return nil, fmt.Errorf("unknown key id")
}

func claimString(c jwt.MapClaims, name string) string {
	if name == "" {
		return ""
	}
	s, _ := c[name].(string)
	return s
}

// Authenticator checks credentials against the auth file last loaded. It
// is safe for concurrent use; Reload swaps the file in at once.
type Authenticator struct {
	path   string
	getenv func(string) string
	cur    atomic.Pointer[loaded]

	mu     sync.Mutex // serialises reloads and their onLoad calls
	onLoad []func(map[string]quota.Quota)
}

// Load reads the auth file at path; getenv reads the HMAC secret. It
// returns the warnings to log (plain-text keys).
func Load(path string, getenv func(string) string) (*Authenticator, []string, error) {
	a := &Authenticator{path: path, getenv: getenv}
	warnings, err := a.Reload()
	return a, warnings, err
}

// Reload reads the auth file again; on an error the previous one stays.
// Then every OnLoad function runs with the file's quotas.
func (a *Authenticator) Reload() ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, err := load(a.path, a.getenv)
	if err != nil {
		return nil, err
	}
	a.cur.Store(l)
	for _, f := range a.onLoad {
		f(l.quotas)
	}
	return l.warnings, nil
}

// OnLoad runs f with the quotas per tenant now, and after every reload.
func (a *Authenticator) OnLoad(f func(map[string]quota.Quota)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onLoad = append(a.onLoad, f)
	f(a.cur.Load().quotas)
}

// Quota returns a tenant's quotas as the auth file last loaded says.
func (a *Authenticator) Quota(tenant string) quota.Quota { return a.cur.Load().quotas[tenant] }

// MetricsOpen reports whether /metrics needs no credentials.
func (a *Authenticator) MetricsOpen() bool { return a.cur.Load().metricsOpen }

// Authenticate checks an Authorization header's value.
func (a *Authenticator) Authenticate(header string) (Identity, error) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(header), " ")
	ok = ok && strings.EqualFold(scheme, "Bearer") // the scheme is case-insensitive (RFC 9110)
	cred = strings.TrimSpace(cred)
	switch {
	case !ok && header == "":
		return Identity{}, ErrMissing
	case !ok || cred == "" || len(cred) > maxCredential:
		return Identity{}, ErrInvalid
	}
	l := a.cur.Load()
	if id, ok := l.apiKey(cred); ok {
		return id, nil
	}
	if l.jwt != nil && strings.Count(cred, ".") == 2 {
		return l.jwt.verify(cred)
	}
	return Identity{}, ErrInvalid
}

// apiKey finds the key whose digest matches cred, comparing every key in
// constant time.
func (l *loaded) apiKey(cred string) (Identity, bool) {
	d := sha256.Sum256([]byte(cred))
	var found Identity
	ok := false
	for _, k := range l.keys {
		if subtle.ConstantTimeCompare(d[:], k.digest[:]) == 1 {
			found, ok = k.id, true
		}
	}
	return found, ok
}
