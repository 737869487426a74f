package store

import (
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/shared/flow"
)

var update = flag.Bool("update", false, "rewrite the golden files of the stored forms")

// TestStoredFormsAreStable pins the bytes of a state and a history
// message: a change of them is a change of the stored layout, which needs
// an upgrade (migrate.go), never an accident of a domain change. Run with
// -update to accept a deliberate change.
func TestStoredFormsAreStable(t *testing.T) {
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tok := &flow.Token{ID: "0d6b9a6e-1111-4a5b-9c9d-000000000001", WorkflowID: "orders", WorkflowVersion: 2, Place: "paid",
		Data: json.RawMessage(`{"n":1}`), Metadata: json.RawMessage(`{"team":"a"}`), CreatedAt: at, UpdatedAt: at.Add(time.Minute),
		Revision: 3, Records: 3, NatsSequence: 42, NatsSubject: "workflows.orders.places.paid.tokens.0d6b9a6e-1111-4a5b-9c9d-000000000001",
		NatsTimestamp: at.Add(time.Minute), Keys: []flow.KeyUse{{Key: "k1", Hash: "h1", Revision: 2}}}
	entry := &flow.Entry{
		Record: flow.TransitionRecord{FromPlace: "new", ToPlace: "paid", TransitionID: "pay", Timestamp: at, TriggeredBy: "u", TriggeredByClaim: "someone", IdempotencyKey: "k1", RequestHash: "h1"},
		Event:  &flow.HistoryEvent{Timestamp: at, Transition: "pay", From: "new", To: "paid", Data: json.RawMessage(`{"n":1}`)},
	}
	state, err := encodeState(tok)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := json.Marshal(toStoredEntry(entry, 3, 42))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/state.golden.json", state)
	golden(t, "testdata/entry.golden.json", hist)

	back, err := decodeState(state)
	if err != nil || !reflect.DeepEqual(back.token(), tok) {
		t.Fatalf("state round trip: %+v, %v", back.token(), err)
	}
	if old, err := decodeState([]byte(`{"layout":2,"id":"x"}`)); err != nil || old.token().WorkflowVersion != 1 {
		t.Fatalf("a state from before versions: %+v, %v; want version 1", old, err)
	}
	se, err := decodeEntry(hist)
	if got := se.entry(); err != nil || se.N != 3 || got.Record.NatsSequence != 42 || got.Record.TriggeredByClaim != "someone" || !reflect.DeepEqual(got.Event, entry.Event) {
		t.Fatalf("entry round trip: %+v, %v", got, err)
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if string(want) != string(got)+"\n" {
		t.Fatalf("%s changed:\n got %s\nwant %s", path, got, want)
	}
}

// TestLayout1StatesDecode: a layout-1 state (history inside) reads as its
// token, with its records counted and its keys remembered.
func TestLayout1StatesDecode(t *testing.T) {
	v1 := `{"id":"t","workflowId":"w","place":"b","data":{},"metadata":{},"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z",` +
		`"history":[{"timestamp":"2026-01-01T00:00:00Z","transition":"go","from":"a","to":"b"}],` +
		`"transitionHistory":[{"fromPlace":"a","toPlace":"a","transitionId":"create","timestamp":"2026-01-01T00:00:00Z","natsSequence":2},` +
		`{"fromPlace":"a","toPlace":"b","transitionId":"go","timestamp":"2026-01-01T00:00:00Z","natsSequence":5,"idempotencyKey":"k"}],` +
		`"revision":2,"natsSequence":5,"natsSubject":"workflows.w.places.b.tokens.t","natsTimestamp":"2026-01-01T00:00:00Z"}`
	st, err := decodeState([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	if st.Legacy == nil || st.Records != 2 || st.token().Idempotent("k") == nil {
		t.Fatalf("decoded %+v", st)
	}
	es := st.Legacy.entries()
	if len(es) != 2 || es[0].Event != nil || es[1].Event == nil || es[1].Event.Transition != "go" || es[1].N != 2 {
		t.Fatalf("entries %+v", es)
	}
}
