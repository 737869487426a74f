package systemtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"slices"
	"testing"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

func tr(id, from, to string) flow.Transition {
	return flow.Transition{ID: id, FromPlaces: []string{from}, ToPlace: to}
}

// TestScenarioS3 is the original's basic_workflow.ts over NATS.
func TestScenarioS3(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, &wire.CreateWorkflowRequest{Name: "Application Development Process",
		Places:       []string{"planning", "development", "testing", "staging", "production", "maintenance"},
		InitialPlace: "planning",
		Transitions: []flow.Transition{tr("start_development", "planning", "development"),
			tr("submit_for_testing", "development", "testing"), tr("back_to_development", "testing", "development"),
			tr("promote_to_staging", "testing", "staging"), tr("deploy_to_production", "staging", "production"),
			tr("enter_maintenance", "production", "maintenance"), tr("back_to_planning", "maintenance", "planning")}}))
	if len(wf.Transitions) != 7 || len(wf.Analysis.UnreachablePlaces) != 0 {
		t.Fatalf("workflow = %+v", wf)
	}
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID, InitialPlace: "planning",
		Data:     json.RawMessage(`{"featureName":"User Authentication","assignedDeveloper":"Alice Smith","priority":"high","estimatedHours":40,"requirements":["a","b","c","d"]}`),
		Metadata: json.RawMessage(`{"createdBy":"project-manager","project":"main-application","sprint":"sprint-2024-01"}`)}))
	if tok.Place != "planning" || len(s.fires(t, tok.ID)) != 0 || !jsonEqual(tok.Metadata, `{"createdBy":"project-manager","project":"main-application","sprint":"sprint-2024-01"}`) {
		t.Fatalf("token = %+v", tok)
	}
	steps := []struct{ tr, place string }{{"start_development", "development"}, {"submit_for_testing", "testing"},
		{"back_to_development", "development"}, {"submit_for_testing", "testing"}, {"promote_to_staging", "staging"},
		{"deploy_to_production", "production"}}
	var last string
	for _, st := range steps {
		last = fmt.Sprintf(`{"performedBy":"automated-system","notes":"Executed %s"}`, st.tr)
		tok = testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: st.tr, Data: json.RawMessage(last), ReplaceData: true}))
		if tok.Place != st.place {
			t.Fatalf("after %s: place %s, want %s", st.tr, tok.Place, st.place)
		}
	}
	if h := s.fires(t, tok.ID); len(h) != 6 || h[5].Transition != "deploy_to_production" || !jsonEqual(tok.Data, last) {
		t.Fatalf("final token = %+v", tok)
	}
	_, err := s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "back_to_development"})
	if !errors.Is(err, fail.ErrInvalidTransition) || err.Error()[:18] != "Invalid transition" {
		t.Fatalf("fire from wrong place: %v", err)
	}
}

// TestScenarioS5 is the original's token_demo.rs (order fulfilment), with
// the data and metadata updates the original API could not make.
func TestScenarioS5(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, &wire.CreateWorkflowRequest{ID: "order_fulfillment", Name: "E-commerce Order Fulfillment",
		Places: []string{"cart", "payment_pending", "paid", "shipped", "delivered", "cancelled"}, InitialPlace: "cart",
		Transitions: []flow.Transition{tr("checkout", "cart", "payment_pending"), tr("pay", "payment_pending", "paid"),
			tr("ship", "paid", "shipped"), tr("deliver", "shipped", "delivered"),
			{ID: "cancel", FromPlaces: []string{"cart", "payment_pending"}, ToPlace: "cancelled"}}}))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID,
		Data:     json.RawMessage(`{"order_id":"ORD-12345","customer_id":"CUST-789","items":[{"name":"Laptop","price":999.99,"quantity":1},{"name":"Mouse","price":29.99,"quantity":2}],"total":1059.97}`),
		Metadata: json.RawMessage(`{"customer_tier":"premium","sales_channel":"web","region":"US-West"}`)}))
	avail := testkit.Must(s.c.Available(c, tok.ID))
	if ids := ids(avail.Transitions); !slices.Equal(ids, []string{"checkout", "cancel"}) {
		t.Fatalf("available at cart = %v", ids)
	}
	tok = testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "checkout"}))
	if ids := ids(testkit.Must(s.c.Available(c, tok.ID)).Transitions); !slices.Equal(ids, []string{"pay", "cancel"}) {
		t.Fatalf("available at payment_pending = %v", ids)
	}
	tok = testkit.Must(s.c.UpdateToken(c, &wire.UpdateTokenRequest{TokenID: tok.ID,
		Metadata: json.RawMessage(`{"payment_method":"credit_card","payment_processor":"stripe"}`),
		Data:     json.RawMessage(`{"payment":{"transaction_id":"txn_1","amount":1059.97}}`)}))
	for _, step := range []string{"pay", "ship", "deliver"} {
		tok = testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: step}))
	}
	if ids := ids(testkit.Must(s.c.Available(c, tok.ID)).Transitions); len(ids) != 0 {
		t.Fatalf("available at delivered = %v", ids)
	}
	var got []string
	for _, h := range s.fires(t, tok.ID) {
		got = append(got, h.From+">"+h.To)
	}
	want := []string{"cart>payment_pending", "payment_pending>paid", "paid>shipped", "shipped>delivered"}
	if tok.Place != "delivered" || !slices.Equal(got, want) {
		t.Fatalf("history = %v", got)
	}
	var meta map[string]any
	testkit.Must(0, json.Unmarshal(tok.Metadata, &meta))
	var data map[string]any
	testkit.Must(0, json.Unmarshal(tok.Data, &data))
	if meta["customer_tier"] != "premium" || meta["payment_processor"] != "stripe" || data["order_id"] != "ORD-12345" || data["payment"] == nil {
		t.Fatalf("metadata %v data %v", meta, data)
	}
}

func ids(ts []flow.Transition) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}
