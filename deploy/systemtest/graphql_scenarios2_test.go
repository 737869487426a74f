package systemtest

import (
	"encoding/json"
	"slices"
	"testing"
)

const fireMutation = `mutation($input: TransitionFireInput!) { fireTransition(input: $input) { ` + tokenFields + ` } }`

// TestGraphQLScenarioS3 is basic_workflow.ts through HTTP. Fire data is
// merged (the improvement over the original's replace).
func TestGraphQLScenarioS3(t *testing.T) {
	s := start(t, "")
	var wf struct {
		ID          string
		Transitions []struct{ ID string }
	}
	s.ok(t, `mutation { createWorkflow(input: {name: "Application Development Process",
	  places: ["planning", "development", "testing", "staging", "production", "maintenance"], initialPlace: "planning",
	  transitions: [
	    {id: "start_development", fromPlaces: ["planning"], toPlace: "development", conditions: []}
	    {id: "submit_for_testing", fromPlaces: ["development"], toPlace: "testing", conditions: []}
	    {id: "back_to_development", fromPlaces: ["testing"], toPlace: "development", conditions: []}
	    {id: "promote_to_staging", fromPlaces: ["testing"], toPlace: "staging", conditions: []}
	    {id: "deploy_to_production", fromPlaces: ["staging"], toPlace: "production", conditions: []}
	    {id: "enter_maintenance", fromPlaces: ["production"], toPlace: "maintenance", conditions: []}
	    {id: "back_to_planning", fromPlaces: ["maintenance"], toPlace: "planning", conditions: []}
	  ]}) { id transitions { id } } }`, nil, "createWorkflow", &wf)
	if len(wf.Transitions) != 7 {
		t.Fatalf("workflow = %+v", wf)
	}
	var tok gqlToken
	s.ok(t, `mutation($input: TokenCreateInput!) { createToken(input: $input) { `+tokenFields+` metadata } }`,
		map[string]any{"input": map[string]any{"workflowId": wf.ID, "initialPlace": "planning",
			"data":     map[string]any{"featureName": "User Authentication", "assignedDeveloper": "Alice Smith", "priority": "high", "estimatedHours": 40, "requirements": []string{"r1", "r2", "r3", "r4"}},
			"metadata": map[string]any{"createdBy": "project-manager", "project": "main-application", "sprint": "sprint-2024-01"}}},
		"createToken", &tok)
	if tok.Place != "planning" || len(tok.History) != 0 {
		t.Fatalf("token = %+v", tok)
	}
	steps := [][2]string{{"start_development", "development"}, {"submit_for_testing", "testing"}, {"back_to_development", "development"},
		{"submit_for_testing", "testing"}, {"promote_to_staging", "staging"}, {"deploy_to_production", "production"}}
	for _, st := range steps {
		s.ok(t, fireMutation, map[string]any{"input": map[string]any{"tokenId": tok.ID, "transitionId": st[0],
			"data": map[string]any{"performedBy": "automated-system", "notes": "Executed " + st[0]}}}, "fireTransition", &tok)
		if tok.Place != st[1] {
			t.Fatalf("after %s: %s, want %s", st[0], tok.Place, st[1])
		}
	}
	var data map[string]any
	_ = json.Unmarshal(tok.Data, &data)
	if len(tok.History) != 6 || tok.History[2].Transition != "back_to_development" || data["notes"] != "Executed deploy_to_production" || data["featureName"] != "User Authentication" {
		t.Fatalf("final token = %+v data %v", tok, data)
	}
	s.fails(t, fireMutation, map[string]any{"input": map[string]any{"tokenId": tok.ID, "transitionId": "promote_to_staging"}}, "INVALID_TRANSITION", "Invalid transition")
	s.fails(t, fireMutation, map[string]any{"input": map[string]any{"tokenId": "abc", "transitionId": "x"}}, "BAD_USER_INPUT", "Invalid token ID format")
	s.fails(t, fireMutation, map[string]any{"input": map[string]any{"tokenId": "123e4567-e89b-12d3-a456-426614174000", "transitionId": "x"}}, "NOT_FOUND", "Token not found")
}

// TestGraphQLScenarioS5 is token_demo.rs through HTTP, with the metadata
// and data updates the original's API could not make.
func TestGraphQLScenarioS5(t *testing.T) {
	s := start(t, "")
	var wf struct{ ID string }
	s.ok(t, `mutation { createWorkflow(input: {id: "order_fulfillment", name: "E-commerce Order Fulfillment",
	  places: ["cart", "payment_pending", "paid", "shipped", "delivered", "cancelled"], initialPlace: "cart",
	  transitions: [
	    {id: "checkout", fromPlaces: ["cart"], toPlace: "payment_pending"}
	    {id: "pay", fromPlaces: ["payment_pending"], toPlace: "paid"}
	    {id: "ship", fromPlaces: ["paid"], toPlace: "shipped"}
	    {id: "deliver", fromPlaces: ["shipped"], toPlace: "delivered"}
	    {id: "cancel", fromPlaces: ["cart", "payment_pending"], toPlace: "cancelled"}
	  ]}) { id } }`, nil, "createWorkflow", &wf)
	var tok gqlToken
	s.ok(t, `mutation { createToken(input: {workflowId: "order_fulfillment",
	  data: {order_id: "ORD-12345", customer_id: "CUST-789", items: [{name: "Laptop", price: 999.99, quantity: 1}, {name: "Mouse", price: 29.99, quantity: 2}], total: 1059.97},
	  metadata: {customer_tier: "premium", sales_channel: "web", region: "US-West"}}) { id place } }`, nil, "createToken", &tok)
	available := func() []string {
		var trs []struct{ ID string }
		s.ok(t, `query($id:String!){ availableTransitions(tokenId:$id) { id } }`, map[string]any{"id": tok.ID}, "availableTransitions", &trs)
		var ids []string
		for _, tr := range trs {
			ids = append(ids, tr.ID)
		}
		return ids
	}
	if got := available(); !slices.Equal(got, []string{"checkout", "cancel"}) {
		t.Fatalf("available at cart = %v", got)
	}
	fire := func(tr string) {
		s.ok(t, fireMutation, map[string]any{"input": map[string]any{"tokenId": tok.ID, "transitionId": tr}}, "fireTransition", &tok)
	}
	fire("checkout")
	if got := available(); !slices.Equal(got, []string{"pay", "cancel"}) {
		t.Fatalf("available at payment_pending = %v", got)
	}
	var upd struct{ Metadata, Data json.RawMessage }
	s.ok(t, `mutation($id:String!){ updateToken(input: {tokenId: $id, metadata: {payment_method: "credit_card"},
	  data: {payment: {transaction_id: "txn_1"}}}) { metadata data } }`, map[string]any{"id": tok.ID}, "updateToken", &upd)
	var meta map[string]any
	_ = json.Unmarshal(upd.Metadata, &meta)
	if meta["payment_method"] != "credit_card" || meta["customer_tier"] != "premium" {
		t.Fatalf("metadata after update = %s", upd.Metadata)
	}
	fire("pay")
	if got := available(); !slices.Equal(got, []string{"ship"}) {
		t.Fatalf("available at paid = %v (cancel must be gone)", got)
	}
	fire("ship")
	fire("deliver")
	var got []string
	for _, h := range tok.History {
		got = append(got, h.FromPlace+">"+h.ToPlace+"("+h.Transition+")")
	}
	want := []string{"cart>payment_pending(checkout)", "payment_pending>paid(pay)", "paid>shipped(ship)", "shipped>delivered(deliver)"}
	if tok.Place != "delivered" || !slices.Equal(got, want) {
		t.Fatalf("history = %v", got)
	}
}

// TestGraphQLScenarioS8: the original's error contract, with codes.
func TestGraphQLScenarioS8(t *testing.T) {
	s := start(t, "")
	s.fails(t, `mutation { createWorkflow(input: {name: "x", places: ["a"], initialPlace: "x", transitions: []}) { id } }`,
		nil, "BAD_USER_INPUT", "Invalid workflow: Initial place 'x' not found in places")
	s.fails(t, `mutation { createWorkflow(input: {name: "x", places: ["a", "b"], initialPlace: "a",
		transitions: [{id: "t", fromPlaces: ["p"], toPlace: "b", conditions: []}]}) { id } }`,
		nil, "BAD_USER_INPUT", "Invalid workflow: Transition 't' references invalid from_place 'p'")
	s.fails(t, `mutation { createWorkflow(input: {name: "x", places: ["a", "b"], initialPlace: "a",
		transitions: [{id: "t", fromPlaces: ["a"], toPlace: "q", conditions: []}]}) { id } }`,
		nil, "BAD_USER_INPUT", "Invalid workflow: Transition 't' references invalid to_place 'q'")
	s.fails(t, `mutation { createToken(input: {workflowId: "missing"}) { id } }`, nil, "NOT_FOUND", "Workflow not found: missing")
	s.fails(t, `mutation { createWorkflowInstance(input: {workflowId: "missing"}) { id } }`, nil, "NOT_FOUND", "Workflow not found")
	s.fails(t, `{ token(id: "nope") { id } }`, nil, "BAD_USER_INPUT", "Invalid token ID format")
	r := s.gql(t, `{ token(id: "123e4567-e89b-12d3-a456-426614174000") { id } }`, nil)
	if len(r.Errors) != 0 || string(r.Data["token"]) != "null" {
		t.Fatalf("unknown token: %+v %s", r.Errors, r.Data["token"])
	}
	// conditions became optional: omitting them is no longer an error.
	var wf struct{ ID string }
	s.ok(t, `mutation { createWorkflow(input: {name: "x", places: ["a", "b"], initialPlace: "a",
		transitions: [{id: "t", fromPlaces: ["a"], toPlace: "b"}]}) { id } }`, nil, "createWorkflow", &wf)
	s.fails(t, `{ nope }`, nil, "GRAPHQL_VALIDATION_FAILED", "Cannot query field")
}
