package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/deploy/stack"
	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/embedded"
	"github.com/cbnats/circuitbreaker/shared/metrics"
)

const jwtSecret = "an-hs256-secret-of-at-least-32-bytes!!"

// authSystem runs the stack with an auth file of three keys, one per role,
// and HS256 JWTs.
func authSystem(t *testing.T) (*stack.Stack, *auth.Authenticator, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.yaml")
	writeAuth(t, path, "viewer-key")
	a, _, err := auth.Load(path, func(string) string { return jwtSecret })
	if err != nil {
		t.Fatal(err)
	}
	st, err := stack.Start(context.Background(), stack.Options{
		Server: embedded.Options{DataDir: filepath.Join(dir, "data"), Port: -1}, Store: defaultStore(), TokenInstances: 1,
		Metrics: metrics.NewRegistry(), Auth: a, Log: zerolog.Nop(),
		HTTP: config.HTTP{Addr: "127.0.0.1:0", MaxBodyBytes: 1 << 20, Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	return st, a, path
}

func writeAuth(t *testing.T, path, viewerKey string) {
	t.Helper()
	content := fmt.Sprintf(`apiKeys:
  - {name: the-viewer, key: %q, tenant: "*", role: viewer}
  - {name: the-operator, key: operator-key, tenant: "*", role: operator}
  - {name: the-admin, key: admin-key, tenant: "*", role: admin}
jwt: {issuer: https://idp.test, audience: cb, hmacSecretEnv: CB_JWT_SECRET, tenant: "*", roleClaim: role}
`, viewerKey)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// call posts a document with a bearer credential and returns the status
// and the first error's code ("" when none).
func call(t *testing.T, url, bearer, query string, vars map[string]any) (int, string, map[string]json.RawMessage) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct {
		Data   map[string]json.RawMessage
		Errors []struct{ Extensions map[string]any }
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("status %d, body %s", resp.StatusCode, raw)
	}
	code := ""
	if len(r.Errors) > 0 {
		code, _ = r.Errors[0].Extensions["code"].(string)
	}
	if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
	return resp.StatusCode, code, r.Data
}

// TestRolesOverHTTP: each role may do what its row of the role table says,
// and gets FORBIDDEN for the rest; no credentials is 401; a mutation
// records the identity as triggeredBy, whatever the client claims.
func TestRolesOverHTTP(t *testing.T) {
	st, _, _ := authSystem(t)
	url := st.GraphQL
	wf := `mutation($id:String!){ createWorkflow(input:{id:$id, name:"r", places:["a","b"], initialPlace:"a", transitions:[{id:"go", fromPlaces:["a"], toPlace:"b"}]}){ id } }`
	if status, code, _ := call(t, url, "", `{ workflows { id } }`, nil); status != 401 || code != "UNAUTHENTICATED" {
		t.Fatalf("no credentials: %d %s", status, code)
	}
	if status, code, _ := call(t, url, "wrong-key", `{ workflows { id } }`, nil); status != 401 || code != "UNAUTHENTICATED" {
		t.Fatalf("bad credentials: %d %s", status, code)
	}
	_, code, _ := call(t, url, "admin-key", wf, map[string]any{"id": "roles"})
	if code != "" {
		t.Fatalf("admin createWorkflow: %s", code)
	}
	var tok struct{ ID string }
	_, code, data := call(t, url, "operator-key", `mutation{ createToken(input:{workflowId:"roles", triggeredBy:"someone-else"}){ id } }`, nil)
	if code != "" {
		t.Fatalf("operator createToken: %s", code)
	}
	testkit.Must(0, json.Unmarshal(data["createToken"], &tok))
	fire := `mutation($id:String!){ fireTransition(input:{tokenId:$id, transitionId:"go"}){ place } }`
	for _, tc := range []struct {
		who, query string
		vars       map[string]any
		want       string
	}{
		{"viewer-key", `{ workflows { id } }`, nil, ""},
		{"viewer-key", fire, map[string]any{"id": tok.ID}, "FORBIDDEN"},
		{"viewer-key", wf, map[string]any{"id": "v"}, "FORBIDDEN"},
		{"operator-key", wf, map[string]any{"id": "o"}, "FORBIDDEN"},
		{"operator-key", `mutation{ createEventSubscription(input:{workflowId:"roles", name:"s"}){ name } }`, nil, "FORBIDDEN"},
		{"operator-key", fire, map[string]any{"id": tok.ID}, ""},
		{"admin-key", `mutation{ createEventSubscription(input:{workflowId:"roles", name:"s"}){ name } }`, nil, ""},
	} {
		if _, code, _ := call(t, url, tc.who, tc.query, tc.vars); code != tc.want {
			t.Errorf("%s: %.60s → %q, want %q", tc.who, tc.query, code, tc.want)
		}
	}
	_, _, data = call(t, url, "viewer-key", `query($id:String!){ token(id:$id){ transitionHistory { triggeredBy triggeredByClaim } } }`, map[string]any{"id": tok.ID})
	if got := string(data["token"]); !strings.Contains(got, `{"triggeredBy":"the-operator","triggeredByClaim":"someone-else"}`) {
		t.Fatalf("created: %s, want the authenticated identity with the client's claim apart", got)
	}
	_, _, data = call(t, url, "viewer-key", `query{ events(workflowId:"roles", eventTypes:["token_created"]){ triggeredBy triggeredByClaim } }`, nil)
	if got := string(data["events"]); got != `[{"triggeredBy":"the-operator","triggeredByClaim":"someone-else"}]` {
		t.Fatalf("token_created event: %s", got)
	}
}

// TestAuthOverWebSocketAndReload: graphql-ws takes its credential in
// connection_init (4403 when bad); a rotated key stops working at once; an
// expired JWT ends its subscription.
func TestAuthOverWebSocketAndReload(t *testing.T) {
	st, a, path := authSystem(t)
	ws := "ws" + strings.TrimPrefix(st.GraphQL, "http")
	if code := wsInit(t, ws, "Bearer nope"); code != 4403 {
		t.Fatalf("bad credential over graphql-ws: close %d, want 4403", code)
	}
	if code := wsInit(t, ws, "Bearer viewer-key"); code != 0 {
		t.Fatalf("good credential over graphql-ws: close %d", code)
	}
	writeAuth(t, path, "rotated-key")
	testkit.Must(a.Reload())
	if status, _, _ := call(t, st.GraphQL, "viewer-key", `{ workflows { id } }`, nil); status != 401 {
		t.Fatalf("the rotated-out key: %d, want 401", status)
	}
	if status, _, _ := call(t, st.GraphQL, "rotated-key", `{ workflows { id } }`, nil); status != 200 {
		t.Fatalf("the new key: %d", status)
	}
	// A JWT expiring in 2 s: its subscription (over SSE) ends then.
	_, code, _ := call(t, st.GraphQL, "admin-key", `mutation{ createWorkflow(input:{id:"exp", name:"e", places:["a"], initialPlace:"a", transitions:[]}){ id } }`, nil)
	if code != "" {
		t.Fatal(code)
	}
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "https://idp.test", "aud": "cb", "sub": "short",
		"role": "viewer", "exp": time.Now().Add(2 * time.Second).Unix()}).SignedString([]byte(jwtSecret))
	body := `{"query":"subscription { workflowEvents(workflowId: \"exp\") { eventType } }"}`
	req, _ := http.NewRequest(http.MethodPost, st.GraphQL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body) // until the stream ends
	resp.Body.Close()
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Fatalf("the subscription of a JWT valid for 2 s lasted %v", d)
	}
}

// wsInit opens graphql-ws with an authorization in connection_init and
// returns the close code (0 when acknowledged).
func wsInit(t *testing.T, url, authorization string) websocket.StatusCode {
	t.Helper()
	cx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(cx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	msg, _ := json.Marshal(map[string]any{"type": "connection_init", "payload": map[string]any{"authorization": authorization}})
	if err := c.Write(cx, websocket.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(cx)
	if err != nil {
		return websocket.CloseStatus(err)
	}
	if !strings.Contains(string(b), "connection_ack") {
		t.Fatalf("unexpected %s", b)
	}
	return 0
}
