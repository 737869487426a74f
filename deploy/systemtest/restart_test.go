package systemtest

import (
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"testing"

	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestRestart: stop the server and the services, start again on the same
// data directory: everything is readable and new transitions work.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	s, c := start(t, dir), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, race("restart")))
	var ids []string
	for range 20 {
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
		testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "to_b"}))
		ids = append(ids, tok.ID)
	}
	s.stop()

	s = start(t, dir)
	if got := testkit.Must(s.c.GetWorkflow(c, wf.ID)); got.Name != wf.Name || !got.CreatedAt.Equal(wf.CreatedAt) {
		t.Fatalf("workflow after restart = %+v", got)
	}
	if n := len(testkit.Must(s.c.ListWorkflows(c, wire.Page{})).Items); n != 1 {
		t.Fatalf("%d workflows listed after restart", n)
	}
	if n := len(testkit.Must(s.c.TokensInPlace(c, wf.ID, "b", wire.Page{})).Items); n != 20 {
		t.Fatalf("%d tokens in b after restart, want 20", n)
	}
	for _, id := range ids {
		tok := testkit.Must(s.c.GetToken(c, id))
		if tok.Place != "b" || tok.Revision != 2 {
			t.Fatalf("token %s after restart: %s rev %d", id, tok.Place, tok.Revision)
		}
		next := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: id, TransitionID: "tick"}))
		if next.Place != "a" || next.Revision != 3 {
			t.Fatalf("fire after restart: %s rev %d", next.Place, next.Revision)
		}
	}
	if n := len(events(t, s, wf.ID)); n != 1+20*3 {
		t.Fatalf("%d events, want %d", n, 1+20*3)
	}
}
