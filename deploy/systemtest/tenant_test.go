package systemtest

import (
	"errors"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"testing"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestTenantWorkflowIDs: the guide's "tenant::workflow" ids work end to
// end, each tenant's workflow in its own stream, and malformed ones are refused.
func TestTenantWorkflowIDs(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	for _, id := range []string{"tenant_a::document_approval", "tenant_b::document_approval"} {
		testkit.Must(s.c.CreateWorkflow(c, race(id)))
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: id}))
		moved := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "to_b"}))
		if moved.NatsSubject != subjects.TokenState(id, "b", tok.ID) {
			t.Fatalf("subject = %s", moved.NatsSubject)
		}
		if got := testkit.Must(s.c.GetWorkflow(c, id)); got.ID != id {
			t.Fatalf("workflow = %s", got.ID)
		}
		if n := len(testkit.Must(s.c.TokensInPlace(c, id, "b", wire.Page{})).Items); n != 1 {
			t.Fatalf("%s: %d tokens in b", id, n)
		}
		if n := len(testkit.Must(s.c.History(c, &wire.HistoryRequest{WorkflowID: id})).Items); n != 3 {
			t.Fatalf("%s: %d events", id, n)
		}
	}
	ids := map[string]bool{}
	for _, w := range testkit.Must(s.c.ListWorkflows(c, wire.Page{})).Items {
		ids[w.ID] = true
	}
	if !ids["tenant_a::document_approval"] || !ids["tenant_b::document_approval"] {
		t.Fatalf("listed %v", ids)
	}
	for _, bad := range []string{"a::b::c", "::x", "a:b", "a::b.c"} {
		if _, err := s.c.CreateWorkflow(c, race(bad)); !errors.Is(err, fail.ErrBadInput) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
