package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/natstest"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestGroupWithAStaleChange: a group whose one change lost its
// compare-and-swap (the token changed after it was read) commits the other
// changes in one retry and fails only that one, instead of re-sending every
// change alone.
func TestGroupWithAStaleChange(t *testing.T) {
	ctx, st, w, reg := groupStore(t)
	m := w.machines[1]

	toks := createTokens(t, ctx, st, m, 5)
	// The stale one: token 0 changes after it was read.
	stale := toks[0]
	moved, entry := mustFire(t, m, stale)
	if _, err := st.Change(ctx, stale, moved, entry, wire.Event{EventType: wire.EventTokenTransitioned}); err != nil {
		t.Fatal(err)
	}
	var group []*change
	for _, tok := range toks {
		group = append(group, fireChange(t, m, tok))
	}
	before := batches(t, reg)
	commitGroup(ctx, w.committer, group)
	for i, ch := range group {
		err := <-ch.done
		if i == 0 && !errors.Is(err, fail.ErrConflict) {
			t.Fatalf("stale change: err = %v, want CONFLICT", err)
		}
		if i > 0 && err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	if got := batches(t, reg) - before; got != 2 {
		t.Fatalf("%d batches sent, want 2 (the failed group and its retry without the stale change)", got)
	}
}

// TestGroupWithAnOversizeToken: a token too large to store fails alone,
// with a clear BAD_USER_INPUT; the other changes of its group commit.
func TestGroupWithAnOversizeToken(t *testing.T) {
	ctx, st, w, _ := groupStore(t)
	big, entry, err := w.machines[1].Create(flow.CreateRequest{TokenID: uuid.NewString(), Now: time.Now().UTC(),
		Data: json.RawMessage(`"` + strings.Repeat("x", 9<<20) + `"`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, big, entry); !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("alone: err = %v, want BAD_USER_INPUT too large", err)
	}
	huge, _ := json.Marshal(strings.Repeat("x", 9<<20)) // over the server's 8 MiB max_payload
	var group []*change
	for i := range 4 {
		ch := createChange(t, w.machines[1])
		if i == 2 {
			ch.token.Data = huge
		}
		group = append(group, ch)
	}
	commitGroup(ctx, w.committer, group)
	for i, ch := range group {
		err := <-ch.done
		switch {
		case i == 2 && (!errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), "too large")):
			t.Fatalf("the oversize token: err = %v, want BAD_USER_INPUT too large", err)
		case i != 2 && err != nil:
			t.Fatalf("change %d failed with the oversize token's group: %v", i, err)
		}
	}
}

// groupStore opens a store on a fresh server with one workflow, "grp",
// whose transitions "go" and "back" move a token from a to b and back.
func groupStore(t testing.TB) (context.Context, *Store, *workflow, *metrics.Registry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	js, err := jetstream.New(natstest.Connect(t, natstest.Server(t)))
	if err != nil {
		t.Fatal(err)
	}
	const wf = "grp"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: subjects.StreamName(wf), Subjects: subjects.StreamSubjects(wf),
		AllowDirect: true, AllowRollup: true, AllowAtomicPublish: true, AllowMsgTTL: true}); err != nil {
		t.Fatal(err)
	}
	def, _ := json.Marshal(flow.Definition{ID: wf, Name: wf, Places: []string{"a", "b"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "back", FromPlaces: []string{"b"}, ToPlace: "a"}}})
	if _, err := js.Publish(ctx, subjects.Definition(wf), def); err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	st, err := Open(ctx, js, zerolog.Nop(), Options{Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	w, err := st.workflow(ctx, wf)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, st, w, reg
}

func mustFire(t *testing.T, m *flow.Machine, tok *flow.Token) (*flow.Token, *flow.Entry) {
	t.Helper()
	next, entry, err := m.Fire(tok, flow.FireRequest{TransitionID: map[string]string{"a": "go", "b": "back"}[tok.Place], Now: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return next, entry
}

// createTokens stores n new tokens.
func createTokens(t *testing.T, ctx context.Context, st *Store, m *flow.Machine, n int) []*flow.Token {
	t.Helper()
	var out []*flow.Token
	for range n {
		tok, entry, err := m.Create(flow.CreateRequest{TokenID: uuid.NewString(), Now: time.Now().UTC()})
		if err == nil {
			tok, err = st.Create(ctx, tok, entry)
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tok)
	}
	return out
}

// createChange is an unsubmitted create of a new token.
func createChange(t *testing.T, m *flow.Machine) *change {
	t.Helper()
	tok, entry, err := m.Create(flow.CreateRequest{TokenID: uuid.NewString(), Now: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return &change{token: tok, entry: entry, event: wire.Event{EventType: wire.EventTokenCreated}, done: make(chan error, 1)}
}

// fireChange is an unsubmitted fire of tok as read.
func fireChange(t *testing.T, m *flow.Machine, tok *flow.Token) *change {
	t.Helper()
	next, entry := mustFire(t, m, tok)
	return &change{token: next, entry: entry, prevSubject: tok.NatsSubject, prevSeq: tok.NatsSequence,
		event: wire.Event{EventType: wire.EventTokenTransitioned}, done: make(chan error, 1)}
}

// commitGroup sends group as one group and delivers the outcomes, as the
// run loop does with a group it formed.
func commitGroup(ctx context.Context, c *committer, group []*change) {
	sent, rejected, err := c.send(ctx, again(group))
	deliver(rejected)
	deliver(c.settle(ctx, sent, err))
}

// batches returns how many atomic batches were sent, whatever their outcome.
func batches(t *testing.T, reg *metrics.Registry) int {
	t.Helper()
	var b bytes.Buffer
	if _, err := reg.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "cb_jetstream_batches_total{") {
			var v int
			if _, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v); err != nil {
				t.Fatal(err)
			}
			n += v
		}
	}
	return n
}

// BenchmarkChange measures the storage layer alone: moves committed through
// the group committer by 8 concurrent writers per core (16 here), each
// cycling through 64 tokens of its own. Compare
// with BenchmarkBareAtomicBatch (one batch per change) in deploy/systemtest,
// run alike: on the 2-vCPU VM, 249 µs against 2,023 µs a change (8.1×), the
// same as through NATS — the server's batch, not the service, sets the pace.
//
//	go test ./services/token/store -run '^$' -bench Change -benchtime 3s
func BenchmarkChange(b *testing.B) {
	ctx, st, w, _ := groupStore(b)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var toks []*flow.Token
		for range 64 {
			tok, entry, err := w.machines[1].Create(flow.CreateRequest{TokenID: uuid.NewString(), Now: time.Now().UTC()})
			if err == nil {
				tok, err = st.Create(ctx, tok, entry)
			}
			if err != nil {
				b.Error(err)
				return
			}
			toks = append(toks, tok)
		}
		for i := 0; pb.Next(); i++ {
			cur := toks[i%len(toks)]
			next, entry, err := w.machines[1].Fire(cur, flow.FireRequest{TransitionID: map[string]string{"a": "go", "b": "back"}[cur.Place], Now: time.Now().UTC()})
			if err == nil {
				next, err = st.Change(ctx, cur, next, entry, wire.Event{EventType: wire.EventTokenTransitioned, TokenID: cur.ID, WorkflowID: cur.WorkflowID})
			}
			if err != nil {
				b.Error(err)
				return
			}
			toks[i%len(toks)] = next
		}
	})
}

// TestDuplicateCreateInAnotherPlace: a second create of a token id that
// exists, in another place, loses its compare-and-swap (CONFLICT) alone;
// the rest of its group commits.
func TestDuplicateCreateInAnotherPlace(t *testing.T) {
	ctx, st, w, _ := groupStore(t)
	first := createTokens(t, ctx, st, w.machines[1], 1)[0]
	dup, entry, err := w.machines[1].Create(flow.CreateRequest{TokenID: first.ID, InitialPlace: "b", Now: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	group := []*change{createChange(t, w.machines[1]),
		{token: dup, entry: entry, event: wire.Event{EventType: wire.EventTokenCreated}, done: make(chan error, 1)},
		createChange(t, w.machines[1])}
	commitGroup(ctx, w.committer, group)
	for i, ch := range group {
		err := <-ch.done
		if i == 1 && !errors.Is(err, fail.ErrConflict) {
			t.Fatalf("the duplicate: %v, want CONFLICT", err)
		}
		if i != 1 && err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	if got, err := st.Find(ctx, "grp", first.ID); err != nil || got.Place != "a" {
		t.Fatalf("the first token: %+v, %v", got, err)
	}
}

// TestGroupWithADuplicateEventID: a token deleted and created again under
// the same id (an idempotency key used again) within the stream's
// duplicate window repeats its first event's message id, and the server
// refuses a batch holding it (10201). Only that change fails (UNAVAILABLE:
// retry after the window); the rest of its group commits.
func TestGroupWithADuplicateEventID(t *testing.T) {
	ctx, st, w, _ := groupStore(t)
	m := w.machines[1]
	gone := createTokens(t, ctx, st, m, 1)[0]
	if err := st.Remove(ctx, gone, wire.Event{EventType: wire.EventTokenDeleted, TokenID: gone.ID, WorkflowID: gone.WorkflowID}); err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx, gone.WorkflowID, gone.ID); err != nil {
		t.Fatal(err)
	}
	again, entry, err := m.Create(flow.CreateRequest{TokenID: gone.ID, Now: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	other := createTokens(t, ctx, st, m, 1)[0]
	group := []*change{createChange(t, m),
		{token: again, entry: entry, event: wire.Event{EventType: wire.EventTokenCreated}, done: make(chan error, 1)},
		fireChange(t, m, other), createChange(t, m)}
	commitGroup(ctx, w.committer, group)
	for i, ch := range group {
		err := <-ch.done
		switch {
		case i == 1 && !errors.Is(err, fail.ErrUnavailable):
			t.Fatalf("the change repeating an event id: %v, want UNAVAILABLE", err)
		case i != 1 && err != nil:
			t.Fatalf("change %d: %v", i, err)
		case i != 1:
			if got, err := st.Find(ctx, ch.token.WorkflowID, ch.token.ID); err != nil || got.Revision != ch.token.Revision {
				t.Fatalf("change %d not stored: %+v, %v", i, got, err)
			}
		}
	}
	if _, err := st.Find(ctx, gone.WorkflowID, gone.ID); !errors.Is(err, fail.ErrNotFound) {
		t.Fatalf("the refused token: %v", err)
	}
}
