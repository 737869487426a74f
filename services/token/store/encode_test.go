package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/shared/flow"
)

// TestEncodeTokenMatchesJSON: a token encoded from the histories of the
// state it came from is byte for byte what json.Marshal gives, through
// fires (with data, odd characters, idempotency keys), updates that add no
// history, a state whose histories were not kept, and nil histories.
func TestEncodeTokenMatchesJSON(t *testing.T) {
	m, err := flow.NewMachine(&flow.Definition{ID: "enc", Name: "enc", Places: []string{"a", "b"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "back", FromPlaces: []string{"b"}, ToPlace: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	odd := []string{`{"x":1}`, `{"html":"<a href='x'>&amp;</a>"}`, `{"u":"\u00e9\u2028 ✓","n":null}`, `{"nested":{"history":[],"transitionHistory":[],"revision":1}}`, ``}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cur, err := m.Create(flow.CreateRequest{TokenID: "t-1", Data: json.RawMessage(`{"a":"<b>"}`), TriggeredBy: "test", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var hist *histories
	check := func(step int, tok *flow.Token, prev *histories) *histories {
		t.Helper()
		got, h, err := encodeToken(tok, prev)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(tok)
		if !bytes.Equal(got, want) {
			t.Fatalf("step %d:\n got %s\nwant %s", step, got, want)
		}
		return h
	}
	prevRecords := 0
	for step := range 200 {
		cur.NatsSequence, cur.NatsSubject, cur.NatsTimestamp = uint64(step+3), fmt.Sprint("workflows.enc.places.", cur.Place, ".tokens.t-1"), now
		if n := len(cur.TransitionHistory); n > prevRecords {
			cur.TransitionHistory[n-1].NatsSequence = cur.NatsSequence // as the committer stamps an appended record
		}
		prevRecords = len(cur.TransitionHistory)
		prev := hist
		if step%17 == 5 {
			prev = nil // the state replaced was not kept
		}
		hist = check(step, cur, prev)
		now = now.Add(time.Second)
		if rnd.IntN(4) == 0 {
			cur, err = m.Update(cur, flow.UpdateRequest{Data: json.RawMessage(`{"u":` + fmt.Sprint(step) + `}`), Now: now})
		} else {
			tr := map[string]string{"a": "go", "b": "back"}[cur.Place]
			cur, err = m.Fire(cur, flow.FireRequest{TransitionID: tr, Data: json.RawMessage(odd[rnd.IntN(len(odd))]),
				TriggeredBy: []string{"", "api", "<svc>"}[rnd.IntN(3)], IdempotencyKey: fmt.Sprint("k", step), Now: now})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	cur.History, cur.TransitionHistory = nil, nil
	check(-1, cur, nil)
}
