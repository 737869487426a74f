package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const secret = "0123456789abcdef0123456789abcdef-test-secret"

// fixture writes an auth file with two keys and HS256 JWTs.
func fixture(t *testing.T, keys string) *Authenticator {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.yaml")
	write(t, path, keys)
	a, warnings, err := Load(path, func(string) string { return secret })
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "plain text") {
		t.Fatalf("warnings %v, want one about the plain key", warnings)
	}
	return a
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func keysFile(plain, hashed string) string {
	sum := sha256.Sum256([]byte(hashed))
	return fmt.Sprintf(`apiKeys:
  - {name: acme-admin, key: "sha256:%s", tenant: acme, role: admin}
  - {name: local-viewer, key: %q, tenant: "*", role: viewer}
jwt: {issuer: https://idp.test, audience: cb, hmacSecretEnv: CB_JWT_SECRET, tenantClaim: tenant, roleClaim: role}
`, hex.EncodeToString(sum[:]), plain)
}

func hs256(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func good() jwt.MapClaims {
	return jwt.MapClaims{"iss": "https://idp.test", "aud": "cb", "sub": "alice", "tenant": "acme", "role": "operator",
		"exp": time.Now().Add(time.Hour).Unix()}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	c[k] = v
	return c
}

func TestAuthenticate(t *testing.T) {
	a := fixture(t, keysFile("viewer-key", "admin-key"))
	cases := []struct {
		name, header string
		want         Identity
		err          error
	}{
		{"hashed API key", "Bearer admin-key", Identity{Name: "acme-admin", Tenant: "acme", Role: Admin}, nil},
		{"plain API key", "Bearer viewer-key", Identity{Name: "local-viewer", Tenant: "*", Role: Viewer}, nil},
		{"JWT", "Bearer " + hs256(t, good()), Identity{Name: "alice", Tenant: "acme", Role: Operator}, nil},
		{"missing", "", Identity{}, ErrMissing},
		{"empty bearer", "Bearer ", Identity{}, ErrInvalid},
		{"not bearer", "Basic YWxpY2U6eA==", Identity{}, ErrInvalid},
		{"wrong key", "Bearer admin-kez", Identity{}, ErrInvalid},
		{"truncated JWT", "Bearer " + hs256(t, good())[:40], Identity{}, ErrInvalid},
		{"expired", "Bearer " + hs256(t, with(good(), "exp", time.Now().Add(-time.Minute).Unix())), Identity{}, ErrInvalid},
		{"not yet valid", "Bearer " + hs256(t, with(good(), "nbf", time.Now().Add(time.Hour).Unix())), Identity{}, ErrInvalid},
		{"no expiry", "Bearer " + hs256(t, with(good(), "exp", nil)), Identity{}, ErrInvalid},
		{"wrong issuer", "Bearer " + hs256(t, with(good(), "iss", "https://evil.test")), Identity{}, ErrInvalid},
		{"wrong audience", "Bearer " + hs256(t, with(good(), "aud", "other")), Identity{}, ErrInvalid},
		{"unknown role", "Bearer " + hs256(t, with(good(), "role", "root")), Identity{}, ErrInvalid},
		{"alg none", "Bearer " + none(t, good()), Identity{}, ErrInvalid},
		{"other secret", "Bearer " + otherSecret(t, good()), Identity{}, ErrInvalid},
		{"huge header", "Bearer " + strings.Repeat("a", 1<<20), Identity{}, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := a.Authenticate(tc.header)
			id.Expires = time.Time{}
			if !errors.Is(err, tc.err) || id != tc.want {
				t.Fatalf("got %+v, %v; want %+v, %v", id, err, tc.want, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), strings.TrimPrefix(tc.header, "Bearer ")) && tc.header != "" && len(tc.header) > 8 {
				t.Fatalf("the error repeats the credential: %v", err)
			}
		})
	}
}

func none(t *testing.T, c jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func otherSecret(t *testing.T, c jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(strings.Repeat("x", 40)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestJWKS: RS256 tokens verified with the JWKS file's key; an HS256
// token (the public key used as an HMAC secret) is refused.
func TestJWKS(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b64 := base64.RawURLEncoding.EncodeToString
	write(t, filepath.Join(dir, "keys.json"), fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"k1","n":%q,"e":%q}]}`,
		b64(priv.N.Bytes()), b64(big.NewInt(int64(priv.E)).Bytes())))
	write(t, filepath.Join(dir, "auth.yaml"), fmt.Sprintf("jwt: {issuer: https://idp.test, audience: cb, jwksFile: %s, tenant: \"*\", roleClaim: role}\n",
		filepath.Join(dir, "keys.json")))
	a, _, err := Load(filepath.Join(dir, "auth.yaml"), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, good())
	tok.Header["kid"] = "k1"
	signed, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := a.Authenticate("Bearer " + signed); err != nil || id.Name != "alice" || id.Role != Operator {
		t.Fatalf("RS256: %+v, %v", id, err)
	}
	if _, err := a.Authenticate("Bearer " + hs256(t, good())); !errors.Is(err, ErrInvalid) {
		t.Fatalf("HS256 against a JWKS: %v, want invalid", err)
	}
}

// TestReloadRotatesKeys: after a reload the old key stops working and the
// new one works; a broken file leaves the previous one in force.
func TestReloadRotatesKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.yaml")
	write(t, path, keysFile("old-key", "admin-key"))
	a, _, err := Load(path, func(string) string { return secret })
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, keysFile("new-key", "admin-key"))
	if _, err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate("Bearer old-key"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("old key after rotation: %v", err)
	}
	if _, err := a.Authenticate("Bearer new-key"); err != nil {
		t.Fatalf("new key: %v", err)
	}
	write(t, path, "apiKeys: [{name: x, key: y, role: king}]")
	if _, err := a.Reload(); err == nil {
		t.Fatal("a broken file reloaded")
	}
	if _, err := a.Authenticate("Bearer new-key"); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
}
