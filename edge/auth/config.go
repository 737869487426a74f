package auth

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cbnats/circuitbreaker/shared/quota"
	"github.com/cbnats/circuitbreaker/shared/tenant"
)

// File is the auth file's content.
type File struct {
	APIKeys     []KeyEntry             `yaml:"apiKeys" json:"apiKeys"`
	JWT         *JWTConfig             `yaml:"jwt" json:"jwt"`
	Tenants     map[string]quota.Quota `yaml:"tenants" json:"tenants"` // quotas by tenant
	MetricsOpen bool                   `yaml:"metricsOpen" json:"metricsOpen"`
}

// KeyEntry is one API key.
type KeyEntry struct {
	Name   string `yaml:"name" json:"name"`
	Key    string `yaml:"key" json:"key"` // "sha256:<hex digest>", or the key itself
	Tenant string `yaml:"tenant" json:"tenant"`
	Role   string `yaml:"role" json:"role"`
}

// JWTConfig says which JWTs are accepted and where their claims are.
type JWTConfig struct {
	Issuer        string `yaml:"issuer" json:"issuer"`
	Audience      string `yaml:"audience" json:"audience"`
	JWKSFile      string `yaml:"jwksFile" json:"jwksFile"`           // RSA public keys (RS256/384/512)
	HMACSecretEnv string `yaml:"hmacSecretEnv" json:"hmacSecretEnv"` // name of the variable holding an HS256 secret
	TenantClaim   string `yaml:"tenantClaim" json:"tenantClaim"`     // the claim naming a token's tenant, or
	Tenant        string `yaml:"tenant" json:"tenant"`               // the tenant of every token ("*": all)
	RoleClaim     string `yaml:"roleClaim" json:"roleClaim"`
}

// key is a loaded API key.
type key struct {
	digest [sha256.Size]byte
	id     Identity
}

// loaded is what an auth file gives: keys, JWT verification, settings,
// and the warnings to log at start.
type loaded struct {
	keys        []key
	jwt         *verifier
	quotas      map[string]quota.Quota
	metricsOpen bool
	warnings    []string
}

// load reads and checks an auth file; getenv reads the HMAC secret.
func load(path string, getenv func(string) string) (*loaded, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	var f File
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("auth file %s: %w", path, err)
	}
	out := &loaded{metricsOpen: f.MetricsOpen, quotas: f.Tenants}
	for name, q := range f.Tenants {
		if !tenant.Valid(name) || q.MaxWorkflows < 0 || q.MaxLiveTokens < 0 || q.RequestsPerSecond < 0 {
			return nil, fmt.Errorf("auth file %s: tenants: %q: a tenant name (letters, digits, '_', '-'; not starting with '_') with quotas ≥ 0", path, name)
		}
	}
	for i, e := range f.APIKeys {
		k, warn, err := loadKey(e)
		if err != nil {
			return nil, fmt.Errorf("auth file %s: apiKeys[%d]: %w", path, i, err)
		}
		if warn != "" {
			out.warnings = append(out.warnings, warn)
		}
		out.keys = append(out.keys, k)
	}
	if f.JWT != nil {
		if out.jwt, err = newVerifier(*f.JWT, getenv); err != nil {
			return nil, fmt.Errorf("auth file %s: jwt: %w", path, err)
		}
	}
	if len(out.keys) == 0 && out.jwt == nil {
		return nil, fmt.Errorf("auth file %s: no apiKeys and no jwt: nobody could sign in", path)
	}
	return out, nil
}

// loadKey checks one API key entry and digests its key.
func loadKey(e KeyEntry) (key, string, error) {
	role, err := ParseRole(e.Role)
	if err != nil {
		return key{}, "", err
	}
	if e.Name == "" || e.Key == "" {
		return key{}, "", fmt.Errorf("name and key are required")
	}
	if !validTenant(e.Tenant) {
		return key{}, "", fmt.Errorf("tenant of %s: %q: %s", e.Name, e.Tenant, tenantRule)
	}
	k := key{id: Identity{Name: e.Name, Tenant: e.Tenant, Role: role}}
	if hexDigest, ok := strings.CutPrefix(e.Key, "sha256:"); ok {
		d, err := hex.DecodeString(hexDigest)
		if err != nil || len(d) != sha256.Size {
			return key{}, "", fmt.Errorf("key of %s: sha256: wants 64 hex digits", e.Name)
		}
		copy(k.digest[:], d)
		return k, "", nil
	}
	k.digest = sha256.Sum256([]byte(e.Key))
	return k, fmt.Sprintf("API key %q is stored in plain text in the auth file; store sha256:<hex> of it instead", e.Name), nil
}

// jwks is a JSON Web Key Set of RSA public keys.
type jwks struct {
	Keys []struct {
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		N   string `json:"n"`
		E   string `json:"e"`
	} `json:"keys"`
}

// loadJWKS reads RSA public keys by key id.
func loadJWKS(path string) (map[string]*rsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var set jwks
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(e) > 4 {
			return nil, fmt.Errorf("%s: key %q: bad n or e", path, k.Kid)
		}
		out[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no RSA keys", path)
	}
	return out, nil
}
