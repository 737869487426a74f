package systemtest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// A workflow whose v2 drops place "old" for "new" and renames go.
func migrating(t *testing.T, s *system, id string) {
	t.Helper()
	c := ctx(t)
	testkit.Must(s.c.CreateWorkflow(c, &wire.CreateWorkflowRequest{ID: id, Name: "m", Places: []string{"a", "b", "old"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "shelve", FromPlaces: []string{"a"}, ToPlace: "old"}}}))
	testkit.Must(s.c.UpdateWorkflow(c, &wire.UpdateWorkflowRequest{ExpectedVersion: 1, CreateWorkflowRequest: wire.CreateWorkflowRequest{
		ID: id, Name: "m2", Places: []string{"a", "b", "new"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "advance", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "renew", FromPlaces: []string{"new"}, ToPlace: "a"}}}}))
}

// versionsOf counts a workflow's tokens by version and the revisions they are at.
func versionsOf(t *testing.T, s *system, wf string) (map[int]int, map[string]uint64) {
	t.Helper()
	byVersion, revs := map[int]int{}, map[string]uint64{}
	for p := (wire.Page{First: 1000}); ; {
		page := testkit.Must(s.c.ListTokens(ctx(t), wf, p))
		for _, tok := range page.Items {
			byVersion[tok.WorkflowVersion]++
			revs[tok.ID] = tok.Revision
		}
		if page.Next == "" {
			return byVersion, revs
		}
		p.After = page.Next
	}
}

// TestMigrationWithMapping: a bad mapping changes nothing; a dry run
// changes nothing; a filter picks tokens; a migration moves each token
// atomically (record, event, revision) to its mapped place on the new
// version, whose transitions it then fires; running it again changes
// nothing.
func TestMigrationWithMapping(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	migrating(t, s, "mig")
	var ids []string
	for i := range 6 {
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "mig", WorkflowVersion: 1,
			Data: json.RawMessage(map[bool]string{true: `{"priority":"high"}`, false: `{"priority":"low"}`}[i%2 == 0])}))
		if i >= 4 {
			testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "shelve"}))
		}
		ids = append(ids, tok.ID)
	}
	_, before := versionsOf(t, s, "mig")
	req := func(mapping map[string]string) *wire.MigrateRequest {
		return &wire.MigrateRequest{WorkflowID: "mig", FromVersion: 1, ToVersion: 2, PlaceMapping: mapping}
	}
	for name, bad := range map[string]*wire.MigrateRequest{
		"unmapped old place":   req(nil),
		"mapped to no place":   req(map[string]string{"old": "nowhere"}),
		"mapped from no place": req(map[string]string{"old": "new", "ghost": "a"}),
		"same version":         {WorkflowID: "mig", FromVersion: 2, ToVersion: 2},
	} {
		if _, err := s.c.MigrateTokens(c, bad); !errors.Is(err, fail.ErrBadInput) {
			t.Errorf("%s: %v, want BAD_USER_INPUT", name, err)
		}
	}
	if _, err := s.c.MigrateTokens(c, &wire.MigrateRequest{WorkflowID: "mig", FromVersion: 1, ToVersion: 3}); !errors.Is(err, fail.ErrNotFound) {
		t.Errorf("to a version that does not exist: %v", err)
	}
	dry := req(map[string]string{"old": "new"})
	dry.DryRun = true
	res := testkit.Must(s.c.MigrateTokens(c, dry))
	if res.MigratedCount != 6 || res.FailedCount != 0 || !res.Complete || len(res.Outcomes) != 6 {
		t.Fatalf("dry run: %+v", res)
	}
	if byV, revs := versionsOf(t, s, "mig"); byV[1] != 6 || !sameRevisions(revs, before) {
		t.Fatalf("a refused or dry migration changed tokens: %v", byV)
	}
	// A filter: the high-priority tokens only (0, 2 and 4; 4 is in old).
	high := req(map[string]string{"old": "new"})
	high.Filter = &wire.MigrateFilter{Data: map[string]json.RawMessage{"priority": json.RawMessage(`"high"`)}}
	if res := testkit.Must(s.c.MigrateTokens(c, high)); res.MigratedCount != 3 || res.FailedCount != 0 {
		t.Fatalf("filtered: %+v", res)
	}
	if res := testkit.Must(s.c.MigrateTokens(c, req(map[string]string{"old": "new"}))); res.MigratedCount != 3 || !res.Complete {
		t.Fatalf("the rest: %+v", res)
	}
	byV, after := versionsOf(t, s, "mig")
	if byV[2] != 6 {
		t.Fatalf("versions after: %v", byV)
	}
	for id, rev := range after {
		if rev != before[id]+1 {
			t.Errorf("token %s at revision %d, want %d: one change per migrated token", id, rev, before[id]+1)
		}
	}
	shelved := testkit.Must(s.c.GetToken(c, ids[4]))
	if shelved.Place != "new" || shelved.WorkflowVersion != 2 {
		t.Fatalf("a token in old: %+v", shelved)
	}
	hist := testkit.Must(s.c.AllHistory(c, ids[4]))
	if last := hist[len(hist)-1].Record; last.TransitionID != flow.MigrateTransition || last.FromPlace != "old" || last.ToPlace != "new" {
		t.Fatalf("its last record: %+v", last)
	}
	testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: ids[4], TransitionID: "renew"}))
	if _, err := s.c.Fire(c, &wire.FireRequest{TokenID: ids[1], TransitionID: "go"}); err == nil {
		t.Fatal("a migrated token fired its old version's transition")
	}
	// Again: nothing to do, no event; by id, the token counts as migrated.
	if res := testkit.Must(s.c.MigrateTokens(c, req(map[string]string{"old": "new"}))); res.MigratedCount != 0 || res.FailedCount != 0 {
		t.Fatalf("run again: %+v", res)
	}
	byID := req(map[string]string{"old": "new"})
	byID.TokenIDs = []string{ids[0], "00000000-0000-4000-8000-000000000000"}
	if res := testkit.Must(s.c.MigrateTokens(c, byID)); res.MigratedCount != 1 || res.FailedCount != 1 || res.Outcomes[1].Error == "" && res.Outcomes[0].Error == "" {
		t.Fatalf("by id: %+v", res)
	}
	migrated := 0
	for _, e := range events(t, s, "mig") {
		if e.EventType == wire.EventTokenMigrated {
			migrated++
			if e.WorkflowVersion != 2 {
				t.Fatalf("token_migrated = %+v", e)
			}
		}
	}
	if migrated != 6 {
		t.Fatalf("%d token_migrated events for 6 tokens", migrated)
	}
	var bad struct {
		Errors []struct{ Extensions map[string]any }
	}
	testkit.Must(0, json.Unmarshal(s.post(t, `mutation{ migrateTokens(input:{workflowId:"mig", fromVersion:1, toVersion:2, filter:{place:"a"}}){ migratedCount } }`, nil), &bad))
	if len(bad.Errors) == 0 || bad.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
		t.Fatalf("a misspelt filter key: %+v", bad)
	}
}

func sameRevisions(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestMigrationResumes: a migration of many tokens stopped by its
// deadline goes on when sent again, until complete: every token moved
// exactly once.
func TestMigrationResumes(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	migrating(t, s, "big")
	const n = 1500
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / 16 {
				testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "big", WorkflowVersion: 1}))
			}
		}()
	}
	wg.Wait()
	total := n / 16 * 16
	window := 600 * time.Millisecond // ~100 ms of work a run
	if raceDetector {
		window = 3 * time.Second
	}
	runs, moved := 0, 0
	for ; runs < 100; runs++ {
		short, cancel := context.WithTimeout(c, window) // stops ~500 ms before its end
		res, err := s.c.MigrateTokens(short, &wire.MigrateRequest{WorkflowID: "big", FromVersion: 1, ToVersion: 2, PlaceMapping: map[string]string{"old": "new"}})
		cancel()
		if err != nil {
			continue // the deadline passed in flight: whatever committed is committed
		}
		moved += res.MigratedCount
		if res.Complete {
			break
		}
	}
	byV, _ := versionsOf(t, s, "big")
	if byV[2] != total {
		t.Fatalf("after %d runs: %v", runs+1, byV)
	}
	migrated := 0
	for _, e := range events(t, s, "big") {
		if e.EventType == wire.EventTokenMigrated {
			migrated++
		}
	}
	if migrated != total {
		t.Fatalf("%d token_migrated events for %d tokens", migrated, total)
	}
	if runs == 0 {
		t.Logf("one run was enough: the resumption was not exercised (a fast machine)")
	}
	t.Logf("%d tokens migrated in %d runs of %v (%d counted in the replies that came back)", total, runs+1, window, moved)
}
