package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/shared/natstest"
)

// TestConsoleRoutes: the console's page and assets are served next to
// GraphiQL's, without credentials even when the edge requires them, and
// GraphiQL's page links to the console.
func TestConsoleRoutes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(file, []byte("apiKeys:\n  - {name: k, key: \"sha256:"+strings.Repeat("0", 64)+"\", tenant: \"*\", role: viewer}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _, err := auth.Load(file, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, natstest.Server(t))
	srv, err := New(nc, Options{Log: zerolog.Nop(), Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	get := func(path, accept string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, p := range []string{"/console", "/console/"} {
		res, body := get(p, "")
		if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "Circuit Breaker console") {
			t.Fatalf("GET %s: %d %q", p, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	_, page := get("/console", "")
	app := regexp.MustCompile(`/console/assets/[0-9a-f]+/app\.js`).FindString(page)
	if res, _ := get(app, ""); app == "" || res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("GET %q: %v", app, res.Status)
	}
	if res, body := get("/graphql", "text/html"); res.StatusCode != 200 || !strings.Contains(body, `href="/console"`) {
		t.Fatalf("GraphiQL's page (%d) has no link to /console", res.StatusCode)
	}
	if res, _ := get("/graphql?query=%7B__typename%7D", "application/json"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the API without credentials: %d, want 401", res.StatusCode)
	}
}
