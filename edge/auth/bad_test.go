package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cbnats/circuitbreaker/edge/auth"
)

const (
	badSecret   = "bad-test-hs256-secret-0123456789abcdef"
	badIssuer   = "https://idp.bad.test"
	badAudience = "cb-bad"
	badKey      = "bad-test-api-key-7Q2VXK4M"
)

// badAuth loads an auth file of one API key (naming its tenant) and the
// given jwt section.
func badAuth(t *testing.T, jwtSection string) *auth.Authenticator {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.yaml")
	content := fmt.Sprintf("apiKeys:\n  - {name: acme-admin, key: %q, tenant: acme, role: admin}\njwt: %s\n", badKey, jwtSection)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _, err := auth.Load(path, func(string) string { return badSecret })
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func hmacSection() string {
	return fmt.Sprintf("{issuer: %q, audience: %q, hmacSecretEnv: S, tenantClaim: tenant, roleClaim: role}", badIssuer, badAudience)
}

func okClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": badIssuer, "aud": badAudience, "sub": "alice", "tenant": "acme", "role": "operator",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

func spoil(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func handMade(header map[string]any, c jwt.MapClaims, sig string) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "." + sig
}

// refused asserts header is refused with want, by an error that does not
// repeat the credential.
func refused(t *testing.T, a *auth.Authenticator, header string, want error) {
	t.Helper()
	id, err := a.Authenticate(header)
	if !errors.Is(err, want) || id != (auth.Identity{}) {
		t.Fatalf("got %+v, %v; want %v", id, err, want)
	}
	if cred := strings.TrimSpace(strings.TrimPrefix(header, "Bearer")); len(cred) >= 8 && strings.Contains(err.Error(), cred) {
		t.Fatalf("the error repeats the credential: %v", err)
	}
}

// TestBadCredentialShapes: with HS256 JWTs configured, every malformed,
// unsigned, wrongly signed, wrong-algorithm, out-of-date or incomplete
// credential is refused as invalid (missing only when there is no header
// at all), and the good ones pass.
func TestBadCredentialShapes(t *testing.T) {
	a := badAuth(t, hmacSection())
	good := sign(t, jwt.SigningMethodHS256, []byte(badSecret), okClaims(), nil)
	for _, h := range []string{"Bearer " + badKey, "Bearer " + good, "  Bearer   " + badKey + "  ", "bearer " + badKey, "BEARER " + badKey} { // the scheme is case-insensitive
		if _, err := a.Authenticate(h); err != nil {
			t.Fatalf("a good credential: %v", err)
		}
	}
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(badSecret), c, nil) }
	sig := good[strings.LastIndex(good, ".")+1:]
	cases := []struct {
		name, header string
		want         error
	}{
		{"no header", "", auth.ErrMissing},
		{"blanks", "   ", auth.ErrInvalid},
		{"Bearer alone", "Bearer", auth.ErrInvalid},
		{"Bearer and blanks", "Bearer    ", auth.ErrInvalid},
		{"Basic", "Basic " + base64.StdEncoding.EncodeToString([]byte("acme-admin:"+badKey)), auth.ErrInvalid},
		{"Bearer and a tab", "Bearer\t" + badKey, auth.ErrInvalid},
		{"no scheme", badKey, auth.ErrInvalid},
		{"wrong key", "Bearer " + badKey[:len(badKey)-1] + "N", auth.ErrInvalid},
		{"key prefix", "Bearer " + badKey[:len(badKey)-1], auth.ErrInvalid},
		{"key and more", "Bearer " + badKey + "x", auth.ErrInvalid},
		{"key with a NUL", "Bearer " + badKey + "\x00", auth.ErrInvalid},
		{"key twice", "Bearer " + badKey + " " + badKey, auth.ErrInvalid},
		{"three dots", "Bearer ...", auth.ErrInvalid},
		{"two dots", "Bearer ..", auth.ErrInvalid},
		{"a.b.c", "Bearer a.b.c", auth.ErrInvalid},
		{"truncated JWT", "Bearer " + good[:len(good)-3], auth.ErrInvalid},
		{"JWT without signature", "Bearer " + good[:strings.LastIndex(good, ".")+1], auth.ErrInvalid},
		{"JWT of two parts", "Bearer " + good[:strings.LastIndex(good, ".")], auth.ErrInvalid},
		{"JWT with padding", "Bearer " + good + "==", auth.ErrInvalid},
		{"JWT header not JSON", "Bearer " + base64.RawURLEncoding.EncodeToString([]byte("{not json")) + good[strings.Index(good, "."):], auth.ErrInvalid},
		{"alg none", "Bearer " + sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, okClaims(), nil), auth.ErrInvalid},
		{"alg None with a signature", "Bearer " + handMade(map[string]any{"alg": "None"}, okClaims(), sig), auth.ErrInvalid},
		{"alg missing", "Bearer " + handMade(map[string]any{"typ": "JWT"}, okClaims(), sig), auth.ErrInvalid},
		{"claims changed under the signature", "Bearer " + handMade(map[string]any{"alg": "HS256", "typ": "JWT"}, spoil(okClaims(), "role", "admin"), sig), auth.ErrInvalid},
		{"wrong secret", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(badSecret+"!"), okClaims(), nil), auth.ErrInvalid},
		{"HS384", "Bearer " + sign(t, jwt.SigningMethodHS384, []byte(badSecret), okClaims(), nil), auth.ErrInvalid},
		{"HS512", "Bearer " + sign(t, jwt.SigningMethodHS512, []byte(badSecret), okClaims(), nil), auth.ErrInvalid},
		{"wrong issuer", "Bearer " + hs(spoil(okClaims(), "iss", "https://idp.bad.test/")), auth.ErrInvalid},
		{"no issuer", "Bearer " + hs(spoil(okClaims(), "iss", nil)), auth.ErrInvalid},
		{"wrong audience", "Bearer " + hs(spoil(okClaims(), "aud", "cb")), auth.ErrInvalid},
		{"no audience", "Bearer " + hs(spoil(okClaims(), "aud", nil)), auth.ErrInvalid},
		{"expired beyond the leeway", "Bearer " + hs(spoil(okClaims(), "exp", time.Now().Add(-30*time.Second).Unix())), auth.ErrInvalid},
		{"no expiry", "Bearer " + hs(spoil(okClaims(), "exp", nil)), auth.ErrInvalid},
		{"exp a string", "Bearer " + hs(spoil(okClaims(), "exp", "2999-01-01")), auth.ErrInvalid},
		{"nbf beyond the leeway", "Bearer " + hs(spoil(okClaims(), "nbf", time.Now().Add(30*time.Second).Unix())), auth.ErrInvalid},
		{"nbf a string", "Bearer " + hs(spoil(okClaims(), "nbf", "now")), auth.ErrInvalid},
		{"no subject", "Bearer " + hs(spoil(okClaims(), "sub", nil)), auth.ErrInvalid},
		{"empty subject", "Bearer " + hs(spoil(okClaims(), "sub", "")), auth.ErrInvalid},
		{"no role", "Bearer " + hs(spoil(okClaims(), "role", nil)), auth.ErrInvalid},
		{"unknown role", "Bearer " + hs(spoil(okClaims(), "role", "superuser")), auth.ErrInvalid},
		{"role in capitals", "Bearer " + hs(spoil(okClaims(), "role", "Admin")), auth.ErrInvalid},
		{"role a list", "Bearer " + hs(spoil(okClaims(), "role", []string{"admin"})), auth.ErrInvalid},
		// Every identity names a valid tenant (issue 14); "_all" is the
		// services' all-tenant scope, never a tenant.
		{"no tenant", "Bearer " + hs(spoil(okClaims(), "tenant", nil)), auth.ErrInvalid},
		{"empty tenant", "Bearer " + hs(spoil(okClaims(), "tenant", "")), auth.ErrInvalid},
		{"tenant _all", "Bearer " + hs(spoil(okClaims(), "tenant", "_all")), auth.ErrInvalid},
		{"tenant with a dot", "Bearer " + hs(spoil(okClaims(), "tenant", "acme.globex")), auth.ErrInvalid},
		{"tenant with wildcards", "Bearer " + hs(spoil(okClaims(), "tenant", "acme.>")), auth.ErrInvalid},
		{"tenant a number", "Bearer " + hs(spoil(okClaims(), "tenant", 7)), auth.ErrInvalid},
		{"iat far in the future", "Bearer " + hs(spoil(okClaims(), "iat", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix())), auth.ErrInvalid},
		{"tenant * from a claim", "Bearer " + hs(spoil(okClaims(), "tenant", "*")), auth.ErrInvalid},
		{"well signed but 16 KiB", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(badSecret), okClaims(), map[string]any{"kid": strings.Repeat("k", 16<<10)}), auth.ErrInvalid},
		{"1 MiB of dots", "Bearer " + strings.Repeat(".", 1<<20), auth.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { refused(t, a, tc.header, tc.want) })
	}
}

// TestAlgorithmConfusion: with RS256 keys from a JWKS file, an HS256
// token "signed" with the public key in any encoding is refused, as are
// other algorithms, other keys and unknown key ids; the good RS256 token
// passes.
func TestAlgorithmConfusion(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b64 := base64.RawURLEncoding.EncodeToString
	jwks := fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"k1","n":%q,"e":%q}]}`, b64(priv.N.Bytes()), b64(big.NewInt(int64(priv.E)).Bytes()))
	if err := os.WriteFile(filepath.Join(dir, "keys.json"), []byte(jwks), 0o600); err != nil {
		t.Fatal(err)
	}
	a := badAuth(t, fmt.Sprintf("{issuer: %q, audience: %q, jwksFile: %q, tenantClaim: tenant, roleClaim: role}", badIssuer, badAudience, filepath.Join(dir, "keys.json")))
	kid := map[string]any{"kid": "k1"}
	if id, err := a.Authenticate("Bearer " + sign(t, jwt.SigningMethodRS256, priv, okClaims(), kid)); err != nil || id.Name != "alice" {
		t.Fatalf("the good RS256 token: %+v, %v", id, err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string][]byte{
		"PKIX PEM":    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"PKCS#1 PEM":  pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&priv.PublicKey)}),
		"DER":         der,
		"modulus":     priv.N.Bytes(),
		"JWKS file":   []byte(jwks),
		"HMAC secret": []byte(badSecret),
	} {
		t.Run("HS256 with "+name, func(t *testing.T) {
			for _, h := range []map[string]any{kid, nil} {
				refused(t, a, "Bearer "+sign(t, jwt.SigningMethodHS256, key, okClaims(), h), auth.ErrInvalid)
			}
		})
	}
	for name, tok := range map[string]string{
		"alg none":       sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, okClaims(), kid),
		"another key":    sign(t, jwt.SigningMethodRS256, other, okClaims(), kid),
		"unknown kid":    sign(t, jwt.SigningMethodRS256, priv, okClaims(), map[string]any{"kid": "k2"}),
		"PS256":          sign(t, jwt.SigningMethodPS256, priv, okClaims(), kid),
		"expired":        sign(t, jwt.SigningMethodRS256, priv, spoil(okClaims(), "exp", time.Now().Add(-time.Minute).Unix()), kid),
		"wrong audience": sign(t, jwt.SigningMethodRS256, priv, spoil(okClaims(), "aud", "x"), kid),
	} {
		t.Run(name, func(t *testing.T) { refused(t, a, "Bearer "+tok, auth.ErrInvalid) })
	}
}

// FuzzAuthenticate: no header panics the authenticator, and none but a
// real credential passes.
func FuzzAuthenticate(f *testing.F) {
	for _, s := range []string{"", "Bearer ", "Bearer " + badKey, "Bearer a.b.c", "Bearer ..", "Basic x",
		"Bearer eyJhbGciOiJub25lIn0.e30.", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.x"} {
		f.Add(s)
	}
	path := filepath.Join(f.TempDir(), "auth.yaml")
	content := fmt.Sprintf("apiKeys:\n  - {name: acme-admin, key: %q, tenant: acme, role: admin}\njwt: %s\n", badKey, hmacSection())
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		f.Fatal(err)
	}
	a, _, err := auth.Load(path, func(string) string { return badSecret })
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string) {
		id, err := a.Authenticate(header)
		if err == nil && strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(header), "Bearer ")) != badKey {
			t.Fatalf("%q authenticated as %+v", header, id)
		}
	})
}
