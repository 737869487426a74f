package systemtest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/deploy/internal/timerlag"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// escalation: a review escalates by itself after `after` unless approved
// first; an escalated review expires at the deadline in its data, unless
// its "keep" guard fails.
func escalation(id, after string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{ID: id, Name: "escalation", Places: []string{"review", "escalated", "done", "expired"},
		InitialPlace: "review",
		Transitions: []flow.Transition{
			{ID: "approve", FromPlaces: []string{"review", "escalated"}, ToPlace: "done"},
			{ID: "escalate", FromPlaces: []string{"review"}, ToPlace: "escalated", After: after},
			{ID: "expire", FromPlaces: []string{"escalated"}, ToPlace: "expired", At: "data.deadline",
				Conditions: []string{}, Rules: nil},
		}}
}

// timerFires counts the records of a token that a timer fired.
func timerFires(t *testing.T, s *system, tokenID string) int {
	n := 0
	for _, r := range s.records(t, tokenID) {
		if r.TriggeredBy == wire.TimerTriggeredBy {
			n++
		}
	}
	return n
}

func eventTypes(evs []wire.Event) map[string]int {
	m := map[string]int{}
	for _, e := range evs {
		m[e.EventType]++
	}
	return m
}

// TestTimerFiresOnTime: a 2 s timer fires by itself within 2–3.5 s, once,
// as a normal fire (record, event) triggered by "timer", with timer_set
// and timer_fired events; the token lists the timer until then.
func TestTimerFiresOnTime(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, escalation("esc1", "PT2S")))
	t0 := time.Now()
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	if len(tok.Timers) != 1 || tok.Timers[0].TransitionID != "escalate" || tok.Timers[0].DueAt.Sub(tok.CreatedAt) != 2*time.Second {
		t.Fatalf("timers of a new token: %+v (created %v)", tok.Timers, tok.CreatedAt)
	}
	av := testkit.Must(s.c.Available(c, tok.ID))
	for _, e := range av.Evaluations {
		if (e.TransitionID == "escalate") != (e.TimerDueAt != nil) {
			t.Fatalf("evaluation %s: timerDueAt %v", e.TransitionID, e.TimerDueAt)
		}
	}
	var moved time.Duration
	testkit.Poll(t, 10*time.Second, "the timer fires", func() bool {
		got := testkit.Must(s.c.GetToken(c, tok.ID))
		moved = time.Since(t0)
		return got.Place == "escalated"
	})
	t.Logf("a 2 s timer moved the token after %v", moved)
	if moved < 2*time.Second || moved > 3500*time.Millisecond {
		t.Fatalf("a 2 s timer fired after %v, want 2–3.5 s", moved)
	}
	got := testkit.Must(s.c.GetToken(c, tok.ID))
	if got.Revision != 2 || len(got.Timers) != 0 {
		t.Fatalf("after the fire: revision %d, timers %+v", got.Revision, got.Timers)
	}
	time.Sleep(500 * time.Millisecond) // a duplicate would show by now
	if n := timerFires(t, s, tok.ID); n != 1 {
		t.Fatalf("%d timer fires, want 1", n)
	}
	types := eventTypes(eventsOf(events(t, s, wf.ID), tok.ID))
	if types[wire.EventTimerSet] != 1 || types[wire.EventTimerFired] != 1 || types[wire.EventTokenTransitioned] != 1 {
		t.Fatalf("events: %v", types)
	}
}

// TestTimerTokenLeavesFirst: a token approved before its timer falls due
// is not moved by it, and its schedule is cancelled.
func TestTimerTokenLeavesFirst(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, escalation("esc2", "PT1S")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	done := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "approve"}))
	if len(done.Timers) != 0 {
		t.Fatalf("timers after leaving: %+v", done.Timers)
	}
	st := testkit.Must(s.stackJS().Stream(c, subjects.StreamName(wf.ID)))
	last := testkit.Must(st.GetLastMsgForSubject(c, subjects.TimerSchedule(wf.ID, tok.ID, "escalate", 1)))
	if last.Header.Get(subjects.HeaderTokenOp) != subjects.TokenOpDelete {
		t.Fatalf("the schedule of a token that left was not cancelled: %v", last.Header)
	}
	time.Sleep(2500 * time.Millisecond)
	got := testkit.Must(s.c.GetToken(c, tok.ID))
	if got.Place != "done" || got.Revision != 2 || timerFires(t, s, tok.ID) != 0 {
		t.Fatalf("token %s rev %d after its timer's time", got.Place, got.Revision)
	}
	if types := eventTypes(eventsOf(events(t, s, wf.ID), tok.ID)); types[wire.EventTimerFired] != 0 {
		t.Fatalf("events: %v", types)
	}
}

// TestTimerAtDeadline: an at-timer reads its time from the token's data;
// moving the deadline reschedules it; a failing guard records
// timer_skipped and leaves the token.
func TestTimerAtDeadline(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	def := escalation("esc3", "PT0S")
	def.Transitions[2].Conditions = []string{"has_title"}
	wf := testkit.Must(s.c.CreateWorkflow(c, def))
	deadline := func(d time.Duration) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"deadline": time.Now().Add(d).UTC().Format(time.RFC3339Nano), "title": "x"})
		return b
	}
	// fires: title present
	a := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID, Data: deadline(time.Hour)}))
	testkit.Poll(t, 10*time.Second, "escalated", func() bool { return testkit.Must(s.c.GetToken(c, a.ID)).Place == "escalated" })
	if tm := testkit.Must(s.c.GetToken(c, a.ID)).Timers; len(tm) != 1 || tm[0].TransitionID != "expire" {
		t.Fatalf("escalated token's timers: %+v", tm)
	}
	t0 := time.Now()
	testkit.Must(s.c.UpdateToken(c, &wire.UpdateTokenRequest{TokenID: a.ID, Data: deadline(1500 * time.Millisecond)}))
	testkit.Poll(t, 10*time.Second, "expired", func() bool { return testkit.Must(s.c.GetToken(c, a.ID)).Place == "expired" })
	if d := time.Since(t0); d < 1500*time.Millisecond || d > 3*time.Second {
		t.Fatalf("moved deadline fired after %v", d)
	}
	// skipped: no title
	b := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID,
		Data: json.RawMessage(`{"deadline":"` + time.Now().Add(time.Second).UTC().Format(time.RFC3339) + `"}`)}))
	testkit.Poll(t, 10*time.Second, "timer_skipped", func() bool {
		return eventTypes(eventsOf(events(t, s, wf.ID), b.ID))[wire.EventTimerSkipped] == 1
	})
	if got := testkit.Must(s.c.GetToken(c, b.ID)); got.Place != "escalated" {
		t.Fatalf("a skipped timer moved the token to %s", got.Place)
	}
}

// TestTimerDueWhileStopped: a timer that falls due while every process
// (NATS included) is stopped fires once after the restart.
func TestTimerDueWhileStopped(t *testing.T) {
	dir := t.TempDir()
	s, c := start(t, dir), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, escalation("esc4", "PT1S")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	s.stop()
	time.Sleep(2 * time.Second)
	s = start(t, dir)
	testkit.Poll(t, 15*time.Second, "the timer fires after the restart", func() bool {
		return testkit.Must(s.c.GetToken(c, tok.ID)).Place == "escalated"
	})
	time.Sleep(time.Second)
	if n := timerFires(t, s, tok.ID); n != 1 {
		t.Fatalf("%d timer fires, want 1", n)
	}
}

// TestTenThousandTimers: 10,000 timers due in the same second all fire,
// in due order, within the documented bound (README, "Timers"): the
// server publishes due timers each quarter second, and a backlog is
// worked off at the rate fires commit.
func TestTenThousandTimers(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 timers")
	}
	s := startWith(t, "", func(st *storeOpts) { st.RouteWrites = true })
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := timerlag.Run(c, s.c, timerlag.Options{Timers: 10_000, Clients: 16, Workflow: "lag10k", Wait: time.Minute,
		Progress: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Fired != r.Timers {
		t.Fatalf("%d of %d timers fired", r.Fired, r.Timers)
	}
	// The bound: 0.25 s (the server's scheduling tick) plus the backlog
	// at the rate fires commit, with a second to spare; and due order
	// within one tick.
	bound := 1250*time.Millisecond + time.Duration(float64(r.Timers)/r.FireRate*float64(time.Second))
	if r.LastFired > bound || r.MaxOvertake > 500*time.Millisecond {
		t.Fatalf("outside the bound %v: %v", bound, r)
	}
}

// TestTimerTwoInstances: with two token-service instances consuming the
// same timers (writes routed to one writer), each of 300 timers fires
// exactly once.
func TestTimerTwoInstances(t *testing.T) {
	s, c := startWith(t, "", func(st *storeOpts) { st.RouteWrites = true }), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, escalation("esc5", "PT1S")))
	var ids []string
	for range 300 {
		ids = append(ids, testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID})).ID)
	}
	testkit.Poll(t, 30*time.Second, "every timer fires", func() bool {
		return len(testkit.Must(s.c.TokensInPlace(c, wf.ID, "escalated", wire.Page{First: 1000})).Items) == len(ids)
	})
	time.Sleep(time.Second)
	fired := map[string]int{}
	for _, e := range events(t, s, wf.ID) {
		if e.EventType == wire.EventTimerFired {
			fired[e.TokenID]++
		}
	}
	for _, id := range ids {
		if tok := testkit.Must(s.c.GetToken(c, id)); tok.Revision != 2 || fired[id] != 1 {
			t.Fatalf("token %s: revision %d, %d timer_fired events", id, tok.Revision, fired[id])
		}
	}
}

// TestTimerReadmeExample runs the README's escalation example through
// GraphQL (with seconds instead of 48 hours): the review escalates by
// itself, then expires at its deadline; bad timer inputs are refused.
func TestTimerReadmeExample(t *testing.T) {
	s := start(t, "")
	const def = `mutation($after: String!) {
  createWorkflow(input: {
    id: "review", name: "Review with escalation",
    places: ["review", "escalated", "approved", "expired"], initialPlace: "review",
    transitions: [
      {id: "approve",  fromPlaces: ["review", "escalated"], toPlace: "approved"},
      {id: "escalate", fromPlaces: ["review"],    toPlace: "escalated", after: $after},
      {id: "expire",   fromPlaces: ["escalated"], toPlace: "expired",   at: "data.deadline",
       rules: [{id: "unassigned", condition: {type: Not, rule: {id: "has_reviewer", condition: {type: FieldExists, field: "reviewer"}}}}]}
    ]}) { id transitions { id after at } }
}`
	var wf struct {
		Transitions []struct{ ID, After, At *string }
	}
	s.ok(t, def, map[string]any{"after": "PT1S"}, "createWorkflow", &wf)
	if len(wf.Transitions) != 3 || wf.Transitions[0].After != nil || *wf.Transitions[1].After != "PT1S" || *wf.Transitions[2].At != "data.deadline" {
		t.Fatalf("transitions: %+v", wf.Transitions)
	}
	var tok struct {
		ID     string
		Timers []struct{ TransitionID, DueAt string }
	}
	s.ok(t, `mutation($d: JSON) { createToken(input: {workflowId: "review", data: $d}) { id timers { transitionId dueAt } } }`,
		map[string]any{"d": map[string]any{"deadline": time.Now().Add(2500 * time.Millisecond).UTC().Format(time.RFC3339Nano)}}, "createToken", &tok)
	if len(tok.Timers) != 1 || tok.Timers[0].TransitionID != "escalate" {
		t.Fatalf("timers: %+v", tok.Timers)
	}
	var evals []struct {
		TransitionID string
		TimerDueAt   *string
	}
	s.ok(t, `query($id: String!) { transitionEvaluations(tokenId: $id) { transitionId timerDueAt } }`, map[string]any{"id": tok.ID}, "transitionEvaluations", &evals)
	for _, e := range evals {
		if (e.TransitionID == "escalate") != (e.TimerDueAt != nil && *e.TimerDueAt == tok.Timers[0].DueAt) {
			t.Fatalf("evaluations: %+v", evals)
		}
	}
	place := func() string {
		var got struct{ Place string }
		s.ok(t, `query($id: String!) { token(id: $id) { place } }`, map[string]any{"id": tok.ID}, "token", &got)
		return got.Place
	}
	testkit.Poll(t, 10*time.Second, "escalated", func() bool { return place() == "escalated" })
	testkit.Poll(t, 10*time.Second, "expired", func() bool { return place() == "expired" })
	s.fails(t, def, map[string]any{"after": "48h"}, "BAD_USER_INPUT", "not an ISO 8601 duration")
}
