package securitytest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/deploy/stack"
	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/shared/config"
)

// system is the whole stack on single.conf, each component logged in as
// its own user, the edge with an auth file (an all-tenant admin key and
// the quotas below, which the edge publishes to the services).
type system struct {
	url     string // the NATS server URLs, comma separated
	pw      map[string]string
	graphql string
	key     string // the edge's API key: admin of every tenant

	mu    sync.Mutex
	conns map[string]*conn // the stack's connections, by component
}

// startSystem runs the stack on the NATS at url (servers started after
// setPasswords) with streams and buckets of the given replicas.
func startSystem(t *testing.T, url string, pw map[string]string, replicas int) *system {
	t.Helper()
	s := &system{url: url, pw: pw, conns: map[string]*conn{}}
	a, key := authFile(t)
	s.key = key
	st, err := stack.Start(testCtx(t, 5*time.Second), stack.Options{
		Auth: a,
		Dial: func(component string) (*nats.Conn, error) {
			c, err := dial(s.url, component, s.pw[component])
			if err != nil {
				return nil, err
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			key := component // the edge has two connections: "edge" and "edge+"
			for s.conns[key] != nil {
				key += "+"
			}
			s.conns[key] = c
			return c.Conn, nil
		},
		// EventMaxBytes makes the event service trim (list streams) every second.
		Store: config.Store{Replicas: replicas, DedupeWindow: 2 * time.Minute, EventMaxAge: time.Hour,
			EventMaxBytes: 1 << 30, MaxDeliver: 5, RequestTimeout: 10 * time.Second, RouteWrites: true},
		HTTP: config.HTTP{Addr: "127.0.0.1:0", MaxBodyBytes: 1 << 20, Timeout: 10 * time.Second,
			MaxTokens: 2000, MaxDepth: 15, MaxAliases: 30, MaxInFlight: 64},
		Log: zerolog.Nop(),
	})
	if err != nil {
		for name, c := range s.stackConns() {
			t.Logf("%s: %q", name, c.rec.all())
		}
		t.Fatalf("stack with least-privilege users: %v", err)
	}
	t.Cleanup(st.Stop)
	s.graphql = st.GraphQL
	return s
}

func (s *system) stackConns() map[string]*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*conn, len(s.conns))
	for k, v := range s.conns {
		out[k] = v
	}
	return out
}

// quotas are the tenants' quotas of the edge's auth file: acme may have
// one workflow and one live token (testTenants), beta is unlimited.
const quotas = `tenants:
  acme: {maxWorkflows: 1, maxLiveTokens: 1}
`

// authFile writes the edge's auth file: one admin key for every tenant,
// stored as its SHA-256, and the quotas.
func authFile(t *testing.T) (*auth.Authenticator, string) {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	key := hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(key))
	path := filepath.Join(t.TempDir(), "auth.yaml")
	file := fmt.Sprintf("apiKeys:\n  - {name: ops, key: \"sha256:%x\", tenant: \"*\", role: admin}\n%s", sum, quotas)
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _, err := auth.Load(path, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	return a, key
}

// gql runs a GraphQL document on the edge and returns its data; errors fail.
func (s *system) gql(t testing.TB, query string, vars map[string]any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(testCtx(t, 10*time.Second), http.MethodPost, s.graphql, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data   map[string]any   `json:"data"`
		Errors []map[string]any `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GraphQL reply: %v", err)
	}
	if len(out.Errors) > 0 || resp.StatusCode != http.StatusOK {
		t.Fatalf("GraphQL %s: HTTP %d, errors %v", strings.Fields(query)[0], resp.StatusCode, out.Errors)
	}
	return out.Data
}

// httpGet returns the status of GET path on the edge.
func (s *system) httpGet(t testing.TB, path string) int {
	t.Helper()
	url := strings.TrimSuffix(s.graphql, "/graphql") + path
	req, err := http.NewRequestWithContext(testCtx(t, 5*time.Second), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestLeastPrivilege runs the system with one user per component, proves
// every path of the system works under those permissions, and that what
// each user must not do is refused.
func TestLeastPrivilege(t *testing.T) {
	pw := setPasswords(t)
	s := startSystem(t, startServer(t, "single.conf").ClientURL(), pw, 1)
	t.Run("allowed", func(t *testing.T) { testAllowed(t, s) })
	t.Run("denied", func(t *testing.T) { testDenied(t, s) })
	t.Run("tenants", func(t *testing.T) { testTenants(t, s) })
	// Denials use their own connections: the stack's must still be clean.
	noViolations(t, s.stackConns())
}

// TestLeastPrivilegeCluster runs the allowed paths and the tenants' on the
// 3-node cluster of cluster/n*.conf with R3 streams and buckets, where the
// services read from stream leaders (STREAM.MSG.GET) instead of direct gets.
func TestLeastPrivilegeCluster(t *testing.T) {
	pw := setPasswords(t)
	s := startSystem(t, startCluster(t, pw), pw, 3)
	testAllowed(t, s)
	testTenants(t, s)
	noViolations(t, s.stackConns())
}

// login connects as user for the rest of the test.
func (s *system) login(t testing.TB, user string) *conn {
	t.Helper()
	c, err := dial(s.url, user, s.pw[user])
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	t.Cleanup(c.Close)
	return c
}
