package systemtest

import (
	"encoding/json"
	"errors"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"strconv"
	"strings"
	"testing"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/rules"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// metric reads one series from the edge's /metrics (0 when absent).
func metric(t *testing.T, s *system, series string) int {
	t.Helper()
	_, body := get(t, strings.TrimSuffix(s.stack.GraphQL, "/graphql")+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// delta returns how much series grew while f ran.
func delta(t *testing.T, s *system, series string, f func()) int {
	before := metric(t, s, series)
	f()
	return metric(t, s, series) - before
}

// TestCostFollowsTheAnswer: a read by id reads one message; listing a place
// reads that place's messages, not the workflow's.
func TestCostFollowsTheAnswer(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	testkit.Must(s.c.CreateWorkflow(c, race("cost")))
	var ids []string
	for range 200 {
		ids = append(ids, testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "cost"})).ID)
	}
	for _, id := range ids[:5] {
		testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: id, TransitionID: "to_b"}))
	}
	scan, read := `cb_token_messages_read_total{op="scan"}`, `cb_token_messages_read_total{op="get"}`
	if n := delta(t, s, scan, func() {
		if got := len(testkit.Must(s.c.TokensInPlace(c, "cost", "b", wire.Page{})).Items); got != 5 {
			t.Fatalf("%d tokens in b", got)
		}
	}); n != 5 {
		t.Fatalf("listing 5 tokens of 200 read %d messages", n)
	}
	if n := delta(t, s, read, func() { testkit.Must(s.c.GetToken(c, ids[7])) }); n != 1 {
		t.Fatalf("a get by id read %d messages", n)
	}
	if n := delta(t, s, scan, func() { testkit.Must(s.c.TokensInPlace(c, "cost", "a", wire.Page{First: 10})) }); n > 10+5 {
		t.Fatalf("a page of 10 read %d messages", n)
	}
}

// TestNestedDataFetchedOncePerRequest: many tokens' workflow is one request.
func TestNestedDataFetchedOncePerRequest(t *testing.T) {
	s := start(t, "")
	testkit.Must(s.c.CreateWorkflow(ctx(t), race("nested")))
	for range 5 {
		testkit.Must(s.c.CreateToken(ctx(t), &wire.CreateTokenRequest{WorkflowID: "nested"}))
	}
	series := `cb_service_requests_total{service="workflow",subject="cb.*.workflow.get",tenant="_all",code="200"}`
	if n := delta(t, s, series, func() {
		var toks []struct{ Workflow struct{ Name string } }
		s.ok(t, `{ tokensInPlace(workflowId: "nested", placeId: "a") { workflow { name } } }`, nil, "tokensInPlace", &toks)
		if len(toks) != 5 || toks[4].Workflow.Name != "race" {
			t.Fatalf("tokens = %+v", toks)
		}
	}); n != 1 {
		t.Fatalf("%d workflow requests for 5 tokens of one workflow", n)
	}
}

// TestGuards: conditions, structured rules and expressions gate fires and
// available transitions, and a failure names its rule.
func TestGuards(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	scoreRule := rules.Rule{ID: "score_high", Condition: rules.Condition{Type: rules.FieldGreaterThan, Field: "review.score", Value: json.RawMessage(`7`)}}
	expr := rules.Rule{ID: "small_order", Condition: rules.Condition{Type: rules.Expression, Script: `data.total < 1000`}}
	testkit.Must(s.c.CreateWorkflow(c, &wire.CreateWorkflowRequest{ID: "guarded", Name: "guarded", Places: []string{"draft", "review", "done"},
		InitialPlace: "draft", Transitions: []flow.Transition{
			{ID: "submit", FromPlaces: []string{"draft"}, ToPlace: "review", Conditions: []string{"has_title"}},
			{ID: "approve", FromPlaces: []string{"review"}, ToPlace: "done", Rules: []rules.Rule{scoreRule, expr}},
		}}))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "guarded", Data: json.RawMessage(`{"total":250}`)}))
	_, err := s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "submit"})
	if !errors.Is(err, fail.ErrGuardFailed) || !strings.Contains(err.Error(), "has_title") {
		t.Fatalf("fire without a title: %v", err)
	}
	av := testkit.Must(s.c.Available(c, tok.ID))
	if len(av.Transitions) != 0 || av.Evaluations[0].CanFire || av.Evaluations[0].RulesPassed || !av.Evaluations[0].PlaceCompatible {
		t.Fatalf("available = %+v", av)
	}
	testkit.Must(s.c.UpdateToken(c, &wire.UpdateTokenRequest{TokenID: tok.ID, Metadata: json.RawMessage(`{"title":"Spec"}`)}))
	testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "submit", Data: json.RawMessage(`{"review":{"score":5}}`)}))
	_, err = s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "approve"})
	if !errors.Is(err, fail.ErrGuardFailed) || !strings.Contains(err.Error(), "score_high") {
		t.Fatalf("approve with a low score: %v", err)
	}
	testkit.Must(s.c.UpdateToken(c, &wire.UpdateTokenRequest{TokenID: tok.ID, Data: json.RawMessage(`{"review":{"score":9}}`)}))
	if got := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "approve"})); got.Place != "done" {
		t.Fatalf("place = %s", got.Place)
	}
	bad := race("badexpr")
	bad.Transitions[0].Rules = []rules.Rule{{ID: "oops", Condition: rules.Condition{Type: rules.Expression, Script: "data.total <"}}}
	if _, err := s.c.CreateWorkflow(c, bad); !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), "oops") {
		t.Fatalf("bad expression accepted: %v", err)
	}
}
