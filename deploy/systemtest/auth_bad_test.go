package systemtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/deploy/stack"
	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/embedded"
	"github.com/cbnats/circuitbreaker/shared/metrics"
)

// badIssuer and badAudience are what the edge of these tests accepts.
const (
	badIssuer   = "https://idp.bad.test"
	badAudience = "cb-bad"
)

// logSink collects a stack's log lines (zerolog writes one line per Write).
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the log's JSON lines, decoded.
func (l *logSink) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// noSecretsIn fails when any secret occurs in text (named what).
func noSecretsIn(t *testing.T, what, text string, secrets map[string]string) {
	t.Helper()
	for name, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains %s", what, name)
		}
	}
}

// badAuthKeys are the API keys of these tests: random values, so that a
// leak cannot be a coincidence, every one naming a tenant.
type badAuthKeys struct {
	admin, operator, viewer, all string // tenant acme (admin, operator), globex (viewer), "*" (all)
	jwtSecret                    []byte
}

func newBadAuthKeys() badAuthKeys {
	r := func(prefix string) string { return prefix + "-" + rand.Text() }
	return badAuthKeys{admin: r("adm"), operator: r("op"), viewer: r("view"), all: r("all"), jwtSecret: []byte(r("hs256-secret"))}
}

// file is the auth file: the admin key stored as a digest (as advised),
// the others in plain text; jwt is the YAML of the jwt section.
func (k badAuthKeys) file(jwtSection string) string {
	sum := sha256.Sum256([]byte(k.admin))
	return fmt.Sprintf(`apiKeys:
  - {name: acme-admin, key: "sha256:%s", tenant: acme, role: admin}
  - {name: acme-operator, key: %q, tenant: acme, role: operator}
  - {name: globex-viewer, key: %q, tenant: globex, role: viewer}
  - {name: ops-everywhere, key: %q, tenant: "*", role: viewer}
jwt: %s
`, hex.EncodeToString(sum[:]), k.operator, k.viewer, k.all, jwtSection)
}

func (k badAuthKeys) hmacJWT() string {
	return fmt.Sprintf("{issuer: %q, audience: %q, hmacSecretEnv: CB_BAD_JWT_SECRET, tenantClaim: tenant, roleClaim: role}", badIssuer, badAudience)
}

// secrets are every credential the test holds, by a name to report.
func (k badAuthKeys) secrets() map[string]string {
	return map[string]string{"the admin key": k.admin, "the operator key": k.operator, "the viewer key": k.viewer,
		"the all-tenant key": k.all, "the JWT secret": string(k.jwtSecret)}
}

// badAuthStack runs the stack with the auth file content, its log in sink.
func badAuthStack(t *testing.T, k badAuthKeys, content string) (*stack.Stack, *auth.Authenticator, string, *logSink) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(name string) string {
		if name == "CB_BAD_JWT_SECRET" {
			return string(k.jwtSecret)
		}
		return ""
	}
	a, _, err := auth.Load(path, getenv)
	if err != nil {
		t.Fatal(err)
	}
	sink := &logSink{}
	st, err := stack.Start(context.Background(), stack.Options{
		Server: embedded.Options{DataDir: filepath.Join(dir, "data"), Port: -1}, Store: defaultStore(), TokenInstances: 1,
		Metrics: metrics.NewRegistry(), Auth: a, Log: zerolog.New(sink),
		HTTP: config.HTTP{Addr: "127.0.0.1:0", MaxBodyBytes: 1 << 20, Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	return st, a, path, sink
}

// goodClaims are claims the edge accepts; each bad case spoils one thing.
func goodClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": badIssuer, "aud": badAudience, "sub": "alice", "tenant": "acme", "role": "operator",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

func changed(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

// mint signs claims with method and key, with extra JOSE header fields.
func mint(t *testing.T, method jwt.SigningMethod, key any, c jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawJWT builds a token by hand: any header, the claims, any signature.
func rawJWT(header map[string]any, c jwt.MapClaims, sig string) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(c)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(p) + "." + sig
}

// badCase is one Authorization header and what the edge must answer.
type badCase struct {
	name     string
	noHeader bool   // send no Authorization header at all
	header   string // the Authorization header's value
}

// badResult is what the edge answered a request.
type badResult struct {
	status int
	header http.Header
	body   []byte
}

// postWith posts a query with the case's Authorization header (SSE when
// sse), and reads the whole answer.
func postWith(t *testing.T, url string, c badCase, sse bool) badResult {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"query":"{ workflows { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	if sse {
		req.Header.Set("Accept", "text/event-stream")
	}
	if !c.noHeader {
		req.Header.Set("Authorization", c.header)
	}
	cx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(cx))
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return badResult{resp.StatusCode, resp.Header, body}
}

// checkUnauthenticated asserts a 401 with WWW-Authenticate: Bearer and a
// GraphQL-over-HTTP error body coded UNAUTHENTICATED that does not repeat
// the credential.
func checkUnauthenticated(t *testing.T, c badCase, r badResult) {
	t.Helper()
	if r.status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401; body %.200s", r.status, r.body)
	}
	if wa := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer") {
		t.Errorf("WWW-Authenticate %q, want Bearer …", wa)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var body struct {
		Data   *json.RawMessage `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	if body.Data != nil || len(body.Errors) != 1 || body.Errors[0].Extensions["code"] != "UNAUTHENTICATED" || body.Errors[0].Message == "" {
		t.Errorf("body %s, want one error coded UNAUTHENTICATED and no data", r.body)
	}
	if cred := strings.TrimSpace(strings.TrimPrefix(c.header, "Bearer")); len(cred) >= 8 && bytes.Contains(r.body, []byte(cred)) {
		t.Errorf("the answer repeats the credential: %.200s", r.body)
	}
}

// TestBadCredentials: every shape of bad credential — none, empty, another
// scheme, a wrong API key, a truncated, unsigned, wrongly signed,
// wrong-algorithm, wrong-issuer/audience, expired, not-yet-valid, huge or
// incomplete JWT — gets 401, WWW-Authenticate: Bearer and a GraphQL error
// coded UNAUTHENTICATED over HTTP (and SSE), and close 4403 over
// graphql-ws; with HS256 and then, after a reload, RS256 (JWKS) JWTs,
// where an HS256 token signed with the public key (algorithm confusion)
// is refused too. A request header block over the edge's limit (64 KiB)
// is refused by the HTTP server itself with 431 before any handler. No
// key, secret or token ever reaches the log or /metrics.
func TestBadCredentials(t *testing.T) {
	k := newBadAuthKeys()
	st, a, path, sink := badAuthStack(t, k, k.file(k.hmacJWT()))
	url := st.GraphQL
	secrets := k.secrets()
	used := func(name, token string) string { secrets[name] = token; return token }

	good := used("a good HS256 JWT", mint(t, jwt.SigningMethodHS256, k.jwtSecret, goodClaims(), nil))
	// The controls: the good credentials pass, so each refusal below is for
	// its one defect.
	for _, cred := range []string{k.admin, k.operator, good} {
		if r := postWith(t, url, badCase{name: "control", header: "Bearer " + cred}, false); r.status != 200 || bytes.Contains(r.body, []byte(`"errors"`)) {
			t.Fatalf("a good credential: %d %s", r.status, r.body)
		}
	}
	wrongSecret := []byte("another-hs256-secret-of-32-bytes-or-more")
	secrets["the wrong JWT secret"] = string(wrongSecret)
	basic := used("the Basic credential", base64.StdEncoding.EncodeToString([]byte("acme-admin:"+k.admin)))
	hugeKid := strings.Repeat("k", 16<<10)
	hs := func(name string, c jwt.MapClaims) string {
		return used(name, mint(t, jwt.SigningMethodHS256, k.jwtSecret, c, nil))
	}
	noneSigned := used("an alg-none JWT", mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims(), nil))
	goodSig := good[strings.LastIndex(good, ".")+1:]
	cases := []badCase{
		{name: "no header", noHeader: true},
		{name: "empty header", header: ""},
		{name: "Bearer without a value", header: "Bearer"},
		{name: "Bearer and blanks", header: "Bearer    "},
		{name: "Basic with the admin key as password", header: "Basic " + basic},
		{name: "lowercase bearer", header: "bearer " + used("a wrong key", "adm-"+rand.Text())}, // the scheme is case-insensitive: a wrong key still fails
		{name: "another scheme", header: "Token " + k.admin},
		{name: "the key without a scheme", header: k.admin},
		{name: "a wrong API key", header: "Bearer " + used("a wrong key", "adm-"+rand.Text())},
		{name: "the admin key with a character changed", header: "Bearer " + k.admin[:len(k.admin)-1] + "#"},
		{name: "the admin key and more", header: "Bearer " + k.admin + "x"},
		{name: "the admin key's digest", header: "Bearer sha256:" + func() string { s := sha256.Sum256([]byte(k.admin)); return hex.EncodeToString(s[:]) }()},
		{name: "the admin key twice", header: "Bearer " + k.admin + " " + k.admin},
		{name: "truncated JWT", header: "Bearer " + good[:len(good)-6]},
		{name: "JWT without its signature", header: "Bearer " + good[:strings.LastIndex(good, ".")+1]},
		{name: "JWT of two parts", header: "Bearer " + good[:strings.LastIndex(good, ".")]},
		{name: "JWT header only", header: "Bearer " + good[:strings.Index(good, ".")]},
		{name: "JWT of four parts", header: "Bearer " + good + "." + goodSig},
		{name: "alg none, unsigned", header: "Bearer " + noneSigned},
		{name: "alg NONE, unsigned", header: "Bearer " + rawJWT(map[string]any{"alg": "NONE", "typ": "JWT"}, goodClaims(), "")},
		{name: "alg none with the good signature", header: "Bearer " + rawJWT(map[string]any{"alg": "none", "typ": "JWT"}, goodClaims(), goodSig)},
		{name: "claims swapped under the good signature", header: "Bearer " + rawJWT(map[string]any{"alg": "HS256", "typ": "JWT"}, changed(goodClaims(), "role", "admin"), goodSig)},
		{name: "HS256 with the wrong secret", header: "Bearer " + used("a wrong-secret JWT", mint(t, jwt.SigningMethodHS256, wrongSecret, goodClaims(), nil))},
		{name: "HS384 with the right secret", header: "Bearer " + used("an HS384 JWT", mint(t, jwt.SigningMethodHS384, k.jwtSecret, goodClaims(), nil))},
		{name: "HS512 with the right secret", header: "Bearer " + used("an HS512 JWT", mint(t, jwt.SigningMethodHS512, k.jwtSecret, goodClaims(), nil))},
		{name: "wrong issuer", header: "Bearer " + hs("a wrong-issuer JWT", changed(goodClaims(), "iss", "https://evil.test"))},
		{name: "no issuer", header: "Bearer " + hs("an issuer-less JWT", changed(goodClaims(), "iss", nil))},
		{name: "wrong audience", header: "Bearer " + hs("a wrong-audience JWT", changed(goodClaims(), "aud", "someone-else"))},
		{name: "wrong audiences", header: "Bearer " + hs("a wrong-audiences JWT", changed(goodClaims(), "aud", []string{"a", "b"}))},
		{name: "no audience", header: "Bearer " + hs("an audience-less JWT", changed(goodClaims(), "aud", nil))},
		{name: "expired", header: "Bearer " + hs("an expired JWT", changed(goodClaims(), "exp", time.Now().Add(-time.Minute).Unix()))},
		{name: "expired long ago", header: "Bearer " + hs("a long-expired JWT", changed(goodClaims(), "exp", 1))},
		{name: "no expiry", header: "Bearer " + hs("an expiry-less JWT", changed(goodClaims(), "exp", nil))},
		{name: "expiry not a number", header: "Bearer " + hs("a JWT with exp a string", changed(goodClaims(), "exp", "tomorrow"))},
		{name: "nbf in the future", header: "Bearer " + hs("a not-yet-valid JWT", changed(goodClaims(), "nbf", time.Now().Add(time.Hour).Unix()))},
		{name: "no subject", header: "Bearer " + hs("a subject-less JWT", changed(goodClaims(), "sub", nil))},
		{name: "no role claim", header: "Bearer " + hs("a role-less JWT", changed(goodClaims(), "role", nil))},
		{name: "unknown role", header: "Bearer " + hs("a root JWT", changed(goodClaims(), "role", "root"))},
		{name: "role of another type", header: "Bearer " + hs("a JWT with a role list", changed(goodClaims(), "role", []string{"admin"}))},
		// Every identity names a tenant (issue 14): a JWT without a valid
		// tenant claim is refused, and none may claim the services' all-tenant
		// scope by its subject token ("_all").
		{name: "no tenant claim", header: "Bearer " + hs("a tenant-less JWT", changed(goodClaims(), "tenant", nil))},
		{name: "empty tenant claim", header: "Bearer " + hs("an empty-tenant JWT", changed(goodClaims(), "tenant", ""))},
		{name: "tenant _all", header: "Bearer " + hs("an _all JWT", changed(goodClaims(), "tenant", "_all"))},
		{name: "tenant with a dot", header: "Bearer " + hs("a dotted-tenant JWT", changed(goodClaims(), "tenant", "acme.globex"))},
		{name: "tenant with a wildcard", header: "Bearer " + hs("a wildcard-tenant JWT", changed(goodClaims(), "tenant", "acme>"))},
		{name: "tenant a number", header: "Bearer " + hs("a numeric-tenant JWT", changed(goodClaims(), "tenant", 7))},
		{name: "iat far in the future", header: "Bearer " + hs("a JWT issued in 2100", changed(goodClaims(), "iat", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()))},
		{name: "tenant * from a claim", header: "Bearer " + hs("a JWT claiming every tenant", changed(goodClaims(), "tenant", "*"))},
		// Well signed, but 16 KiB: over the 8 KiB bound on a credential,
		// refused before it is parsed; within the 64 KiB header limit.
		{name: "JWT with a 16 KiB header", header: "Bearer " + used("a 16 KiB JWT", mint(t, jwt.SigningMethodHS256, k.jwtSecret, goodClaims(), map[string]any{"kid": hugeKid}))},
		{name: "16 KiB of junk", header: "Bearer " + strings.Repeat("A", 16<<10)},
	}
	for _, c := range cases {
		t.Run("HTTP/"+c.name, func(t *testing.T) { checkUnauthenticated(t, c, postWith(t, url, c, false)) })
	}
	// SSE takes the header too, and is refused the same way.
	for _, c := range pick(t, cases, "no header", "a wrong API key", "alg none, unsigned", "expired") {
		t.Run("SSE/"+c.name, func(t *testing.T) { checkUnauthenticated(t, c, postWith(t, url, c, true)) })
	}

	// A header block over the edge's MaxHeaderBytes (64 KiB by default):
	// Go's HTTP server answers 431 itself, before any handler, so without
	// WWW-Authenticate or a GraphQL body. Any 4xx is a refusal; never a 5xx.
	t.Run("HTTP/JWT with a 64 KiB header", func(t *testing.T) {
		c := badCase{name: "64 KiB", header: "Bearer " + used("a 64 KiB JWT", mint(t, jwt.SigningMethodHS256, k.jwtSecret, goodClaims(), map[string]any{"kid": strings.Repeat("k", 64<<10)}))}
		r := postWith(t, url, c, false)
		if r.status != http.StatusRequestHeaderFieldsTooLarge && r.status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 431 (or 401); body %.200s", r.status, r.body)
		}
		t.Logf("a 64 KiB JWT: %d %s", r.status, http.StatusText(r.status))
	})

	ws := "ws" + strings.TrimPrefix(url, "http")
	t.Run("graphql-ws", func(t *testing.T) {
		if code := wsInit(t, ws, "Bearer "+good); code != 0 {
			t.Fatalf("the good JWT over graphql-ws: close %d", code)
		}
		for _, c := range pick(t, cases, "empty header", "Basic with the admin key as password", "lowercase bearer", "a wrong API key",
			"truncated JWT", "alg none, unsigned", "HS256 with the wrong secret", "wrong issuer", "wrong audience", "expired",
			"nbf in the future", "no role claim", "no tenant claim", "tenant _all", "JWT with a 16 KiB header") {
			if code := wsInit(t, ws, c.header); code != 4403 {
				t.Errorf("%s over graphql-ws: close %d, want 4403", c.name, code)
			}
		}
	})

	// RS256 from a JWKS file, after a reload.
	priv := testRSAKey(t)
	other := testRSAKey(t)
	dir := t.TempDir()
	b64 := base64.RawURLEncoding.EncodeToString
	jwks := fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"k1","alg":"RS256","use":"sig","n":%q,"e":%q}]}`,
		b64(priv.N.Bytes()), b64(big.NewInt(int64(priv.E)).Bytes()))
	if err := os.WriteFile(filepath.Join(dir, "keys.json"), []byte(jwks), 0o600); err != nil {
		t.Fatal(err)
	}
	rsJWT := fmt.Sprintf("{issuer: %q, audience: %q, jwksFile: %q, tenantClaim: tenant, roleClaim: role}", badIssuer, badAudience, filepath.Join(dir, "keys.json"))
	if err := os.WriteFile(path, []byte(k.file(rsJWT)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	kid := map[string]any{"kid": "k1"}
	goodRS := used("a good RS256 JWT", mint(t, jwt.SigningMethodRS256, priv, goodClaims(), kid))
	if r := postWith(t, url, badCase{name: "control", header: "Bearer " + goodRS}, false); r.status != 200 {
		t.Fatalf("a good RS256 JWT: %d %s", r.status, r.body)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pkcs1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&priv.PublicKey)})
	rsCases := []badCase{
		// Algorithm confusion: HS256 "signed" with the verifier's public key.
		{name: "HS256 signed with the public key (PEM)", header: "Bearer " + mint(t, jwt.SigningMethodHS256, pubPEM, goodClaims(), kid)},
		{name: "HS256 signed with the public key (PKCS#1 PEM)", header: "Bearer " + mint(t, jwt.SigningMethodHS256, pkcs1PEM, goodClaims(), kid)},
		{name: "HS256 signed with the public key (DER)", header: "Bearer " + mint(t, jwt.SigningMethodHS256, pubDER, goodClaims(), kid)},
		{name: "HS256 signed with the public key (modulus)", header: "Bearer " + mint(t, jwt.SigningMethodHS256, priv.N.Bytes(), goodClaims(), kid)},
		{name: "HS256 signed with the JWKS file", header: "Bearer " + mint(t, jwt.SigningMethodHS256, []byte(jwks), goodClaims(), kid)},
		{name: "HS256 with the former HMAC secret", header: "Bearer " + good},
		{name: "alg none", header: "Bearer " + mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims(), kid)},
		{name: "RS256 by another key", header: "Bearer " + mint(t, jwt.SigningMethodRS256, other, goodClaims(), kid)},
		{name: "RS256 with an unknown kid", header: "Bearer " + mint(t, jwt.SigningMethodRS256, priv, goodClaims(), map[string]any{"kid": "k2"})},
		{name: "PS256 by the right key", header: "Bearer " + mint(t, jwt.SigningMethodPS256, priv, goodClaims(), kid)},
		{name: "RS256 truncated", header: "Bearer " + goodRS[:len(goodRS)-10]},
		{name: "RS256 wrong issuer", header: "Bearer " + mint(t, jwt.SigningMethodRS256, priv, changed(goodClaims(), "iss", "https://evil.test"), kid)},
		{name: "RS256 wrong audience", header: "Bearer " + mint(t, jwt.SigningMethodRS256, priv, changed(goodClaims(), "aud", "x"), kid)},
		{name: "RS256 expired", header: "Bearer " + mint(t, jwt.SigningMethodRS256, priv, changed(goodClaims(), "exp", time.Now().Add(-time.Minute).Unix()), kid)},
		{name: "RS256 nbf in the future", header: "Bearer " + mint(t, jwt.SigningMethodRS256, priv, changed(goodClaims(), "nbf", time.Now().Add(time.Hour).Unix()), kid)},
		{name: "RS256 unknown role", header: "Bearer " + mint(t, jwt.SigningMethodRS256, priv, changed(goodClaims(), "role", "owner"), kid)},
	}
	for _, c := range rsCases {
		secrets["the RS case "+c.name] = strings.TrimPrefix(c.header, "Bearer ")
		t.Run("RS256/"+c.name, func(t *testing.T) { checkUnauthenticated(t, c, postWith(t, url, c, false)) })
	}
	t.Run("RS256/graphql-ws", func(t *testing.T) {
		for _, c := range rsCases[:3] {
			if code := wsInit(t, ws, c.header); code != 4403 {
				t.Errorf("%s over graphql-ws: close %d, want 4403", c.name, code)
			}
		}
	})

	// Nothing the clients sent, and no secret, is in the log or /metrics.
	logged := sink.String()
	if !strings.Contains(logged, `"status":401`) {
		t.Fatalf("the access log holds no 401: the log was not captured?\n%.2000s", logged)
	}
	noSecretsIn(t, "the log", logged, secrets)
	metricsBody := getWith(t, strings.TrimSuffix(url, "/graphql")+"/metrics", "Bearer "+k.admin)
	noSecretsIn(t, "/metrics", metricsBody, secrets)
}

// pick returns the cases of these names.
func pick(t *testing.T, cases []badCase, names ...string) []badCase {
	t.Helper()
	var out []badCase
	for _, n := range names {
		i := slices.IndexFunc(cases, func(c badCase) bool { return c.name == n })
		if i < 0 {
			t.Fatalf("no case %q", n)
		}
		out = append(out, cases[i])
	}
	return out
}

// testRSAKey makes a 2048-bit RSA key.
func testRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// getWith GETs url with an Authorization header and returns the body of a
// 200 (failing otherwise).
func getWith(t *testing.T, url, authorization string) string {
	t.Helper()
	code, body := getStatus(t, url, authorization)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %.200s", url, code, body)
	}
	return body
}

func getStatus(t *testing.T, url, authorization string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAccessLogIdentity: the access log names the identity, tenant and
// role of each authenticated request (over HTTP and graphql-ws), and
// /metrics counts requests by tenant and credential (the API key's name,
// "jwt" for JWTs, "-" for none), neither ever holding a key, a secret or a
// token, nor a JWT's subject in the metrics.
func TestAccessLogIdentity(t *testing.T) {
	k := newBadAuthKeys()
	st, _, _, sink := badAuthStack(t, k, k.file(k.hmacJWT()))
	url := st.GraphQL
	base := strings.TrimSuffix(url, "/graphql")
	secrets := k.secrets()
	tok := mint(t, jwt.SigningMethodHS256, k.jwtSecret, changed(changed(goodClaims(), "sub", "alice@globex"), "tenant", "globex"), nil)
	secrets["the JWT"] = tok
	for _, c := range []struct{ who, header string }{
		{"admin key", "Bearer " + k.admin},
		{"viewer key", "Bearer " + k.viewer},
		{"all-tenant key", "Bearer " + k.all},
		{"JWT", "Bearer " + tok},
	} {
		if r := postWith(t, url, badCase{name: c.who, header: c.header}, false); r.status != 200 {
			t.Fatalf("%s: %d %s", c.who, r.status, r.body)
		}
	}
	wrong := "op-" + rand.Text()
	secrets["the wrong key"] = wrong
	if r := postWith(t, url, badCase{name: "wrong", header: "Bearer " + wrong}, false); r.status != 401 {
		t.Fatalf("a wrong key: %d", r.status)
	}
	ws := "ws" + strings.TrimPrefix(url, "http")
	if code := wsInit(t, ws, "Bearer "+k.operator); code != 0 {
		t.Fatalf("graphql-ws: close %d", code)
	}
	if code, _ := getStatus(t, base+"/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without credentials: %d, want 401", code)
	}
	if code, _ := getStatus(t, base+"/metrics", "Bearer "+k.viewer); code != http.StatusForbidden {
		t.Fatalf("/metrics for a viewer: %d, want 403", code)
	}
	body := getWith(t, base+"/metrics", "Bearer "+k.admin)

	type line struct{ path, status, identity, tenant, role string }
	want := []line{
		{"/graphql", "200", "acme-admin", "acme", "admin"},
		{"/graphql", "200", "globex-viewer", "globex", "viewer"},
		{"/graphql", "200", "ops-everywhere", "*", "viewer"},
		{"/graphql", "200", "alice@globex", "globex", "operator"},
		{"/graphql", "401", "", "", ""},
		{"/graphql", "101", "acme-operator", "acme", "operator"}, // logged when the connection has ended
		{"/metrics", "401", "", "", ""},
		{"/metrics", "403", "globex-viewer", "globex", "viewer"},
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := map[line]bool{}
		for _, m := range sink.lines(t) {
			if m["message"] != "http" {
				continue
			}
			str := func(k string) string { s, _ := m[k].(string); return s }
			got[line{str("path"), fmt.Sprint(m["status"]), str("identity"), str("tenant"), str("role")}] = true
		}
		var missing []line
		for _, w := range want {
			if !got[w] {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the access log lacks %+v; it has %v", missing, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, w := range []string{
		`cb_http_requests_total{path="/graphql",status="200",tenant="acme",credential="acme-admin"} 1`,
		`cb_http_requests_total{path="/graphql",status="200",tenant="globex",credential="globex-viewer"} 1`,
		`cb_http_requests_total{path="/graphql",status="200",tenant="*",credential="ops-everywhere"} 1`,
		`cb_http_requests_total{path="/graphql",status="200",tenant="globex",credential="jwt"} 1`,
		`cb_http_requests_total{path="/graphql",status="401",tenant="-",credential="-"} 1`,
		`cb_http_requests_total{path="/metrics",status="401",tenant="-",credential="-"} 1`,
		`cb_http_requests_total{path="/metrics",status="403",tenant="globex",credential="globex-viewer"} 1`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %s", w)
		}
	}
	if strings.Contains(body, "alice") {
		t.Error("/metrics names a JWT's subject")
	}
	noSecretsIn(t, "the log", sink.String(), secrets)
	noSecretsIn(t, "/metrics", body, secrets)
}
