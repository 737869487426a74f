package processtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestSearchIndexBuildKill9: the token service is killed with SIGKILL
// while it builds the entries of a search attribute a new version added.
// A new one takes the build over once its lease ends (its sweeper finds
// it) and goes on from the saved progress: every token is then found by
// the attribute, and no token was read twice.
func TestSearchIndexBuildKill9(t *testing.T) {
	url, first, c, _ := killableTokenService(t)
	cx := ctxFor(t, 3*time.Minute)
	const wf = "kill9idx"
	def := cycle(wf)
	testkit.Must(c.CreateWorkflow(cx, def))
	total := createTokens(cx, c, &wire.CreateTokenRequest{WorkflowID: wf, Metadata: json.RawMessage(`{"team":"a"}`)}, 8000, 16)
	def.SearchAttributes = []flow.SearchAttribute{{Path: "metadata.team", Type: flow.Keyword}}
	testkit.Must(c.UpdateWorkflow(cx, &wire.UpdateWorkflowRequest{CreateWorkflowRequest: *def, ExpectedVersion: 1}))
	var mid *wire.SearchIndex
	testkit.Poll(t, 30*time.Second, "the build under way", func() bool {
		mid = testkit.Must(c.SearchIndex(cx, wf))
		if mid.State == wire.IndexReady {
			t.Fatalf("the build of %d tokens finished before its progress was seen", total)
		}
		return mid.Indexed > 0
	})
	first.kill9(t)
	t0 := time.Now()
	second := startProc(t, "token-service", "--nats", url, "--log-level", "info", "--archive-sweep-every", "500ms")
	second.waitLine(t, `"serving"`, 30*time.Second)
	var ready *wire.SearchIndex
	testkit.Poll(t, time.Minute, "the build finished", func() bool {
		ready = testkit.Must(c.SearchIndex(cx, wf))
		return ready.State == wire.IndexReady
	})
	found := testkit.Must(c.CountTokens(cx, wire.TokenFilter{WorkflowIDs: []string{wf}, Metadata: map[string]json.RawMessage{"team": json.RawMessage(`"a"`)}}))
	t.Logf("killed with %d of %d tokens read (%d saved); the new instance finished %v later: %d read in all, %d found",
		mid.Scanned, total, mid.Indexed, time.Since(t0).Round(time.Millisecond), ready.Scanned, found)
	if found != total || ready.Scanned > total || ready.Scanned < mid.Scanned {
		t.Fatalf("found %d of %d tokens; the build read %d (%d before the kill)", found, total, ready.Scanned, mid.Scanned)
	}
}
