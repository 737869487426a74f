package systemtest

import (
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
	must(s.c.CreateWorkflow(c, race("metrics")))
	tok := must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "metrics"}))
	must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "to_b"}))
	s.gql(t, `{ workflows { id } }`, nil)
	_, body := get(t, base+"/metrics")
	for _, want := range []string{
		`cb_service_requests_total{service="token",subject="cb.token.fire",code="200"} 1`,
		`cb_service_requests_total{service="workflow",subject="cb.workflow.list",code="200"} 1`,
		`cb_token_changes_committed_total 2`,
		`cb_jetstream_commit_duration_seconds_count`,
		`cb_http_requests_total{path="/graphql",status="200"} 1`,
		`cb_service_request_duration_seconds_bucket{service="token",subject="cb.token.create",le="+Inf"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
