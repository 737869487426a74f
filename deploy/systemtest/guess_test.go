package systemtest

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/services/token/store"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestStaleGuessIsSettled: the token service builds a change on the state
// it last committed, without reading. When another instance has changed the
// token since, that guess is stale: the compare-and-swap must catch it, and
// every answer built on it, refusals included, must be settled on a real
// read. One token service runs; a second store plays the other instance.
func TestStaleGuessIsSettled(t *testing.T) {
	s, c := startN(t, "", 1, nil), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, race("guess")))
	other := testkit.Must(store.Open(c, testkit.Must(jetstream.New(s.nc)), zerolog.Nop(), store.Options{}))
	t.Cleanup(other.Close)
	fireElsewhere := func(tokenID, transition string) {
		t.Helper()
		cur := testkit.Must(other.Get(c, tokenID))
		m := testkit.Must(other.Machine(c, wf.ID, 0))
		next, entry, err := m.Fire(cur, flow.FireRequest{TransitionID: transition, Now: time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		ev := wire.Event{EventType: wire.EventTokenTransitioned, TokenID: tokenID, WorkflowID: wf.ID,
			FromPlace: cur.Place, ToPlace: next.Place, TransitionID: transition, Timestamp: next.UpdatedAt}
		testkit.Must(other.Change(c, cur, next, entry, ev))
	}
	fire := func(r *wire.FireRequest) (*flow.Token, error) { return s.c.Fire(c, r) }

	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID})) // remembered in a, rev 1
	fireElsewhere(tok.ID, "to_b")                                                        // now in b, rev 2
	// The guess (a) allows to_c; the token (b) does not.
	if _, err := fire(&wire.FireRequest{TokenID: tok.ID, TransitionID: "to_c"}); !errors.Is(err, fail.ErrInvalidTransition) {
		t.Fatalf("to_c from b on a stale guess: err = %v, want INVALID_TRANSITION", err)
	}
	next := testkit.Must(fire(&wire.FireRequest{TokenID: tok.ID, TransitionID: "tick"})) // b → a, rev 3, remembered
	if next.Revision != 3 || next.Place != "a" {
		t.Fatalf("tick: rev %d in %s, want rev 3 in a", next.Revision, next.Place)
	}
	fireElsewhere(tok.ID, "to_b") // rev 4 in b
	fireElsewhere(tok.ID, "tick") // rev 5 in a
	// A pinned revision the guess (3) does not have, but the token does.
	next = testkit.Must(fire(&wire.FireRequest{TokenID: tok.ID, TransitionID: "to_c", ExpectedRevision: 5}))
	if next.Revision != 6 || next.Place != "c" {
		t.Fatalf("pinned fire: rev %d in %s, want rev 6 in c", next.Revision, next.Place)
	}
	fireElsewhere(tok.ID, "tick") // rev 7 in a; the guess says c
	// The guess (c) refuses to_b; the token (a) allows it.
	next = testkit.Must(fire(&wire.FireRequest{TokenID: tok.ID, TransitionID: "to_b"}))
	if next.Revision != 8 || next.Place != "b" {
		t.Fatalf("to_b: rev %d in %s, want rev 8 in b", next.Revision, next.Place)
	}
	evs := eventsOf(events(t, s, wf.ID), tok.ID)
	if len(evs) != 8 {
		t.Fatalf("%d events, want 8 (one per revision)", len(evs))
	}
	for i, e := range evs {
		if e.Revision != uint64(i+1) {
			t.Fatalf("event %d has revision %d", i, e.Revision)
		}
	}
	assertOnePlace(t, s, wf.ID, tok.ID, "b")
}
