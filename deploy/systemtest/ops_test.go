package systemtest

import (
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cbnats/circuitbreaker/shared/wire"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHealthReadyMetrics: liveness, readiness and the metrics of every
// component on the edge.
func TestHealthReadyMetrics(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	base := strings.TrimSuffix(s.stack.GraphQL, "/graphql")
	if code, body := get(t, base+"/health"); code != 200 || !strings.Contains(body, "running") {
		t.Fatalf("/health: %d %q", code, body)
	}
	if code, body := get(t, base+"/ready"); code != 200 {
		t.Fatalf("/ready: %d %q", code, body)
	}
	testkit.Must(s.c.CreateWorkflow(c, race("metrics")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "metrics"}))
	testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "to_b"}))
	s.gql(t, `{ workflows { id } }`, nil)
	_, body := get(t, base+"/metrics")
	for _, want := range []string{
		`cb_service_requests_total{service="token",subject="cb.*.token.fire",tenant="_all",code="200"} 1`,
		`cb_service_requests_total{service="workflow",subject="cb.*.workflow.list",tenant="_all",code="200"} 1`,
		`cb_token_changes_committed_total 2`,
		`cb_jetstream_commit_duration_seconds_count`,
		`cb_http_requests_total{path="/graphql",status="200",tenant="-",credential="-"} 1`,
		`cb_service_request_duration_seconds_bucket{service="token",subject="cb.*.token.create",le="+Inf"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestRootPathAndGraphiQL: POST / answers GraphQL as the original did, and
// browsers get GraphiQL at / and /graphql.
func TestRootPathAndGraphiQL(t *testing.T) {
	s := start(t, "")
	base := strings.TrimSuffix(s.stack.GraphQL, "/graphql")
	resp, err := http.Post(base+"/", "application/json", strings.NewReader(`{"query":"{ workflows { id } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `{"data":{"workflows":[]}}` {
		t.Fatalf("POST /: %d %s", resp.StatusCode, b)
	}
	for _, path := range []string{"/", "/graphql"} {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "graphiql.min.js") {
			t.Fatalf("GET %s as a browser: %d", path, resp.StatusCode)
		}
	}
	resp, err = http.Get(base + "/graphql?query=" + "mutation%7B__typename%7D")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("mutation over GET: %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}
