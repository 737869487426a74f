package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/shared/natstest"
)

// TestNoServicesIsUnavailable: with NATS up but no service running, a
// query is an UNAVAILABLE field error at once (HTTP 200 with partial data),
// never a hang or a 500, and /ready says why.
func TestNoServicesIsUnavailable(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	srv, err := New(nc, Options{Limits: gql.Limits{Timeout: 5 * time.Second}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	start := time.Now()
	resp, err := http.Post(ts.URL+"/graphql", "application/json", strings.NewReader(`{"query":"{ workflows { id } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data   map[string]any
		Errors []struct {
			Message    string
			Extensions map[string]any
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(body.Errors) != 1 || body.Errors[0].Extensions["code"] != "UNAVAILABLE" {
		t.Fatalf("status %d, body %+v", resp.StatusCode, body)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("took %v: no responders must fail fast", time.Since(start))
	}
	ready, err := http.Get(ts.URL + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	ready.Body.Close()
	if ready.StatusCode != http.StatusServiceUnavailable || ready.Header.Get("Retry-After") == "" {
		t.Fatalf("/ready = %d", ready.StatusCode)
	}
}
