package systemtest

import "testing"

const createS1 = `mutation {
  createWorkflow(input: {
    name: "NATS Document Review Process"
    description: "A document review workflow using NATS streaming backend"
    places: ["draft", "review", "approved", "published", "rejected"]
    initialPlace: "draft"
    transitions: [
      {id: "submit_for_review", fromPlaces: ["draft"], toPlace: "review", conditions: [], description: "Submit document for review"}
      {id: "approve", fromPlaces: ["review"], toPlace: "approved", conditions: [], description: "Approve the document"}
      {id: "reject", fromPlaces: ["review"], toPlace: "rejected", conditions: [], description: "Reject the document"}
      {id: "publish", fromPlaces: ["approved"], toPlace: "published", conditions: [], description: "Publish the approved document"}
    ]
  }) { id name places initialPlace transitions { id fromPlaces toPlace description } }
}`

const instanceS1 = `mutation CreateWorkflowInstance($input: CreateWorkflowInstanceInput!) {
  createWorkflowInstance(input: $input) { ` + tokenFields + ` }
}`

const transitionS1 = `mutation TransitionWithNATS($input: TransitionTokenWithNATSInput!) {
  transitionTokenWithNats(input: $input) { ` + tokenFields + ` }
}`

// TestGraphQLScenarioS1 drives the original's nats_demo.rs through HTTP,
// with the checks the original failed (S1 step 7).
func TestGraphQLScenarioS1(t *testing.T) {
	s := start(t, "")
	var wf struct {
		ID           string   `json:"id"`
		Places       []string `json:"places"`
		InitialPlace string   `json:"initialPlace"`
		Transitions  []struct{ ID, Description string }
	}
	s.ok(t, createS1, nil, "createWorkflow", &wf)
	if len(wf.Places) != 5 || wf.InitialPlace != "draft" || len(wf.Transitions) != 4 || wf.Transitions[0].Description != "Submit document for review" {
		t.Fatalf("workflow = %+v", wf)
	}
	var toks []gqlToken
	for _, d := range [][2]string{{"Technical Specification", "engineering"}, {"Marketing Proposal", "marketing"}, {"Legal Contract", "legal"}} {
		var tok gqlToken
		s.ok(t, instanceS1, map[string]any{"input": map[string]any{
			"workflowId":  wf.ID,
			"initialData": map[string]any{"title": d[0], "content": "This is the content for " + d[0], "priority": "medium"},
			"metadata":    map[string]any{"department": d[1], "created_by": "demo_user", "urgency": "normal"},
			"triggeredBy": "nats_demo",
		}}, "createWorkflowInstance", &tok)
		h := tok.TransitionHistory
		if tok.Place != "draft" || tok.NatsSubject != "workflows."+wf.ID+".places.draft.tokens."+tok.ID || tok.NatsSequence == "" ||
			len(h) != 1 || h[0].TransitionID != "create" || h[0].NatsSequence != tok.NatsSequence || h[0].TriggeredBy != "nats_demo" {
			t.Fatalf("instance = %+v", tok)
		}
		toks = append(toks, tok)
	}
	if got := inPlace(t, s, wf.ID, "draft"); len(got) != 3 {
		t.Fatalf("draft holds %d tokens, want 3", len(got))
	}
	var moved gqlToken
	s.ok(t, transitionS1, map[string]any{"input": map[string]any{
		"tokenId": toks[0].ID, "transitionId": "submit_for_review", "newPlace": "review",
		"triggeredBy": "nats_demo_transition", "data": map[string]any{"reviewed_by": "demo_reviewer", "review_notes": "Ready for review"},
	}}, "transitionTokenWithNats", &moved)
	last := moved.TransitionHistory[len(moved.TransitionHistory)-1]
	if moved.Place != "review" || len(moved.TransitionHistory) != 2 || last.NatsSequence != moved.NatsSequence ||
		last.FromPlace != "draft" || last.ToPlace != "review" || last.TriggeredBy != "nats_demo_transition" {
		t.Fatalf("moved = %+v", moved)
	}
	var nt gqlToken
	s.ok(t, `query($id:String!){ natsToken(id:$id) { `+tokenFields+` } }`, map[string]any{"id": toks[0].ID}, "natsToken", &nt)
	if nt.Place != "review" || nt.NatsSubject != "workflows."+wf.ID+".places.review.tokens."+toks[0].ID || len(nt.TransitionHistory) != 2 ||
		!jsonEqual(nt.TransitionHistory[0].Metadata, `{"event_type":"token_created","workflow_id":"`+wf.ID+`","nats_sequence":`+toks[0].NatsSequence+`}`) {
		t.Fatalf("natsToken = %+v", nt)
	}
	// Step 7: what the original got wrong.
	if n := len(inPlace(t, s, wf.ID, "draft")); n != 2 {
		t.Fatalf("draft holds %d tokens after the move, want 2", n)
	}
	if n := len(inPlace(t, s, wf.ID, "review")); n != 1 {
		t.Fatalf("review holds %d tokens, want 1", n)
	}
	var found gqlToken
	s.ok(t, `query($w:String!,$t:String!){ findToken(workflowId:$w, tokenId:$t) { place } }`,
		map[string]any{"w": wf.ID, "t": toks[0].ID}, "findToken", &found)
	if found.Place != "review" {
		t.Fatalf("findToken place = %s", found.Place)
	}
	s.fails(t, transitionS1, map[string]any{"input": map[string]any{"tokenId": toks[1].ID, "transitionId": "submit_for_review", "newPlace": "approved"}},
		"INVALID_TRANSITION", "Invalid transition")
}

// TestGraphQLScenarioS7: the guide's document_approval snippets work with a
// client-chosen workflow id.
func TestGraphQLScenarioS7(t *testing.T) {
	s := start(t, "")
	var wf struct{ ID string }
	s.ok(t, `mutation { createWorkflow(input: {id: "document_approval", name: "Document approval",
		places: ["draft", "review", "approved"], initialPlace: "draft",
		transitions: [{id: "submit_for_review", fromPlaces: ["draft"], toPlace: "review"},
		              {id: "approve", fromPlaces: ["review"], toPlace: "approved"}]}) { id } }`, nil, "createWorkflow", &wf)
	if wf.ID != "document_approval" {
		t.Fatalf("id = %s", wf.ID)
	}
	var tok gqlToken
	s.ok(t, `mutation CreateWorkflowInstance {
	  createWorkflowInstance(input: {
	    workflowId: "document_approval",
	    initialData: { title: "Important Document", content: "Document content here...", priority: "high" },
	    metadata: { department: "engineering", created_by: "user@example.com" },
	    triggeredBy: "api_client"
	  }) { id place natsSequence natsTimestamp natsSubject
	       transitionHistory { fromPlace toPlace transitionId timestamp triggeredBy natsSequence } }
	}`, nil, "createWorkflowInstance", &tok)
	if tok.Place != "draft" || tok.TransitionHistory[0].TransitionID != "create" {
		t.Fatalf("instance = %+v", tok)
	}
	s.ok(t, `mutation TransitionWithNATS($id: String!) {
	  transitionTokenWithNats(input: { tokenId: $id, transitionId: "submit_for_review", newPlace: "review",
	    triggeredBy: "document_author", data: { review_notes: "Ready for review" } }) {
	    id place natsSequence transitionHistory { fromPlace toPlace transitionId timestamp triggeredBy natsSequence } }
	}`, map[string]any{"id": tok.ID}, "transitionTokenWithNats", &tok)
	if tok.Place != "review" {
		t.Fatalf("place = %s", tok.Place)
	}
	review := inPlace(t, s, "document_approval", "review")
	if len(review) != 1 || review[0].ID != tok.ID || !jsonEqual(review[0].Data, `{"title":"Important Document","content":"Document content here...","priority":"high","review_notes":"Ready for review"}`) {
		t.Fatalf("tokensInPlace(review) = %+v", review)
	}
}
