package systemtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// race is a workflow whose initial place has two competing exits and a self-loop.
func race(id string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{ID: id, Name: "race", Places: []string{"a", "b", "c"}, InitialPlace: "a",
		Transitions: []flow.Transition{
			{ID: "to_b", FromPlaces: []string{"a"}, ToPlace: "b"},
			{ID: "to_c", FromPlaces: []string{"a"}, ToPlace: "c"},
			{ID: "tick", FromPlaces: []string{"a", "b", "c"}, ToPlace: "a"},
		}}
}

// events returns every event stored for a workflow, in order.
func events(t testing.TB, s *system, wf string) []wire.Event {
	t.Helper()
	return testkit.Must(testkit.Events(ctx(t), testkit.Must(jetstream.New(s.nc)), wf))
}

func eventsOf(evs []wire.Event, tokenID string) []wire.Event {
	var out []wire.Event
	for _, e := range evs {
		if e.TokenID == tokenID {
			out = append(out, e)
		}
	}
	return out
}

// TestConcurrentConflictingFires: 100 clients race two exits of one place.
// Exactly one commits; every other gets INVALID_TRANSITION after re-reading.
func TestConcurrentConflictingFires(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, race("race1")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, invalid := 0, 0
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := []string{"to_b", "to_c"}[i%2]
			_, err := s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: tr})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, fail.ErrInvalidTransition):
				invalid++
			default:
				t.Errorf("fire: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || invalid != 99 {
		t.Fatalf("wins=%d invalid=%d, want 1 and 99", wins, invalid)
	}
	got := testkit.Must(s.c.GetToken(c, tok.ID))
	if recs := s.records(t, tok.ID); got.Revision != 2 || len(recs) != 2 || len(s.fires(t, tok.ID)) != 1 {
		t.Fatalf("token = rev %d, %d records", got.Revision, len(recs))
	}
	assertOnePlace(t, s, wf.ID, tok.ID, got.Place)
	if n := len(eventsOf(events(t, s, wf.ID), tok.ID)); n != 2 {
		t.Fatalf("%d events for the token, want 2", n)
	}
}

// TestConcurrentSelfLoops: 100 clients fire a self-loop at once. All are
// valid, so all must commit: no lost update, one event each.
func TestConcurrentSelfLoops(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, race("race2")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			patch := json.RawMessage(fmt.Sprintf(`{"k%d":%d}`, i, i))
			if _, err := s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "tick", Data: patch}); err != nil {
				t.Errorf("fire %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	got := testkit.Must(s.c.GetToken(c, tok.ID))
	var data map[string]int
	testkit.Must(0, json.Unmarshal(got.Data, &data))
	if fired := s.fires(t, tok.ID); got.Revision != 101 || len(fired) != 100 || len(data) != 100 {
		t.Fatalf("revision %d, %d history entries, %d data keys; want 101, 100, 100", got.Revision, len(fired), len(data))
	}
	evs := eventsOf(events(t, s, wf.ID), tok.ID)
	if len(evs) != 101 {
		t.Fatalf("%d events, want 101", len(evs))
	}
	for i, e := range evs {
		if e.Revision != uint64(i+1) {
			t.Fatalf("event %d has revision %d", i, e.Revision)
		}
	}
}

// assertOnePlace checks the token is listed in exactly its place.
func assertOnePlace(t testing.TB, s *system, wf, tokenID, place string) {
	t.Helper()
	def := testkit.Must(s.c.GetWorkflow(ctx(t), wf))
	for _, p := range def.Places {
		found := false
		for _, tk := range testkit.Must(s.c.TokensInPlace(ctx(t), wf, p, wire.Page{})).Items {
			found = found || tk.ID == tokenID
		}
		if found != (p == place) {
			t.Fatalf("token listed in %s: %v (its place is %s)", p, found, place)
		}
	}
}

// TestReadYourWrites: after every mutation returns, every read sees it.
func TestReadYourWrites(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, race("ryw")))
	if got := testkit.Must(s.c.GetWorkflow(c, "ryw")); got.Name != "race" {
		t.Fatalf("workflow = %+v", got)
	}
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	for i := range 30 {
		tr := []string{"to_b", "tick", "to_c", "tick"}[i%4]
		next := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: tr}))
		for name, get := range map[string]func() (*flow.Token, error){
			"get":  func() (*flow.Token, error) { return s.c.GetToken(c, tok.ID) },
			"find": func() (*flow.Token, error) { return s.c.FindToken(c, wf.ID, tok.ID) },
			"list": func() (*flow.Token, error) { return only(s.c.ListTokens(c, wf.ID, wire.Page{})) },
			"available": func() (*flow.Token, error) {
				r, err := s.c.Available(c, tok.ID)
				return r.Token, err
			},
		} {
			got := testkit.Must(get())
			if got.Revision != next.Revision || got.Place != next.Place || got.NatsSequence != next.NatsSequence {
				t.Fatalf("step %d %s: rev %d in %s, want rev %d in %s", i, name, got.Revision, got.Place, next.Revision, next.Place)
			}
		}
		assertOnePlace(t, s, wf.ID, tok.ID, next.Place)
	}
}

func only(p *wire.TokenPage, err error) (*flow.Token, error) {
	if err != nil {
		return nil, err
	}
	if len(p.Items) != 1 {
		return nil, fmt.Errorf("%d tokens listed, want 1", len(p.Items))
	}
	return p.Items[0], nil
}

// TestIdempotentRetries: a retried create or fire with the same key
// returns the first result and writes nothing more.
func TestIdempotentRetries(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, race("idem")))
	create := &wire.CreateTokenRequest{WorkflowID: wf.ID, IdempotencyKey: "order-42"}
	first := testkit.Must(s.c.CreateToken(c, create))
	again := testkit.Must(s.c.CreateToken(c, create))
	if again.ID != first.ID || again.Revision != 1 {
		t.Fatalf("retried create gave %s rev %d, want %s rev 1", again.ID, again.Revision, first.ID)
	}
	fire := &wire.FireRequest{TokenID: first.ID, TransitionID: "tick", IdempotencyKey: "tick-1"}
	f1 := testkit.Must(s.c.Fire(c, fire))
	f2 := testkit.Must(s.c.Fire(c, fire))
	if f1.Revision != 2 || f2.Revision != 2 {
		t.Fatalf("retried fire: revisions %d and %d, want 2 and 2", f1.Revision, f2.Revision)
	}
	if n := len(eventsOf(events(t, s, wf.ID), first.ID)); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
	// The same key with a different request is refused, not answered with
	// the first result.
	if _, err := s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID, IdempotencyKey: "order-42", Data: json.RawMessage(`{"other":1}`)}); !errors.Is(err, fail.ErrConflict) {
		t.Fatalf("create with a reused key: %v", err)
	}
	if _, err := s.c.Fire(c, &wire.FireRequest{TokenID: first.ID, TransitionID: "to_b", IdempotencyKey: "tick-1"}); !errors.Is(err, fail.ErrConflict) {
		t.Fatalf("fire with a reused key: %v", err)
	}
	wfReq := race("")
	wfReq.IdempotencyKey = "wf-key"
	w1 := testkit.Must(s.c.CreateWorkflow(c, wfReq))
	w2 := testkit.Must(s.c.CreateWorkflow(c, wfReq))
	if w1.ID != w2.ID {
		t.Fatalf("retried workflow create gave %s and %s", w1.ID, w2.ID)
	}
}

// TestExpectedRevision: a pinned revision that moved on is a conflict.
func TestExpectedRevision(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, race("pin")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "tick", ExpectedRevision: 1}))
	_, err := s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "tick", ExpectedRevision: 1})
	if !errors.Is(err, fail.ErrConflict) {
		t.Fatalf("stale revision: err = %v, want CONFLICT", err)
	}
}

// TestStateNeverExpires: events expire by TTL; definitions and tokens stay,
// and the stream has no limit that could drop state.
func TestStateNeverExpires(t *testing.T) {
	s := startWith(t, "", func(st *storeOpts) { st.EventMaxAge = time.Second })
	c := ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, race("ttl")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "to_b"}))
	js := testkit.Must(jetstream.New(s.nc))
	info := testkit.Must(testkit.Must(js.Stream(c, subjects.StreamName(wf.ID))).Info(c))
	cfg := info.Config
	if cfg.MaxAge != 0 || cfg.MaxMsgs > 0 || cfg.MaxBytes > 0 || cfg.Discard != jetstream.DiscardNew {
		t.Fatalf("stream limits could drop state: %+v", cfg)
	}
	testkit.Poll(t, 10*time.Second, "condition", func() bool { return len(events(t, s, wf.ID)) == 0 })
	if got := testkit.Must(s.c.GetToken(c, tok.ID)); got.Place != "b" {
		t.Fatalf("token place %s after events expired", got.Place)
	}
	testkit.Must(s.c.GetWorkflow(c, wf.ID))
	testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "tick"}))
}

// TestRecordsKeepTheirSequence: a transition record's natsSequence is the
// sequence of the state its transition wrote, for good: a later update
// (which adds no record) or transition does not rewrite it, and it matches
// the transition's event. Tokens are encoded from the histories last
// stored, so a rewritten record would also make stored JSON disagree.
func TestRecordsKeepTheirSequence(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, race("records")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	fired := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "tick"}))
	updated := testkit.Must(s.c.UpdateToken(c, &wire.UpdateTokenRequest{TokenID: tok.ID, Data: json.RawMessage(`{"n":1}`)}))
	again := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "to_b"}))
	recs := s.records(t, tok.ID)
	want := []uint64{tok.NatsSequence, fired.NatsSequence, again.NatsSequence}
	if len(recs) != 3 || updated.NatsSequence == fired.NatsSequence {
		t.Fatalf("%d records; update at %d", len(recs), updated.NatsSequence)
	}
	for i, rec := range recs {
		if rec.NatsSequence != want[i] {
			t.Errorf("record %d (%s): natsSequence %d, want %d (the state its transition wrote)", i, rec.TransitionID, rec.NatsSequence, want[i])
		}
	}
	seqs := map[uint64]bool{}
	for _, e := range eventsOf(events(t, s, wf.ID), tok.ID) {
		if e.EventType != wire.EventTokenUpdated {
			seqs[e.NatsSequence] = true
		}
	}
	for i, w := range want {
		if !seqs[w] {
			t.Errorf("record %d: no create or transition event at sequence %d", i, w)
		}
	}
}
