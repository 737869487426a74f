package systemtest

import (
	"errors"
	"sync"
	"testing"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// v1 and v2 of a workflow: v2 renames go to advance and adds a place.
func versioned(id string) (*wire.CreateWorkflowRequest, *wire.UpdateWorkflowRequest) {
	v1 := &wire.CreateWorkflowRequest{ID: id, Name: "doc", Places: []string{"a", "b"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b"}}}
	v2 := &wire.UpdateWorkflowRequest{ExpectedVersion: 1, CreateWorkflowRequest: wire.CreateWorkflowRequest{ID: id, Name: "doc v2",
		Places: []string{"a", "b", "c"}, InitialPlace: "a", Transitions: []flow.Transition{
			{ID: "advance", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "close", FromPlaces: []string{"b"}, ToPlace: "c"}}}}
	return v1, v2
}

// TestTokensKeepTheirVersion: a token created on v1 keeps firing v1's
// transitions after v2 exists, and new tokens run on v2 (or on the version
// asked for); reads by version, the versions list and workflow_updated.
func TestTokensKeepTheirVersion(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	v1, v2 := versioned("doc")
	testkit.Must(s.c.CreateWorkflow(c, v1))
	old := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "doc"}))
	d := testkit.Must(s.c.UpdateWorkflow(c, v2))
	if d.Version != 2 || d.Name != "doc v2" || d.CreatedAt != testkit.Must(s.c.GetWorkflowVersion(c, "doc", 1)).CreatedAt {
		t.Fatalf("v2 = %+v", d)
	}
	fresh := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "doc"}))
	pinned := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "doc", WorkflowVersion: 1}))
	if old.WorkflowVersion != 1 || fresh.WorkflowVersion != 2 || pinned.WorkflowVersion != 1 {
		t.Fatalf("versions: old %d, fresh %d, pinned %d", old.WorkflowVersion, fresh.WorkflowVersion, pinned.WorkflowVersion)
	}
	if _, err := s.c.Fire(c, &wire.FireRequest{TokenID: old.ID, TransitionID: "advance"}); err == nil {
		t.Fatal("a v1 token fired v2's transition")
	}
	if moved := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: old.ID, TransitionID: "go"})); moved.Place != "b" || moved.WorkflowVersion != 1 {
		t.Fatalf("v1 token after go: %+v", moved)
	}
	if _, err := s.c.Fire(c, &wire.FireRequest{TokenID: fresh.ID, TransitionID: "go"}); err == nil {
		t.Fatal("a v2 token fired v1's transition")
	}
	testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: fresh.ID, TransitionID: "advance"}))
	if moved := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: fresh.ID, TransitionID: "close"})); moved.Place != "c" {
		t.Fatalf("v2 token after close: %+v", moved)
	}
	if av := testkit.Must(s.c.Available(c, pinned.ID)); len(av.Transitions) != 1 || av.Transitions[0].ID != "go" {
		t.Fatalf("pinned v1 token may fire %+v", av.Transitions)
	}
	// Place c exists only in v2: listing it works; a place in no version does not.
	if n := len(testkit.Must(s.c.TokensInPlace(c, "doc", "c", wire.Page{})).Items); n != 1 {
		t.Fatalf("%d tokens in c", n)
	}
	if _, err := s.c.TokensInPlace(c, "doc", "nowhere", wire.Page{}); !errors.Is(err, fail.ErrNotFound) {
		t.Fatalf("a place in no version: %v", err)
	}
	if vs := testkit.Must(s.c.WorkflowVersions(c, "doc")).Items; len(vs) != 2 || vs[0].Version != 1 || vs[1].Version != 2 || len(vs[0].Places) != 2 {
		t.Fatalf("versions = %+v", vs)
	}
	if _, err := s.c.GetWorkflowVersion(c, "doc", 3); !errors.Is(err, fail.ErrNotFound) {
		t.Fatalf("version 3: %v", err)
	}
	updated := 0
	for _, e := range events(t, s, "doc") {
		if e.EventType == wire.EventWorkflowUpdated {
			updated++
			if e.Revision != 2 || e.NatsSequence == 0 {
				t.Fatalf("workflow_updated = %+v", e)
			}
		}
	}
	if updated != 1 {
		t.Fatalf("%d workflow_updated events", updated)
	}
	if _, err := s.c.UpdateWorkflow(c, v2); !errors.Is(err, fail.ErrConflict) {
		t.Fatalf("an update based on an old version: %v", err)
	}
	bad := *v2
	bad.ExpectedVersion, bad.InitialPlace = 2, "nowhere"
	if _, err := s.c.UpdateWorkflow(c, &bad); !errors.Is(err, fail.ErrBadInput) {
		t.Fatalf("an invalid version: %v", err)
	}
	if testkit.Must(s.c.GetWorkflow(c, "doc")).Version != 2 {
		t.Fatal("a refused update changed the workflow")
	}
}

// TestConcurrentUpdatesOneWins: editors updating the same version at once
// while tokens are being fired: exactly one update commits, the others get
// CONFLICT; one workflow_updated event.
func TestConcurrentUpdatesOneWins(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	v1, v2 := versioned("busy")
	testkit.Must(s.c.CreateWorkflow(c, &wire.CreateWorkflowRequest{ID: v1.ID, Name: v1.Name, Places: v1.Places, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "back", FromPlaces: []string{"b"}, ToPlace: "a"}}}))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "busy"}))
	stop := make(chan struct{})
	var firing sync.WaitGroup
	firing.Add(1)
	go func() { // token writes keep moving the stream on
		defer firing.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: []string{"go", "back"}[i%2]})
		}
	}()
	const editors = 8
	var wg sync.WaitGroup
	errs := make([]error, editors)
	for i := range editors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.c.UpdateWorkflow(c, v2)
		}()
	}
	wg.Wait()
	close(stop)
	firing.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, fail.ErrConflict):
			t.Fatalf("an editor got %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent updates of version 1 won", won, editors)
	}
	if d := testkit.Must(s.c.GetWorkflow(c, "busy")); d.Version != 2 {
		t.Fatalf("latest = %d", d.Version)
	}
	n := 0
	for _, e := range events(t, s, "busy") {
		if e.EventType == wire.EventWorkflowUpdated {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d workflow_updated events", n)
	}
}
