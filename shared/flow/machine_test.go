package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/rules"
)

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// machine builds a Machine or fails the test.
func machine(t testing.TB, d *Definition) *Machine {
	t.Helper()
	m, err := NewMachine(d)
	if err != nil {
		t.Fatalf("NewMachine: %v", err)
	}
	return m
}

// create makes a token with data and metadata given as JSON text.
func create(t testing.TB, m *Machine, data, metadata string) *Token {
	t.Helper()
	tok, _, err := m.Create(CreateRequest{Data: json.RawMessage(data), Metadata: json.RawMessage(metadata), Now: t0})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return tok
}

// fire fires id on tok or fails the test.
func fire(t testing.TB, m *Machine, tok *Token, id string) *Token {
	t.Helper()
	next, _, err := m.Fire(tok, FireRequest{TransitionID: id, Now: t0.Add(time.Minute)})
	if err != nil {
		t.Fatalf("Fire %s: %v", id, err)
	}
	return next
}

// wantErr checks err's kind and message prefix.
func wantErr(t testing.TB, err error, kind *fail.Error, prefix string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("got error %v, want kind %v", err, kind.Kind)
	}
	if !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("got %q, want prefix %q", err, prefix)
	}
}

func TestNewMachineRejectsInvalid(t *testing.T) {
	d := documentReview()
	d.InitialPlace = "nowhere"
	_, err := NewMachine(d)
	wantErr(t, err, fail.ErrBadInput, "Invalid workflow: Initial place 'nowhere' not found in places")
}

func TestCreate(t *testing.T) {
	m := machine(t, documentReview())
	tests := []struct {
		name    string
		req     CreateRequest
		place   string
		data    string
		md      string
		wantErr string
	}{
		{"defaults", CreateRequest{}, "draft", `{}`, `{}`, ""},
		{"override", CreateRequest{InitialPlace: "review"}, "review", `{}`, `{}`, ""},
		{"unknown override", CreateRequest{InitialPlace: "nope"}, "", "", "", "Place 'nope' not found in workflow 'doc-review'"},
		{"data compacted", CreateRequest{Data: json.RawMessage(` {"title": "T", "n": 1.50} `)}, "draft", `{"title":"T","n":1.50}`, `{}`, ""},
		{"scalar data", CreateRequest{Data: json.RawMessage(`"x"`)}, "draft", `"x"`, `{}`, ""},
		{"invalid data", CreateRequest{Data: json.RawMessage(`{"a":`)}, "", "", "", "data is not valid JSON"},
		{"metadata object", CreateRequest{Metadata: json.RawMessage(`{"created_by":"demo_user"}`)}, "draft", `{}`, `{"created_by":"demo_user"}`, ""},
		{"null metadata", CreateRequest{Metadata: json.RawMessage(`null`)}, "draft", `{}`, `{}`, ""},
		{"metadata array", CreateRequest{Metadata: json.RawMessage(`[1]`)}, "", "", "", "metadata must be a JSON object"},
		{"metadata invalid", CreateRequest{Metadata: json.RawMessage(`{"a"}`)}, "", "", "", "metadata must be a JSON object"},
		{"unsafe token id", CreateRequest{TokenID: "a.b"}, "", "", "", "token id 'a.b' is not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Now, tc.req.TriggeredBy, tc.req.IdempotencyKey = t0, "nats_demo", "k1"
			tok, entry, err := m.Create(tc.req)
			if tc.wantErr != "" {
				wantErr(t, err, fail.ErrBadInput, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if tok.Place != tc.place || string(tok.Data) != tc.data || string(tok.Metadata) != tc.md {
				t.Errorf("got place %q data %s metadata %s", tok.Place, tok.Data, tok.Metadata)
			}
			checkCreated(t, tok, entry, tc.place)
		})
	}
}

// checkCreated checks the fields every new token has.
func checkCreated(t *testing.T, tok *Token, entry *Entry, place string) {
	t.Helper()
	if len(tok.ID) != 36 || tok.WorkflowID != "doc-review" || tok.Revision != 1 || tok.Records != 1 {
		t.Errorf("id %q workflow %q revision %d records %d", tok.ID, tok.WorkflowID, tok.Revision, tok.Records)
	}
	if !tok.CreatedAt.Equal(t0) || !tok.UpdatedAt.Equal(t0) {
		t.Errorf("times %v %v", tok.CreatedAt, tok.UpdatedAt)
	}
	want := Entry{Record: TransitionRecord{FromPlace: place, ToPlace: place, TransitionID: "create", Timestamp: t0,
		TriggeredBy: "nats_demo", IdempotencyKey: "k1",
		Metadata: json.RawMessage(`{"event_type":"token_created","workflow_id":"doc-review"}`)}}
	if !reflect.DeepEqual(*entry, want) {
		t.Errorf("entry %+v", *entry)
	}
	if k := tok.Idempotent("k1"); k == nil || k.Revision != 1 {
		t.Errorf("key k1: %+v", k)
	}
}

func TestFireS1ReplaceAndNewPlace(t *testing.T) {
	m := machine(t, documentReview())
	tok := create(t, m, `{"title":"Technical Specification","priority":"medium"}`, `{"department":"engineering"}`)
	req := FireRequest{TransitionID: "submit_for_review", NewPlace: "approved", Now: t0}
	_, _, err := m.Fire(tok, req)
	wantErr(t, err, fail.ErrInvalidTransition, "Invalid transition")
	req.NewPlace, req.Data, req.ReplaceData, req.TriggeredBy = "review", json.RawMessage(`{"reviewed_by":"demo_reviewer"}`), true, "nats_demo_transition"
	next, entry, err := m.Fire(tok, req)
	if err != nil {
		t.Fatalf("Fire: %v", err)
	}
	if next.Place != "review" || string(next.Data) != `{"reviewed_by":"demo_reviewer"}` || next.Revision != 2 {
		t.Errorf("got place %s data %s revision %d", next.Place, next.Data, next.Revision)
	}
	last := entry.Record
	if next.Records != 2 || last.TransitionID != "submit_for_review" || last.TriggeredBy != "nats_demo_transition" || last.FromPlace != "draft" {
		t.Errorf("records %d, record %+v", next.Records, last)
	}
}

func TestFireS3Sequence(t *testing.T) {
	m := machine(t, appDevelopment())
	tok, _, err := m.Create(CreateRequest{InitialPlace: "planning", Data: json.RawMessage(`{"featureName":"User Authentication","estimatedHours":40}`), Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct{ id, place string }{
		{"start_development", "development"}, {"submit_for_testing", "testing"},
		{"back_to_development", "development"}, {"submit_for_testing", "testing"},
		{"promote_to_staging", "staging"}, {"deploy_to_production", "production"},
	}
	for i, s := range steps {
		data := json.RawMessage(`{"performedBy":"automated-system","step":` + string(rune('0'+i)) + `}`)
		next, entry, err := m.Fire(tok, FireRequest{TransitionID: s.id, Data: data, ReplaceData: true, Now: t0.Add(time.Duration(i+1) * time.Second)})
		if err != nil {
			t.Fatalf("step %d %s: %v", i, s.id, err)
		}
		if ev := entry.Event; next.Place != s.place || ev.Transition != s.id || ev.From != tok.Place || ev.To != s.place {
			t.Fatalf("step %d: place %s history event %+v", i, next.Place, ev)
		}
		tok = next
	}
	if tok.Records != 7 || tok.Revision != 7 || string(tok.Data) != `{"performedBy":"automated-system","step":5}` {
		t.Errorf("records %d revision %d data %s", tok.Records, tok.Revision, tok.Data)
	}
	_, _, err = m.Fire(tok, FireRequest{TransitionID: "enter_maintenance", Now: t0})
	if err != nil {
		t.Errorf("enter_maintenance from production: %v", err)
	}
	staging := tok.Clone()
	staging.Place = "staging"
	_, _, err = m.Fire(staging, FireRequest{TransitionID: "enter_maintenance"})
	wantErr(t, err, fail.ErrInvalidTransition, "Invalid transition: 'enter_maintenance' cannot fire from place 'staging'")
}

func TestFireS5Cancel(t *testing.T) {
	m := machine(t, orderFulfillment())
	cart := create(t, m, `{"order_id":"ORD-12345","total":1059.97}`, `{"customer_tier":"premium"}`)
	pending := fire(t, m, cart, "checkout")
	paid := fire(t, m, pending, "pay")
	tests := []struct {
		name string
		tok  *Token
		ok   bool
	}{{"from cart", cart, true}, {"from payment_pending", pending, true}, {"not from paid", paid, false}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next, _, err := m.Fire(tc.tok, FireRequest{TransitionID: "cancel"})
			if !tc.ok {
				wantErr(t, err, fail.ErrInvalidTransition, "Invalid transition")
				return
			}
			if err != nil || next.Place != "cancelled" {
				t.Fatalf("got %v %v", next, err)
			}
		})
	}
	ids := func(ts []Transition) (s []string) {
		for _, tr := range ts {
			s = append(s, tr.ID)
		}
		return s
	}
	if got := ids(m.Available(cart)); !reflect.DeepEqual(got, []string{"checkout", "cancel"}) {
		t.Errorf("available at cart = %v", got)
	}
	if got := ids(m.Available(paid)); !reflect.DeepEqual(got, []string{"ship"}) {
		t.Errorf("available at paid = %v", got)
	}
	done := fire(t, m, fire(t, m, paid, "ship"), "deliver")
	if done.Place != "delivered" || done.Records != 5 {
		t.Errorf("delivered token %+v", done)
	}
	_, _, err := m.Fire(done, FireRequest{TransitionID: "refund"})
	wantErr(t, err, fail.ErrInvalidTransition, "Invalid transition: workflow 'order_fulfillment' has no transition 'refund'")
}

func TestFireMergeDoesNotMutate(t *testing.T) {
	m := machine(t, documentReview())
	tok := create(t, m, `{"title":"T","nested":{"a":1,"b":2}}`, `{}`)
	before, _ := json.Marshal(tok)
	next, entry, err := m.Fire(tok, FireRequest{TransitionID: "submit_for_review", Data: json.RawMessage(`{"nested":{"b":null,"c":3}}`), Now: t0, IdempotencyKey: "idem-1"})
	if err != nil {
		t.Fatal(err)
	}
	if string(next.Data) != `{"nested":{"a":1,"c":3},"title":"T"}` {
		t.Errorf("merged data %s", next.Data)
	}
	if h := entry.Event; string(h.Data) != `{"nested":{"b":null,"c":3}}` || !h.Timestamp.Equal(t0) {
		t.Errorf("history event %+v", h)
	}
	if after, _ := json.Marshal(tok); string(after) != string(before) {
		t.Errorf("original token changed:\n%s\n%s", before, after)
	}
	if next.Idempotent("idem-1") == nil || tok.Idempotent("idem-1") != nil || next.Idempotent("") != nil {
		t.Error("Idempotent wrong")
	}
	next.Keys[0].Key = "changed"
	if len(tok.Keys) != 0 {
		t.Error("keys shared between tokens")
	}
}

// guarded is S1 with guards on approve.
func guarded() *Definition {
	d := documentReview()
	d.Transitions[1].Conditions = []string{"has_reviewer"}
	d.Transitions[1].Rules = []rules.Rule{{ID: "score_ok", Condition: rules.Condition{
		Type: rules.FieldGreaterThan, Field: "review.score", Value: json.RawMessage(`7`)}}}
	d.Transitions = append(d.Transitions, tr("loop", "review", "review"))
	return d
}

func TestFireGuards(t *testing.T) {
	m := machine(t, guarded())
	tests := []struct {
		name, data, wantErr string
	}{
		{"condition fails first", `{"review":{"score":9}}`, "Guard failed: rule 'has_reviewer': Field 'reviewer' does not exist"},
		{"rule fails", `{"reviewer":"bob","review":{"score":5}}`, "Guard failed: rule 'score_ok': Field 'review.score' (5) is not greater than 7"},
		{"all pass", `{"reviewer":"bob","review":{"score":8}}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := fire(t, m, create(t, m, tc.data, `{}`), "submit_for_review")
			// The fire's own data is not seen by the guards.
			next, _, err := m.Fire(tok, FireRequest{TransitionID: "approve", Data: json.RawMessage(`{"reviewer":"x","review":{"score":10}}`)})
			if tc.wantErr != "" {
				wantErr(t, err, fail.ErrGuardFailed, tc.wantErr)
				return
			}
			if err != nil || next.Place != "approved" {
				t.Fatalf("got %v, %v", next, err)
			}
		})
	}
	self := fire(t, m, fire(t, m, create(t, m, `{}`, `{}`), "submit_for_review"), "loop")
	if self.Place != "review" || self.Records != 3 {
		t.Errorf("self loop: %+v", self)
	}
}

func TestUpdate(t *testing.T) {
	m := machine(t, documentReview())
	tok := create(t, m, `{"a":1,"b":2}`, `{"m":1}`)
	tests := []struct {
		name                string
		req                 UpdateRequest
		data, meta, wantErr string
	}{
		{"merge data", UpdateRequest{Data: json.RawMessage(`{"b":null,"c":3}`)}, `{"a":1,"c":3}`, `{"m":1}`, ""},
		{"replace data", UpdateRequest{Data: json.RawMessage(`[1, 2]`), ReplaceData: true}, `[1,2]`, `{"m":1}`, ""},
		{"merge metadata", UpdateRequest{Metadata: json.RawMessage(`{"m":null,"carrier":"UPS"}`)}, `{"a":1,"b":2}`, `{"carrier":"UPS"}`, ""},
		{"nothing", UpdateRequest{}, "", "", "nothing to update"},
		{"replace without data", UpdateRequest{ReplaceData: true}, "", "", "nothing to update"},
		{"metadata not object", UpdateRequest{Metadata: json.RawMessage(`"x"`)}, "", "", "metadata must be a JSON object"},
		{"metadata null", UpdateRequest{Metadata: json.RawMessage(`null`)}, "", "", "metadata must be a JSON object"},
		{"bad patch", UpdateRequest{Data: json.RawMessage(`{"a"`)}, "", "", "invalid JSON merge patch"},
		{"bad replacement", UpdateRequest{Data: json.RawMessage(`{"a"`), ReplaceData: true}, "", "", "data is not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Now = t0.Add(time.Hour)
			next, err := m.Update(tok, tc.req)
			if tc.wantErr != "" {
				wantErr(t, err, fail.ErrBadInput, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(next.Data) != tc.data || string(next.Metadata) != tc.meta {
				t.Errorf("data %s metadata %s", next.Data, next.Metadata)
			}
			if next.Revision != 2 || !next.UpdatedAt.Equal(tc.req.Now) || next.Records != 1 || next.Place != "draft" {
				t.Errorf("token %+v", next)
			}
			if string(tok.Data) != `{"a":1,"b":2}` || tok.Revision != 1 {
				t.Error("original token changed")
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	m := machine(t, guarded())
	tok := fire(t, m, create(t, m, `{"review":{"score":5}}`, `{}`), "submit_for_review")
	evals := m.Evaluate(tok)
	want := []struct {
		id          string
		place, fire bool
		explanation string
	}{
		{"submit_for_review", false, false, "Token is in place 'review' but transition requires one of: [draft]"},
		{"approve", true, false, "2 of 2 rules failed: rule 'has_reviewer': Field 'reviewer' does not exist; rule 'score_ok': Field 'review.score' (5) is not greater than 7"},
		{"reject", true, true, "All conditions met - transition can fire"},
		{"publish", false, false, "Token is in place 'review' but transition requires one of: [approved]"},
		{"loop", true, true, "All conditions met - transition can fire"},
	}
	if len(evals) != len(want) {
		t.Fatalf("got %d evaluations", len(evals))
	}
	for i, w := range want {
		e := evals[i]
		t.Run(w.id, func(t *testing.T) {
			if e.TransitionID != w.id || e.PlaceCompatible != w.place || e.CanFire != w.fire || e.Explanation != w.explanation || e.RuleResults == nil {
				t.Errorf("got %+v", e)
			}
		})
	}
	if r := evals[1].RuleResults; len(r) != 2 || r[0].RuleID != "has_reviewer" || r[1].RuleID != "score_ok" || evals[1].RulesPassed {
		t.Errorf("rule results %+v", r)
	}
}

// TestKeysAreBounded: a token remembers its latest MaxKeys idempotency
// keys, newest last.
func TestKeysAreBounded(t *testing.T) {
	m := machine(t, guarded())
	tok := fire(t, m, create(t, m, `{}`, `{}`), "submit_for_review")
	for i := range MaxKeys + 5 {
		next, _, err := m.Fire(tok, FireRequest{TransitionID: "loop", IdempotencyKey: fmt.Sprint("k", i)})
		if err != nil {
			t.Fatal(err)
		}
		tok = next
	}
	if len(tok.Keys) != MaxKeys || tok.Idempotent("k4") != nil || tok.Idempotent("k5") == nil {
		t.Fatalf("%d keys; k4 %v, k5 %v", len(tok.Keys), tok.Idempotent("k4"), tok.Idempotent("k5"))
	}
	if k := tok.Idempotent(fmt.Sprint("k", MaxKeys+4)); k == nil || k.Revision != tok.Revision {
		t.Fatalf("newest key %+v, revision %d", k, tok.Revision)
	}
}

// TestFireableMatchesAvailable: the transitions derived from the
// evaluations are those AvailableContext finds.
func TestFireableMatchesAvailable(t *testing.T) {
	m := machine(t, guarded())
	for _, data := range []string{`{}`, `{"reviewer":"bob","review":{"score":8}}`, `{"reviewer":"bob","review":{"score":5}}`} {
		tok := fire(t, m, create(t, m, data, `{}`), "submit_for_review")
		if got, want := m.Fireable(m.EvaluateContext(context.Background(), tok)), m.Available(tok); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fireable %v, available %v", data, got, want)
		}
	}
}
