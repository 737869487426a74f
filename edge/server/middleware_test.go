package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/shared/metrics"
)

func TestCORS(t *testing.T) {
	h := cors([]string{"https://app.example"}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	req := httptest.NewRequest("OPTIONS", "/graphql", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("preflight: %d %v", rec.Code, rec.Header())
	}
	req.Header.Set("Origin", "https://evil.example")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin allowed: %v", rec.Header())
	}
}

// TestAccessLogAndMetricsCarryIdentity: the access log names the identity,
// tenant and role that authenticated a request, and the request counter
// its tenant and credential (an API key's name, "jwt" for every JWT, "-"
// for none); neither ever holds the credential itself.
func TestAccessLogAndMetricsCarryIdentity(t *testing.T) {
	const key = "the-secret-api-key-value"
	reg := metrics.NewRegistry()
	var logs bytes.Buffer
	var s Server
	var note *auth.Identity
	h := s.accessLog(newHTTPMetrics(reg).wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if note != nil {
			noteIdentity(r.Context(), *note)
		}
		w.WriteHeader(http.StatusOK)
	})))
	for _, tc := range []struct {
		name   string
		id     *auth.Identity
		log    map[string]any // fields the access-log line must hold; nil values must be absent
		metric string
	}{
		{"API key", &auth.Identity{Name: "acme-admin", Tenant: "acme", Role: auth.Admin},
			map[string]any{"identity": "acme-admin", "tenant": "acme", "role": "admin"},
			`cb_http_requests_total{path="/graphql",status="200",tenant="acme",credential="acme-admin"} 1`},
		{"all-tenant key", &auth.Identity{Name: "ops", Tenant: "*", Role: auth.Viewer},
			map[string]any{"identity": "ops", "tenant": "*", "role": "viewer"},
			`cb_http_requests_total{path="/graphql",status="200",tenant="*",credential="ops"} 1`},
		{"JWT", &auth.Identity{Name: "alice@idp", Tenant: "globex", Role: auth.Operator, Expires: time.Now().Add(time.Hour)},
			map[string]any{"identity": "alice@idp", "tenant": "globex", "role": "operator"},
			`cb_http_requests_total{path="/graphql",status="200",tenant="globex",credential="jwt"} 1`},
		{"no identity", nil,
			map[string]any{"identity": nil, "tenant": nil, "role": nil},
			`cb_http_requests_total{path="/graphql",status="200",tenant="-",credential="-"} 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			note = tc.id
			req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			req = req.WithContext(zerolog.New(&logs).WithContext(req.Context()))
			h.ServeHTTP(httptest.NewRecorder(), req)
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("access log %q: %v", logs.String(), err)
			}
			for k, want := range tc.log {
				if got, ok := line[k]; want == nil && ok || want != nil && got != want {
					t.Errorf("access log %s = %v, want %v (line %s)", k, got, want, logs.String())
				}
			}
			var out strings.Builder
			if _, err := reg.WriteTo(&out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tc.metric) {
				t.Errorf("metrics lack %s:\n%s", tc.metric, out.String())
			}
			if strings.Contains(logs.String()+out.String(), key) {
				t.Error("the credential leaked into the access log or the metrics")
			}
		})
	}
}

// TestMetricsWithoutAccessLog: the metrics middleware works on its own,
// without the access log's per-request holder around it.
func TestMetricsWithoutAccessLog(t *testing.T) {
	reg := metrics.NewRegistry()
	h := newHTTPMetrics(reg).wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noteIdentity(r.Context(), auth.Identity{Name: "k", Tenant: "acme", Role: auth.Viewer})
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/health", nil))
	var out strings.Builder
	_, _ = reg.WriteTo(&out)
	if want := `cb_http_requests_total{path="/health",status="200",tenant="acme",credential="k"} 1`; !strings.Contains(out.String(), want) {
		t.Fatalf("metrics lack %s:\n%s", want, out.String())
	}
}
