package systemtest

import (
	"encoding/json"
	"errors"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"testing"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

func documentReview(id string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{
		ID:           id,
		Name:         "NATS Document Review Process",
		Description:  "A document review workflow using NATS streaming backend",
		Places:       []string{"draft", "review", "approved", "published", "rejected"},
		InitialPlace: "draft",
		Transitions: []flow.Transition{
			{ID: "submit_for_review", FromPlaces: []string{"draft"}, ToPlace: "review", Conditions: []string{}},
			{ID: "approve", FromPlaces: []string{"review"}, ToPlace: "approved", Conditions: []string{}},
			{ID: "reject", FromPlaces: []string{"review"}, ToPlace: "rejected", Conditions: []string{}},
			{ID: "publish", FromPlaces: []string{"approved"}, ToPlace: "published", Conditions: []string{}},
		},
	}
}

// TestScenarioS1 is the original's nats_demo.rs, with the checks its
// implementation failed (tokensInPlace of the old place, findToken).
func TestScenarioS1(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, documentReview("")))
	if !wire.CanonicalUUID(wf.ID) || wf.InitialPlace != "draft" || len(wf.Transitions) != 4 {
		t.Fatalf("workflow = %+v", wf)
	}
	var toks []*flow.Token
	for _, title := range []string{"Technical Specification", "Marketing Proposal", "Legal Contract"} {
		data, _ := json.Marshal(map[string]string{"title": title, "content": "This is the content for " + title, "priority": "medium"})
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID, Data: data,
			Metadata: json.RawMessage(`{"department":"engineering","created_by":"demo_user","urgency":"normal"}`), TriggeredBy: "nats_demo"}))
		if tok.Place != "draft" || tok.NatsSubject != subjects.TokenState(wf.ID, "draft", tok.ID) {
			t.Fatalf("token = %+v", tok)
		}
		if h := s.records(t, tok.ID); len(h) != 1 || h[0].TransitionID != "create" || h[0].NatsSequence != tok.NatsSequence || h[0].TriggeredBy != "nats_demo" {
			t.Fatalf("history = %+v", h)
		}
		toks = append(toks, tok)
	}
	if n := len(testkit.Must(s.c.TokensInPlace(c, wf.ID, "draft", wire.Page{})).Items); n != 3 {
		t.Fatalf("draft holds %d tokens, want 3", n)
	}
	moved := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: toks[0].ID, TransitionID: "submit_for_review", NewPlace: "review",
		TriggeredBy: "nats_demo_transition", Data: json.RawMessage(`{"reviewed_by":"demo_reviewer","review_notes":"Ready for review"}`), ReplaceData: true}))
	if h := s.records(t, moved.ID); moved.Place != "review" || len(h) != 2 || h[1].NatsSequence != moved.NatsSequence || h[1].TransitionID != "submit_for_review" {
		t.Fatalf("moved = %+v", moved)
	}
	got := testkit.Must(s.c.GetToken(c, toks[0].ID))
	if got.Place != "review" || got.NatsSequence != moved.NatsSequence || !jsonEqual(got.Data, `{"review_notes":"Ready for review","reviewed_by":"demo_reviewer"}`) {
		t.Fatalf("get = %+v data %s", got, got.Data)
	}
	if n := len(testkit.Must(s.c.TokensInPlace(c, wf.ID, "draft", wire.Page{})).Items); n != 2 {
		t.Fatalf("draft holds %d tokens, want 2", n)
	}
	if n := len(testkit.Must(s.c.TokensInPlace(c, wf.ID, "review", wire.Page{})).Items); n != 1 {
		t.Fatalf("review holds %d tokens, want 1", n)
	}
	if f := testkit.Must(s.c.FindToken(c, wf.ID, toks[0].ID)); f.Place != "review" {
		t.Fatalf("findToken place = %s", f.Place)
	}
	_, err := s.c.Fire(c, &wire.FireRequest{TokenID: toks[1].ID, TransitionID: "submit_for_review", NewPlace: "approved"})
	if !errors.Is(err, fail.ErrInvalidTransition) {
		t.Fatalf("newPlace mismatch: err = %v", err)
	}
}
