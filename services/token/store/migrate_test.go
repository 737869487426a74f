package store

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/natstest"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// TestUpgradeResumesALongHistory: a layout-1 token with more records than
// one batch carries is upgraded in chunks; an upgrade that stopped after
// its first chunk (entries written, state not yet) resumes and writes each
// remaining entry exactly once.
func TestUpgradeResumesALongHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js, err := jetstream.New(natstest.Connect(t, natstest.Server(t)))
	if err != nil {
		t.Fatal(err)
	}
	const wf, id, n = "old", "00000000-0000-4000-8000-000000000001", 1500
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: subjects.StreamName(wf), Subjects: subjects.StreamSubjects(wf),
		AllowDirect: true, AllowRollup: true, AllowAtomicPublish: true, AllowMsgTTL: true, MaxMsgsPerSubject: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	def, _ := json.Marshal(flow.Definition{ID: wf, Name: wf, Places: []string{"a", "b"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "back", FromPlaces: []string{"b"}, ToPlace: "a"}}})
	publish(t, js, subjects.Definition(wf), def)
	v1 := legacyToken(id, wf, n)
	publish(t, js, subjects.TokenState(wf, "a", id), v1)
	// The first chunk of an interrupted upgrade: entries 1..999, no new state.
	var legacy legacyHistories
	if err := json.Unmarshal(v1, &legacy); err != nil {
		t.Fatal(err)
	}
	for _, e := range legacy.entries()[:maxBatchMsgs-1] {
		b, _ := json.Marshal(e)
		publish(t, js, subjects.TokenHistory(wf, id), b)
	}

	s, err := Open(ctx, js, zerolog.Nop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.index.Create(ctx, id, []byte(wf)); err != nil {
		t.Fatal(err)
	}
	// Eight first uses at once: one upgrade, and every read waits for it.
	errs := make(chan error, 8)
	for range 8 {
		go func() { _, err := s.Find(ctx, wf, id); errs <- err }()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatalf("a concurrent first use: %v", err)
		}
	}
	tok, err := s.Find(ctx, wf, id)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Records != n || tok.Revision != n {
		t.Fatalf("upgraded token: %d records, revision %d; want %d", tok.Records, tok.Revision, n)
	}
	page, err := s.History(ctx, id, 0, 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != n {
		t.Fatalf("%d history entries, want %d", len(page.Items), n)
	}
	for i, it := range page.Items {
		if want := legacy.TransitionHistory[i]; it.Record.TransitionID != want.TransitionID || it.Record.NatsSequence != want.NatsSequence {
			t.Fatalf("entry %d: %+v, want %+v", i+1, it.Record, want)
		}
	}
	info, err := st.Info(ctx)
	if err != nil || info.Config.MaxMsgsPerSubject > 0 {
		t.Fatalf("per-subject limit after the upgrade: %v %v", info.Config.MaxMsgsPerSubject, err)
	}
}

func publish(t *testing.T, js jetstream.JetStream, subject string, data []byte) {
	t.Helper()
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: data}); err != nil {
		t.Fatal(err)
	}
}

// legacyToken is a layout-1 state with n records: a create and n-1 fires.
func legacyToken(id, wf string, n int) []byte {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var events []storedEvent
	records := []storedRecord{{FromPlace: "a", ToPlace: "a", TransitionID: "create", Timestamp: at, NatsSequence: 2}}
	place := "a"
	for i := 1; i < n; i++ {
		tr, to := "go", "b"
		if place == "b" {
			tr, to = "back", "a"
		}
		records = append(records, storedRecord{FromPlace: place, ToPlace: to, TransitionID: tr, Timestamp: at, NatsSequence: uint64(2 + i)})
		events = append(events, storedEvent{Timestamp: at, Transition: tr, From: place, To: to, Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		place = to
	}
	b, _ := json.Marshal(map[string]any{"id": id, "workflowId": wf, "place": "a", "data": map[string]any{}, "metadata": map[string]any{},
		"createdAt": at, "updatedAt": at, "history": events, "transitionHistory": records, "revision": n,
		"natsSequence": 2, "natsSubject": subjects.TokenState(wf, "a", id), "natsTimestamp": at})
	return b
}
