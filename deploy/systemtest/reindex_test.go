package systemtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// regional is a workflow whose version 1 declares metadata.team; tokens
// carry a region and an amount too, which a later version adds.
func regional(id string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{ID: id, Name: "regional", Places: []string{"a", "b"}, InitialPlace: "a",
		SearchAttributes: []flow.SearchAttribute{{Path: "metadata.team", Type: flow.Keyword}},
		Transitions:      []flow.Transition{{ID: "ab", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "ba", FromPlaces: []string{"b"}, ToPlace: "a"}}}
}

// addRegion stores the next version of regional: it adds metadata.region
// and data.amount.
func addRegion(t *testing.T, s *system, id string) {
	t.Helper()
	v2 := regional(id)
	v2.SearchAttributes = append(v2.SearchAttributes, flow.SearchAttribute{Path: "metadata.region", Type: flow.Keyword},
		flow.SearchAttribute{Path: "data.amount", Type: flow.Number})
	testkit.Must(s.c.UpdateWorkflow(ctx(t), &wire.UpdateWorkflowRequest{CreateWorkflowRequest: *v2, ExpectedVersion: 1}))
}

var regions = []string{"north", "south", "east", "west"}

// seedRegional creates n tokens of wf, 64 at a time; a tenth have no region.
func seedRegional(t *testing.T, c *client.Client, wf string, n int) {
	t.Helper()
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := range next {
				md := fmt.Sprintf(`{"team":"t%d","region":%q}`, i%3, regions[i%4])
				if i%10 == 9 {
					md = fmt.Sprintf(`{"team":"t%d"}`, i%3)
				}
				_, err := c.CreateToken(ctx(t), &wire.CreateTokenRequest{WorkflowID: wf, Metadata: json.RawMessage(md), Data: json.RawMessage(fmt.Sprintf(`{"amount":%d}`, i))})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// waitReady polls wf's search index until it is READY and returns it, with
// the largest progress seen while it built.
func waitReady(t *testing.T, c *client.Client, wf string, within time.Duration) (ready *wire.SearchIndex, seen int) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(10 * time.Millisecond) {
		idx := testkit.Must(c.SearchIndex(ctx(t), wf))
		if idx.State == wire.IndexReady {
			return idx, seen
		}
		seen = max(seen, idx.Indexed)
		if time.Now().After(deadline) {
			t.Fatalf("the search index of %s is still %+v after %v", wf, idx, within)
		}
	}
}

// checkRegions compares findTokens and countTokens on each region and on
// an amount range with a brute-force filter over every token of wf.
func checkRegions(t *testing.T, c *client.Client, wf string) {
	t.Helper()
	var all []*flow.Token
	for p := (wire.Page{First: 1000}); ; {
		page := testkit.Must(c.ListTokens(ctx(t), wf, p))
		all = append(all, page.Items...)
		if page.Next == "" {
			break
		}
		p.After = page.Next
	}
	type fields struct {
		Region string   `json:"region"`
		Amount *float64 `json:"amount"`
	}
	of := func(tok *flow.Token) (f fields) {
		_ = json.Unmarshal(tok.Metadata, &f)
		_ = json.Unmarshal(tok.Data, &f)
		return f
	}
	check := func(name string, filter wire.TokenFilter, want func(fields) bool) {
		var ids, got []string
		for _, tok := range all {
			if want(of(tok)) {
				ids = append(ids, tok.ID)
			}
		}
		filter.WorkflowIDs = []string{wf}
		for p := (wire.Page{First: 1000}); ; {
			page := testkit.Must(c.FindTokens(ctx(t), &wire.FindTokensRequest{Filter: filter, Page: p}))
			for _, tok := range page.Items {
				got = append(got, tok.ID)
			}
			if page.Next == "" {
				break
			}
			p.After = page.Next
		}
		slices.Sort(ids)
		if !slices.Equal(got, ids) {
			t.Errorf("%s: found %d, brute force %d", name, len(got), len(ids))
		}
		if n := testkit.Must(c.CountTokens(ctx(t), filter)); n != len(ids) {
			t.Errorf("%s: counted %d, brute force %d", name, n, len(ids))
		}
	}
	for _, r := range regions {
		check("region "+r, wire.TokenFilter{Metadata: map[string]json.RawMessage{"region": json.RawMessage(`"` + r + `"`)}},
			func(f fields) bool { return f.Region == r })
	}
	check("amount in [100, 900)", wire.TokenFilter{Ranges: []wire.Range{{Path: "data.amount", Gte: json.RawMessage("100"), Lt: json.RawMessage("900")}}},
		func(f fields) bool { return f.Amount != nil && *f.Amount >= 100 && *f.Amount < 900 })
}

// TestSearchIndexBuild: a version that adds search attributes has the
// tokens that existed indexed in the background (a workflow without
// tokens needs no build). While it builds, a
// search on the new attributes is refused (UNAVAILABLE) and its progress
// shows; meanwhile writers move tokens, change their regions and create
// more, and every change — on a token of either version — is indexed
// under the latest version's attributes. Once READY, every search equals
// a brute-force filter over all tokens. It fails if changes keep writing
// their own version's entries, or if the build misses tokens.
func TestSearchIndexBuild(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	const wf = "regional"
	n := 5000
	if raceDetector {
		n = 2000
	}
	// Without tokens there is nothing to build: the attributes work at once.
	testkit.Must(s.c.CreateWorkflow(c, regional("empty")))
	addRegion(t, s, "empty")
	if idx := testkit.Must(s.c.SearchIndex(c, "empty")); idx.State != wire.IndexReady || idx.StartedAt != nil {
		t.Errorf("a workflow without tokens: %+v", idx)
	}
	testkit.Must(s.c.FindTokens(c, &wire.FindTokensRequest{Filter: wire.TokenFilter{WorkflowIDs: []string{"empty"},
		Metadata: map[string]json.RawMessage{"region": json.RawMessage(`"north"`)}}}))

	testkit.Must(s.c.CreateWorkflow(c, regional(wf)))
	t0 := time.Now()
	seedRegional(t, s.c, wf, n)
	t.Logf("seeded %d tokens in %v", n, time.Since(t0).Round(time.Millisecond))
	c = ctx(t)
	before := testkit.Must(s.c.SearchIndex(c, wf))
	if before.State != wire.IndexReady || before.StartedAt != nil || before.Version != 1 {
		t.Fatalf("before any update: %+v", before)
	}
	ids := testkit.Must(s.c.ListTokens(c, wf, wire.Page{First: 1000})).Items

	t0 = time.Now()
	addRegion(t, s, wf)
	_, err := s.c.FindTokens(c, &wire.FindTokensRequest{Filter: wire.TokenFilter{WorkflowIDs: []string{wf}, Metadata: map[string]json.RawMessage{"region": json.RawMessage(`"north"`)}}})
	refused := errors.Is(err, fail.ErrUnavailable)
	if err != nil && !refused {
		t.Fatalf("a search on a building attribute: %v", err)
	}
	// Meanwhile: moves, new regions (some removed), new tokens.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for i := range 60 {
				tok := ids[r.IntN(len(ids))]
				var err error
				switch i % 3 {
				case 0:
					_, err = s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: []string{"ab", "ba"}[r.IntN(2)]})
				case 1:
					md := fmt.Sprintf(`{"region":%q}`, regions[r.IntN(4)])
					if r.IntN(4) == 0 {
						md = `{"region":null}`
					}
					_, err = s.c.UpdateToken(c, &wire.UpdateTokenRequest{TokenID: tok.ID, Metadata: json.RawMessage(md)})
				default:
					_, err = s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf, Metadata: json.RawMessage(fmt.Sprintf(`{"region":%q}`, regions[r.IntN(4)]))})
				}
				if err != nil && !errors.Is(err, fail.ErrInvalidTransition) && !errors.Is(err, fail.ErrConflict) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	ready, seen := waitReady(t, s.c, wf, time.Minute)
	took := time.Since(t0)
	t.Logf("%d tokens: refused while building: %v; progress seen %d; READY after %v: %d indexed, %d read (%.0f tokens/s)",
		n, refused, seen, took.Round(time.Millisecond), ready.Indexed, ready.Scanned, float64(ready.Scanned)/took.Seconds())
	if ready.Version != 2 || len(ready.Building) != 0 || ready.StartedAt == nil || ready.FinishedAt == nil || ready.Scanned > n || ready.Indexed > ready.Scanned ||
		ready.Indexed < n-500 { // every token has an amount; at most 480 changed
		t.Errorf("finished build: %+v", ready)
	}
	checkRegions(t, s.c, wf)
	// GraphQL shows it too.
	var got struct {
		SearchIndex struct {
			State         string
			Building      []string
			IndexedTokens int
			FinishedAt    *string
		}
	}
	s.ok(t, `query($id: String!){ workflow(id: $id){ searchIndex { state building indexedTokens finishedAt } } }`, map[string]any{"id": wf}, "workflow", &got)
	if got.SearchIndex.State != "READY" || got.SearchIndex.IndexedTokens != ready.Indexed || got.SearchIndex.FinishedAt == nil {
		t.Errorf("GraphQL searchIndex: %+v", got.SearchIndex)
	}
}

// TestSearchIndexBuildResumes: a build whose processes stop half-way is
// taken over once its lease ends (the sweeper finds it) and goes on from
// its saved progress, not from the start; the result equals a brute-force
// filter.
func TestSearchIndexBuildResumes(t *testing.T) {
	dir := t.TempDir()
	fast := func(st *storeOpts) { st.ArchiveSweepEvery = 200 * time.Millisecond }
	s, c := startWith(t, dir, fast), ctx(t)
	const wf = "regional"
	n := 5000
	if raceDetector {
		n = 2000
	}
	testkit.Must(s.c.CreateWorkflow(c, regional(wf)))
	seedRegional(t, s.c, wf, n)
	c = ctx(t)
	addRegion(t, s, wf)
	var mid *wire.SearchIndex
	for deadline := time.Now().Add(time.Minute); mid == nil; time.Sleep(5 * time.Millisecond) {
		idx := testkit.Must(s.c.SearchIndex(c, wf))
		switch {
		case idx.State == wire.IndexReady:
			t.Fatalf("the build finished (%d tokens read) before its progress was seen: seed more tokens", idx.Scanned)
		case idx.Indexed > 0:
			mid = idx
		case time.Now().After(deadline):
			t.Fatalf("no progress: %+v", idx)
		}
	}
	s.stop()
	s, c = startWith(t, dir, fast), ctx(t)
	stopped := testkit.Must(s.c.SearchIndex(c, wf))
	t0 := time.Now()
	ready, _ := waitReady(t, s.c, wf, time.Minute)
	t.Logf("stopped with %d of %d read (%d saved at the stop); taken over and READY %v later: %d read in all",
		mid.Scanned, n, stopped.Scanned, time.Since(t0).Round(time.Millisecond), ready.Scanned)
	if stopped.State != wire.IndexBuilding || stopped.After == 0 || ready.Scanned > n || ready.Scanned < stopped.Scanned {
		t.Errorf("stopped at %+v, finished %+v: not resumed from its progress", stopped, ready)
	}
	checkRegions(t, s.c, wf)
}

// TestSearchRefusedWhileBuilding: while another instance holds the build
// of an attribute, findTokens, countTokens and bulkTransitionTokens over
// GraphQL refuse a filter on it with UNAVAILABLE (never an answer without
// the tokens not yet indexed), the attributes already built still work,
// Workflow.searchIndex shows the build, and token.reindex leaves a build
// leased elsewhere alone.
func TestSearchRefusedWhileBuilding(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	const wf = "held"
	testkit.Must(s.c.CreateWorkflow(c, regional(wf)))
	testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf, Metadata: json.RawMessage(`{"team":"t1","region":"north"}`)}))
	addRegion(t, s, wf)
	waitReady(t, s.c, wf, time.Minute)
	holdBuild(t, s, wf, 2, "metadata.region")

	const why = "the search index of 'metadata.region' in workflow held is being built"
	vars := map[string]any{"wf": wf}
	s.fails(t, `query($wf: String!){ findTokens(filter: {workflowIds: [$wf], metadata: {region: "north"}}) { id } }`, vars, "UNAVAILABLE", why)
	s.fails(t, `query($wf: String!){ countTokens(filter: {workflowIds: [$wf], or: [{metadata: {team: "t1"}}, {metadata: {region: "north"}}]}) }`, vars, "UNAVAILABLE", why)
	s.fails(t, `mutation($wf: String!){ bulkTransitionTokens(input: {workflowId: $wf, fromPlace: "a", transitionId: "ab", idempotencyKey: "held",
		filter: {metadata: {region: "north"}}}) { processedCount } }`, vars, "UNAVAILABLE", why)
	var n int
	s.ok(t, `query($wf: String!){ countTokens(filter: {workflowIds: [$wf], metadata: {team: "t1"}}) }`, vars, "countTokens", &n)
	if n != 1 {
		t.Errorf("a search on a built attribute: %d tokens, want 1", n)
	}
	var got struct {
		SearchIndex struct {
			State    string
			Building []string
		}
	}
	s.ok(t, `query($wf: String!){ workflow(id: $wf){ searchIndex { state building } } }`, vars, "workflow", &got)
	if got.SearchIndex.State != "BUILDING" || !slices.Equal(got.SearchIndex.Building, []string{"metadata.region"}) {
		t.Errorf("searchIndex while held: %+v", got.SearchIndex)
	}
	if idx := testkit.Must(s.c.Reindex(c, wf)); idx.State != wire.IndexBuilding || idx.Runner != "another-instance" {
		t.Errorf("token.reindex on a build leased elsewhere: %+v", idx)
	}
	if idx := testkit.Must(s.c.SearchIndex(c, wf)); idx.Runner != "another-instance" || idx.Scanned != 5 {
		t.Errorf("the held build was taken over: %+v", idx)
	}
}
