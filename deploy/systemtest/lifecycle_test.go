package systemtest

// The end of a token's and a workflow's life (issue 15): archiveToken,
// archiveAfter, deleteToken and deleteWorkflow, over the real stack.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// lifecycle is a workflow whose place done is terminal.
func lifecycle(id, archiveAfter string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{ID: id, Name: "lifecycle", Places: []string{"draft", "review", "done"}, InitialPlace: "draft",
		ArchiveAfter: archiveAfter, Transitions: []flow.Transition{
			{ID: "submit", FromPlaces: []string{"draft"}, ToPlace: "review"},
			{ID: "approve", FromPlaces: []string{"review"}, ToPlace: "done"},
		}}
}

// tokenIDs returns the ids of tokens.
func tokenIDs(ts []*flow.Token) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

// gqlIDs runs a query answering a token list in field and returns their ids.
func gqlIDs(t *testing.T, s *system, query string, vars map[string]any, field string) []string {
	t.Helper()
	var out []struct{ ID string }
	s.ok(t, query, vars, field, &out)
	ids := make([]string, len(out))
	for i, x := range out {
		ids[i] = x.ID
	}
	return ids
}

// TestArchiveLeavesEveryListing: an archived token is in no place's list,
// in neither tokens list (with and without workflowId) and in no count,
// yet reads by id (token, findToken, natsToken) with its history and an
// archive record; it cannot change; archiving it again returns it as it is.
func TestArchiveLeavesEveryListing(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, lifecycle("arch", "")))
	done := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID, Data: []byte(`{"n":1}`)}))
	live := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	for _, tr := range []string{"submit", "approve"} {
		testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: done.ID, TransitionID: tr}))
	}
	var archived struct {
		ID, Place, ArchivedAt, NatsSubject string
		Revision                           int
		TransitionHistory                  []struct{ TransitionID, FromPlace, ToPlace, TriggeredBy string }
	}
	const archiveQ = `mutation($id: String!) { archiveToken(id: $id) { id place archivedAt natsSubject revision transitionHistory { transitionId fromPlace toPlace triggeredBy } } }`
	s.ok(t, archiveQ, map[string]any{"id": done.ID}, "archiveToken", &archived)
	at, err := time.Parse(time.RFC3339Nano, archived.ArchivedAt)
	if err != nil || archived.Place != "done" || archived.Revision != 4 || archived.NatsSubject != subjects.ArchivedToken(wf.ID, done.ID) {
		t.Fatalf("archived: %+v (archivedAt: %v)", archived, err)
	}
	if h := archived.TransitionHistory; len(h) != 4 || h[3].TransitionID != "archive" || h[3].FromPlace != "done" || h[3].ToPlace != "done" {
		t.Fatalf("history of the archived token: %+v", h)
	}

	// Gone from every list and count.
	for _, q := range []struct{ query, field string }{
		{`{ tokensInPlace(workflowId: "arch", placeId: "done") { id } }`, "tokensInPlace"},
		{`{ tokens(workflowId: "arch") { id } }`, "tokens"},
		{`{ tokens { id } }`, "tokens"},
	} {
		if ids := gqlIDs(t, s, q.query, nil, q.field); slices.Contains(ids, done.ID) || (q.field == "tokens" && !slices.Contains(ids, live.ID)) {
			t.Errorf("%s lists %v (archived %s, live %s)", q.query, ids, done.ID, live.ID)
		}
	}
	for _, place := range []string{"draft", "review", "done"} {
		if ids := tokenIDs(testkit.Must(s.c.TokensInPlace(c, wf.ID, place, wire.Page{})).Items); slices.Contains(ids, done.ID) {
			t.Errorf("place %s lists the archived token", place)
		}
	}
	var stats struct {
		Tokens         int
		TokensPerPlace []struct {
			Place string
			Count int
		}
	}
	s.ok(t, `{ workflowStats(workflowId: "arch") { tokens tokensPerPlace { place count } } }`, nil, "workflowStats", &stats)
	if stats.Tokens != 1 || len(stats.TokensPerPlace) != 1 || stats.TokensPerPlace[0].Place != "draft" {
		t.Errorf("stats count the archived token: %+v", stats)
	}

	// Readable by id, with its history.
	for name, get := range map[string]func() (*flow.Token, error){
		"get":  func() (*flow.Token, error) { return s.c.GetToken(c, done.ID) },
		"find": func() (*flow.Token, error) { return s.c.FindToken(c, wf.ID, done.ID) },
	} {
		got := testkit.Must(get())
		if got.ArchivedAt == nil || !got.ArchivedAt.Equal(at) || got.Place != "done" || got.Revision != 4 || !jsonEqual(got.Data, `{"n":1}`) {
			t.Errorf("%s: %+v", name, got)
		}
	}
	if recs := s.records(t, done.ID); len(recs) != 4 || recs[3].TransitionID != flow.ArchiveTransition {
		t.Errorf("history: %+v", recs)
	}
	var byID struct{ ArchivedAt string }
	s.ok(t, `query($id: String!) { natsToken(id: $id) { archivedAt } }`, map[string]any{"id": done.ID}, "natsToken", &byID)
	if byID.ArchivedAt != archived.ArchivedAt {
		t.Errorf("natsToken archivedAt %q, want %q", byID.ArchivedAt, archived.ArchivedAt)
	}
	var liveByID struct{ ArchivedAt *string }
	s.ok(t, `query($id: String!) { token(id: $id) { archivedAt } }`, map[string]any{"id": live.ID}, "token", &liveByID)
	if liveByID.ArchivedAt != nil {
		t.Errorf("a live token has archivedAt %q", *liveByID.ArchivedAt)
	}

	// It cannot change; nothing can fire; archiving again changes nothing.
	if _, err := s.c.UpdateToken(c, &wire.UpdateTokenRequest{TokenID: done.ID, Data: []byte(`{"n":2}`)}); !errors.Is(err, fail.ErrConflict) || !strings.Contains(err.Error(), "archived") {
		t.Errorf("update of an archived token: %v", err)
	}
	av := testkit.Must(s.c.Available(c, done.ID))
	if len(av.Transitions) != 0 || slices.ContainsFunc(av.Evaluations, func(e flow.Evaluation) bool { return e.CanFire }) {
		t.Errorf("an archived token can fire: %+v", av)
	}
	again := testkit.Must(s.c.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: done.ID}))
	if again.Revision != 4 || !again.ArchivedAt.Equal(at) {
		t.Errorf("archived again: rev %d at %v, want rev 4 at %v", again.Revision, again.ArchivedAt, at)
	}
	var archivedEvents int
	for _, e := range eventsOf(events(t, s, wf.ID), done.ID) {
		if e.EventType == wire.EventTokenArchived {
			archivedEvents++
			if e.Place != "done" || e.Revision != 4 {
				t.Errorf("token_archived event: %+v", e)
			}
		}
	}
	if archivedEvents != 1 {
		t.Errorf("%d token_archived events, want 1", archivedEvents)
	}
}

// TestFireOnArchivedIsRefused: fire (both mutations) and update of an
// archived token get CONFLICT "archived" over GraphQL, and change nothing.
func TestFireOnArchivedIsRefused(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, lifecycle("arch_fire", "")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	testkit.Must(s.c.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: tok.ID}))
	vars := map[string]any{"id": tok.ID}
	s.fails(t, `mutation($id: String!) { fireTransition(input: {tokenId: $id, transitionId: "submit"}) { id } }`, vars, "CONFLICT", "archived")
	s.fails(t, `mutation($id: String!) { transitionTokenWithNats(input: {tokenId: $id, transitionId: "submit", newPlace: "review"}) { id } }`, vars, "CONFLICT", "archived")
	s.fails(t, `mutation($id: String!) { updateToken(input: {tokenId: $id, data: {x: 1}}) { id } }`, vars, "CONFLICT", "archived")
	if got := testkit.Must(s.c.GetToken(c, tok.ID)); got.Revision != 2 || got.Place != "draft" {
		t.Fatalf("the refused changes changed the token: %+v", got)
	}
}

// TestArchiveAfter: a workflow with archiveAfter has the tokens that sat
// that long in a terminal place archived, by the sweeper (every 100 ms
// here), and no other token; with writes routed (only the workflow's
// writer sweeps it) and not (both instances sweep: each token is
// archived once).
func TestArchiveAfter(t *testing.T) {
	for _, routed := range []bool{true, false} {
		t.Run(fmt.Sprintf("routed=%v", routed), func(t *testing.T) { testArchiveAfter(t, routed) })
	}
}

func testArchiveAfter(t *testing.T, routed bool) {
	s := startWith(t, "", func(st *config.Store) { st.ArchiveSweepEvery, st.RouteWrites = 100*time.Millisecond, routed })
	c := ctx(t)
	if _, err := s.c.CreateWorkflow(c, lifecycle("auto_bad", "P1M")); !errors.Is(err, fail.ErrBadInput) {
		t.Fatalf("archiveAfter in months: %v, want BAD_USER_INPUT", err)
	}
	var def struct{ ArchiveAfter string }
	s.ok(t, `mutation { createWorkflow(input: {id: "auto", name: "auto", places: ["draft", "review", "done"], initialPlace: "draft", archiveAfter: "PT1S",
		transitions: [{id: "submit", fromPlaces: ["draft"], toPlace: "review"}, {id: "approve", fromPlaces: ["review"], toPlace: "done"}]}) { archiveAfter } }`,
		nil, "createWorkflow", &def)
	if def.ArchiveAfter != "PT1S" {
		t.Fatalf("archiveAfter %q", def.ArchiveAfter)
	}
	testkit.Must(s.c.CreateWorkflow(c, lifecycle("manual", ""))) // no archiveAfter: never swept
	stays := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "auto"}))
	manual := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "manual", InitialPlace: "done"}))
	var due []*flow.Token
	for range 3 {
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "auto"}))
		testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "submit"}))
		due = append(due, testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "approve"})))
	}
	for _, d := range due {
		var got *flow.Token
		testkit.Poll(t, 15*time.Second, "token archived by archiveAfter", func() bool {
			got = testkit.Must(s.c.GetToken(c, d.ID))
			return got.ArchivedAt != nil
		})
		if got.ArchivedAt.Sub(d.UpdatedAt) < time.Second {
			t.Errorf("archived %v after its last change, before archiveAfter (1s)", got.ArchivedAt.Sub(d.UpdatedAt))
		}
		if recs := s.records(t, d.ID); len(recs) != 4 || recs[3].TriggeredBy != "archiveAfter" {
			t.Errorf("history: %+v", recs)
		}
		var archived int
		for _, e := range eventsOf(events(t, s, "auto"), d.ID) {
			if e.EventType == wire.EventTokenArchived {
				archived++
			}
		}
		if archived != 1 {
			t.Errorf("%d token_archived events, want 1", archived)
		}
	}
	// The sweeps that archived them came after the other two tokens
	// (created first) were past archiveAfter too.
	for _, id := range []string{stays.ID, manual.ID} {
		if got := testkit.Must(s.c.GetToken(c, id)); got.ArchivedAt != nil {
			t.Errorf("token %s in %s of %s archived", id, got.Place, got.WorkflowID)
		}
	}
	if n := len(testkit.Must(s.c.TokensInPlace(c, "auto", "done", wire.Page{})).Items); n != 0 {
		t.Errorf("%d tokens left in the terminal place", n)
	}
}

// noTrace checks that nothing of a token is stored any more: no message on
// its state subjects in any place, its archived state or its history, and
// no index entry (not even a delete marker).
func noTrace(t *testing.T, s *system, wf, tokenID string) {
	t.Helper()
	c, js := ctx(t), s.stackJS()
	if st, err := js.Stream(c, subjects.StreamName(wf)); err == nil {
		for _, subj := range []string{subjects.TokenAnyPlace(wf, tokenID), subjects.ArchivedToken(wf, tokenID), subjects.TokenHistory(wf, tokenID)} {
			info := testkit.Must(st.Info(c, jetstream.WithSubjectFilter(subj)))
			if len(info.State.Subjects) != 0 {
				t.Errorf("token %s: messages left on %v", tokenID, info.State.Subjects)
			}
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatal(err)
	}
	idx := testkit.Must(js.Stream(c, subjects.KVStream(subjects.TokenIndexBucket)))
	if info := testkit.Must(idx.Info(c, jetstream.WithSubjectFilter(subjects.KVKey(subjects.TokenIndexBucket, tokenID)))); len(info.State.Subjects) != 0 {
		t.Errorf("token %s: index messages left: %v", tokenID, info.State.Subjects)
	}
}

// TestDeleteTokenLeavesNoTrace: a deleted token (live or archived) reads
// as absent everywhere, its history and index entry are gone without a
// marker, its events keep one token_deleted record; deleting again
// answers false.
func TestDeleteTokenLeavesNoTrace(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, lifecycle("del", "")))
	live := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: live.ID, TransitionID: "submit"}))
	archived := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	testkit.Must(s.c.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: archived.ID}))
	other := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	for _, tok := range []*flow.Token{live, archived} {
		var deleted bool
		s.ok(t, `mutation($id: String!) { deleteToken(id: $id) }`, map[string]any{"id": tok.ID}, "deleteToken", &deleted)
		if !deleted {
			t.Fatalf("deleteToken %s: false", tok.ID)
		}
		r := s.gql(t, `query($id: String!) { token(id: $id) { id } }`, map[string]any{"id": tok.ID})
		if string(r.Data["token"]) != "null" {
			t.Errorf("token after delete: %s", r.Data["token"])
		}
		for name, err := range map[string]error{
			"get":     second(s.c.GetToken(c, tok.ID)),
			"find":    second(s.c.FindToken(c, wf.ID, tok.ID)),
			"history": second(s.c.TokenHistory(c, &wire.TokenHistoryRequest{TokenID: tok.ID})),
			"fire":    second(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "approve"})),
			"archive": second(s.c.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: tok.ID})),
		} {
			if !errors.Is(err, fail.ErrNotFound) {
				t.Errorf("%s after delete: %v, want NOT_FOUND", name, err)
			}
		}
		noTrace(t, s, wf.ID, tok.ID)
		var dels []wire.Event
		for _, e := range eventsOf(events(t, s, wf.ID), tok.ID) {
			if e.EventType == wire.EventTokenDeleted {
				dels = append(dels, e)
			}
		}
		if len(dels) != 1 {
			t.Errorf("%d token_deleted events, want 1", len(dels))
		}
		if again := testkit.Must(s.c.DeleteToken(c, &wire.DeleteTokenRequest{TokenID: tok.ID})); again.Deleted {
			t.Errorf("deleted twice")
		}
	}
	if ids := gqlIDs(t, s, `{ tokens { id } }`, nil, "tokens"); len(ids) != 1 || ids[0] != other.ID {
		t.Errorf("tokens without workflowId: %v, want only %s", ids, other.ID)
	}
	if ids := tokenIDs(testkit.Must(s.c.ListTokens(c, wf.ID, wire.Page{})).Items); len(ids) != 1 || ids[0] != other.ID {
		t.Errorf("tokens of the workflow: %v", ids)
	}
	if n := testkit.Must(s.c.DeleteToken(c, &wire.DeleteTokenRequest{TokenID: "00000000-0000-4000-8000-000000000000"})); n.Deleted {
		t.Errorf("deleted a token that never was")
	}
}

func second[T any](_ T, err error) error { return err }

// TestDeleteWorkflowAndCreateItAgain: deleteWorkflow is refused while live
// tokens exist, works with force, leaves no index entry, catalogue entry
// or stream; the id can be created again, with another definition, and
// used at once through the same token-service instances (which cached the
// old one).
func TestDeleteWorkflowAndCreateItAgain(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	old := testkit.Must(s.c.CreateWorkflow(c, lifecycle("again", "")))
	var toks []*flow.Token
	for i := range 10 { // on both token instances: each caches the workflow
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: old.ID}))
		testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "submit"}))
		if i < 3 {
			testkit.Must(s.c.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: tok.ID}))
		}
		toks = append(toks, tok)
	}
	r := s.gql(t, `mutation { deleteWorkflow(id: "again") }`, nil)
	if r.code() != "CONFLICT" || !strings.Contains(r.Errors[0].Message, "7 live tokens") {
		t.Fatalf("delete with live tokens: %+v", r.Errors)
	}
	if got := testkit.Must(s.c.GetToken(c, toks[5].ID)); got.Revision != 2 {
		t.Fatalf("the refused delete changed a token: %+v", got)
	}
	var deleted bool
	s.ok(t, `mutation { deleteWorkflow(id: "again", force: true) }`, nil, "deleteWorkflow", &deleted)
	if !deleted {
		t.Fatal("deleteWorkflow: false")
	}

	// At once, the same id with another definition, used from every
	// instance: nothing read the deleted workflow meanwhile, so the
	// instances learn of the delete from its notice (or, had they missed
	// it, from the stream they cached being another).
	def := &wire.CreateWorkflowRequest{ID: "again", Name: "again 2", Places: []string{"new", "next"}, InitialPlace: "new",
		Transitions: []flow.Transition{{ID: "go", FromPlaces: []string{"new"}, ToPlace: "next"}}}
	if got := testkit.Must(s.c.CreateWorkflow(c, def)); got.Name != "again 2" {
		t.Fatalf("created again: %+v", got)
	}
	var fresh []string
	for range 10 {
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "again"}))
		if tok.Place != "new" {
			t.Fatalf("token of the new workflow: %+v", tok)
		}
		if moved := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "go"})); moved.Place != "next" {
			t.Fatalf("fired: %+v", moved)
		}
		if _, err := s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "submit"}); !errors.Is(err, fail.ErrInvalidTransition) {
			t.Fatalf("the old definition's transition: %v", err)
		}
		fresh = append(fresh, tok.ID)
	}
	if n := len(testkit.Must(s.c.TokensInPlace(c, "again", "next", wire.Page{})).Items); n != 10 {
		t.Errorf("%d tokens in place next, want 10", n)
	}
	ids := gqlIDs(t, s, `{ tokens { id } }`, nil, "tokens")
	slices.Sort(ids)
	slices.Sort(fresh)
	if !slices.Equal(ids, fresh) {
		t.Errorf("tokens without workflowId: %v, want the new workflow's %v", ids, fresh)
	}
	for _, tok := range toks { // nothing is left of the first one's
		noTrace(t, s, "again", tok.ID)
		if _, err := s.c.GetToken(c, tok.ID); !errors.Is(err, fail.ErrNotFound) {
			t.Errorf("token of the deleted workflow: %v", err)
		}
	}
}

// TestDeletedWorkflowIsGone: after deleteWorkflow, the workflow, its
// stream, catalogue entry and index entries are gone, lists do not show
// it, its tokens read as absent, and deleting it again answers false.
func TestDeletedWorkflowIsGone(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, lifecycle("gone", "")))
	var toks []*flow.Token
	for range 5 {
		toks = append(toks, testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID})))
	}
	keep := testkit.Must(s.c.CreateWorkflow(c, lifecycle("kept", "")))
	kept := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: keep.ID}))
	if rep := testkit.Must(s.c.DeleteWorkflow(c, wf.ID, true)); !rep.Deleted || rep.Tokens != 5 || rep.LiveTokens != 5 {
		t.Fatalf("delete: %+v", rep)
	}
	if r := s.gql(t, `{ workflow(id: "gone") { id } }`, nil); string(r.Data["workflow"]) != "null" {
		t.Errorf("workflow after delete: %s", r.Data["workflow"])
	}
	var listed []struct{ ID string }
	s.ok(t, `{ workflows { id } }`, nil, "workflows", &listed)
	if len(listed) != 1 || listed[0].ID != "kept" {
		t.Errorf("workflows: %v", listed)
	}
	if _, err := s.c.ListTokens(c, wf.ID, wire.Page{}); !errors.Is(err, fail.ErrNotFound) {
		t.Errorf("tokens of the deleted workflow: %v", err)
	}
	if ids := gqlIDs(t, s, `{ tokens { id } }`, nil, "tokens"); len(ids) != 1 || ids[0] != kept.ID {
		t.Errorf("tokens without workflowId: %v", ids)
	}
	js := s.stackJS()
	if _, err := js.Stream(c, subjects.StreamName(wf.ID)); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream after delete: %v", err)
	}
	cat := testkit.Must(js.Stream(c, subjects.KVStream(subjects.CatalogBucket)))
	if info := testkit.Must(cat.Info(c, jetstream.WithSubjectFilter(subjects.KVKey(subjects.CatalogBucket, wf.ID)))); len(info.State.Subjects) != 0 {
		t.Errorf("catalogue messages left: %v", info.State.Subjects)
	}
	for _, tok := range toks {
		noTrace(t, s, wf.ID, tok.ID)
		if _, err := s.c.GetToken(c, tok.ID); !errors.Is(err, fail.ErrNotFound) {
			t.Errorf("token of the deleted workflow: %v", err)
		}
	}
	if _, err := s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}); !errors.Is(err, fail.ErrNotFound) {
		t.Errorf("create a token in the deleted workflow: %v", err)
	}
	if again := testkit.Must(s.c.DeleteWorkflow(c, wf.ID, true)); again.Deleted {
		t.Error("deleted twice")
	}
}

// TestDeleteWorkflowWithArchivedTokensOnly: archived tokens do not hold a
// delete back (no force needed), and an absent workflow is no error.
func TestDeleteWorkflowWithArchivedTokensOnly(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, lifecycle("arch_only", "")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	testkit.Must(s.c.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: tok.ID}))
	rep := testkit.Must(s.c.DeleteWorkflow(c, wf.ID, false))
	if !rep.Deleted || rep.Tokens != 1 || rep.LiveTokens != 0 {
		t.Fatalf("delete: %+v", rep)
	}
	noTrace(t, s, wf.ID, tok.ID)
	if rep := testkit.Must(s.c.DeleteWorkflow(c, "never_was", false)); rep.Deleted {
		t.Fatalf("deleted an absent workflow: %+v", rep)
	}
}

// TestArchiveRacesFire: an archive and a fire of one token at once, on two
// token instances that do not route writes (so the compare-and-swap in
// storage settles it). Exactly one order holds each time: the fire then
// the archive (archived in the fire's target at revision 3), or the
// archive then a refused fire (archived where it was, revision 2); the
// events agree.
func TestArchiveRacesFire(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, lifecycle("arch_race", "")))
	orders := map[string]int{}
	for range 40 {
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
		var wg sync.WaitGroup
		var fireErr, archErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, fireErr = s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "submit"})
		}()
		go func() {
			defer wg.Done()
			_, archErr = s.c.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: tok.ID})
		}()
		wg.Wait()
		if archErr != nil {
			t.Fatalf("archive: %v", archErr)
		}
		got := testkit.Must(s.c.GetToken(c, tok.ID))
		fired := 0
		for _, e := range eventsOf(events(t, s, wf.ID), tok.ID) {
			if e.EventType == wire.EventTokenTransitioned {
				fired++
			}
		}
		switch {
		case fireErr == nil && got.Place == "review" && got.Revision == 3 && got.ArchivedAt != nil && fired == 1:
			orders["fire, archive"]++
		case errors.Is(fireErr, fail.ErrConflict) && strings.Contains(fireErr.Error(), "archived") &&
			got.Place == "draft" && got.Revision == 2 && got.ArchivedAt != nil && fired == 0:
			orders["archive, fire refused"]++
		default:
			t.Fatalf("no order explains it: fire %v, token %+v, %d fire events", fireErr, got, fired)
		}
	}
	t.Logf("outcomes: %v", orders)
}

// TestLiveTokenCountFollowsArchiveAndDelete: a tenant at maxLiveTokens can
// create again once a token is archived or deleted, and a forced
// deleteWorkflow gives back every live token it deleted.
func TestLiveTokenCountFollowsArchiveAndDelete(t *testing.T) {
	_, ops, _, _ := tenantStack(t, "tenants:\n  beta: {maxLiveTokens: 2}\n")
	c := ctx(t)
	beta := ops.As("beta")
	testkit.Must(beta.CreateWorkflow(c, lifecycle("orders", "")))
	testkit.Must(beta.CreateWorkflow(c, lifecycle("spare", "")))
	var toks []*flow.Token
	testkit.Poll(t, 10*time.Second, "beta's maxLiveTokens applies", func() bool {
		tok, err := beta.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "orders"})
		if err == nil {
			toks = append(toks, tok)
		}
		return errors.Is(err, fail.ErrResourceExhausted)
	})
	for _, extra := range toks[2:] { // created before the quota applied: the count is 2 after
		testkit.Must(beta.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: extra.ID}))
	}
	full := func(wf, what string) {
		t.Helper()
		if _, err := beta.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf}); !errors.Is(err, fail.ErrResourceExhausted) {
			t.Fatalf("%s: create %v, want RESOURCE_EXHAUSTED", what, err)
		}
	}
	room := func(wf, what string) {
		t.Helper()
		if _, err := beta.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf}); err != nil {
			t.Fatalf("%s: create %v", what, err)
		}
	}
	full("spare", "at the quota")
	testkit.Must(beta.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: toks[0].ID}))
	testkit.Must(beta.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: toks[0].ID})) // again: counted once
	room("spare", "after an archive")
	full("spare", "after an archive and a create")
	testkit.Must(beta.DeleteToken(c, &wire.DeleteTokenRequest{TokenID: toks[0].ID})) // archived: not counted again
	full("spare", "after deleting an archived token")
	testkit.Must(beta.DeleteToken(c, &wire.DeleteTokenRequest{TokenID: toks[1].ID}))
	room("spare", "after deleting a live token")
	full("spare", "full again")
	if rep := testkit.Must(beta.DeleteWorkflow(c, "spare", true)); rep.LiveTokens != 2 {
		t.Fatalf("force delete: %+v", rep)
	}
	room("orders", "after a forced deleteWorkflow")
	room("orders", "after a forced deleteWorkflow, twice")
	full("orders", "over the quota again")
}

// TestTenantScopeOfArchiveAndDelete: over NATS, in a tenant's scope, the
// archive and delete endpoints work on the tenant's own tokens and
// workflows (by short id too) and treat another tenant's exactly as
// absent ones, which they leave untouched. With writes routed between two
// token instances and without, so an archive or delete passed on keeps
// its scope.
func TestTenantScopeOfArchiveAndDelete(t *testing.T) {
	for _, routed := range []bool{true, false} {
		t.Run(fmt.Sprintf("routed=%v", routed), func(t *testing.T) {
			s := startWith(t, "", func(o *config.Store) { o.RouteWrites = routed })
			w, c := newTenantWorld(t, s), ctx(t)
			for tn, other := range map[string]string{"acme": "beta", "beta": "acme"} {
				mine := s.c.As(tenant.Scope(tn))
				fresh := func() string {
					return testkit.Must(mine.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "orders"})).ID
				}
				if tok := testkit.Must(mine.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: fresh()})); tok.ArchivedAt == nil || tok.WorkflowID != w.wf[tn] {
					t.Errorf("%s archives its own token: %+v", tn, tok)
				}
				_, theirs := mine.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: w.token[other]})
				_, absent := mine.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: w.absent})
				sameAbsence(t, tn+": token.archive", theirs, absent, w.token[other], w.absent)

				if rep := testkit.Must(mine.DeleteToken(c, &wire.DeleteTokenRequest{TokenID: fresh()})); !rep.Deleted {
					t.Errorf("%s deletes its own token: %+v", tn, rep)
				}
				if rep := testkit.Must(mine.DeleteToken(c, &wire.DeleteTokenRequest{TokenID: w.token[other]})); rep.Deleted {
					t.Errorf("%s deleted %s's token", tn, other)
				}

				testkit.Must(mine.CreateWorkflow(c, race("scratch")))
				if rep := testkit.Must(mine.DeleteWorkflow(c, "scratch", true)); !rep.Deleted {
					t.Errorf("%s deletes its own workflow by short id: %+v", tn, rep)
				}
				_, theirs = mine.DeleteWorkflow(c, w.wf[other], true)
				_, absent = mine.DeleteWorkflow(c, other+"::nothing", true)
				sameAbsence(t, tn+": workflow.delete", theirs, absent, w.wf[other], other+"::nothing")
			}
			for tn, id := range w.token {
				if tok := testkit.Must(s.c.GetToken(c, id)); tok.Revision != 1 || tok.ArchivedAt != nil {
					t.Errorf("%s's token changed: %+v", tn, tok)
				}
				testkit.Must(s.c.GetWorkflow(c, w.wf[tn]))
			}
		})
	}
}
