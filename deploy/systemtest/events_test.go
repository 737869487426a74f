package systemtest

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// seedEvents creates a workflow with n tokens fired once each: 1 + 2n events.
func seedEvents(t *testing.T, s *system, wf string, n int) []string {
	t.Helper()
	c := ctx(t)
	testkit.Must(s.c.CreateWorkflow(c, race(wf)))
	var ids []string
	for range n {
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf, TriggeredBy: "seed"}))
		testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "to_b"}))
		ids = append(ids, tok.ID)
	}
	return ids
}

func TestHistoryPaginationAndFilters(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	ids := seedEvents(t, s, "hist", 10)
	var all []wire.EventRecord
	for after := uint64(0); ; {
		p := testkit.Must(s.c.History(c, &wire.HistoryRequest{WorkflowID: "hist", AfterSequence: after, First: 4}))
		all = append(all, p.Items...)
		if p.Next == 0 {
			break
		}
		after = p.Next
	}
	if len(all) != 21 || all[0].Event.EventType != wire.EventWorkflowCreated {
		t.Fatalf("%d events, first %+v", len(all), all[0].Event)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Sequence <= all[i-1].Sequence {
			t.Fatalf("events out of order at %d", i)
		}
	}
	tok := testkit.Must(s.c.History(c, &wire.HistoryRequest{WorkflowID: "hist", TokenID: ids[3]}))
	if len(tok.Items) != 2 || tok.Items[0].Event.EventType != wire.EventTokenCreated || tok.Items[1].Event.ToPlace != "b" {
		t.Fatalf("token history = %+v", tok.Items)
	}
	fired := testkit.Must(s.c.History(c, &wire.HistoryRequest{WorkflowID: "hist", EventTypes: []string{wire.EventTokenTransitioned}}))
	if len(fired.Items) != 10 {
		t.Fatalf("%d transition events, want 10", len(fired.Items))
	}
	replay := testkit.Must(s.c.Replay(c, &wire.HistoryRequest{WorkflowID: "hist", AfterSequence: all[10].Sequence}))
	if len(replay.Items) != 10 || replay.Items[0].Sequence != all[11].Sequence {
		t.Fatalf("replay after %d gave %d events", all[10].Sequence, len(replay.Items))
	}
	since := testkit.Must(s.c.Replay(c, &wire.HistoryRequest{WorkflowID: "hist", Since: all[15].Time}))
	if len(since.Items) < 6 || since.Items[0].Time.Before(all[15].Time) {
		t.Fatalf("replay since gave %d events", len(since.Items))
	}
	if _, err := s.c.Replay(c, &wire.HistoryRequest{WorkflowID: "hist"}); !errors.Is(err, fail.ErrBadInput) {
		t.Fatalf("replay without a start: %v", err)
	}
	st := testkit.Must(s.c.Stats(c, &wire.StatsRequest{WorkflowID: "hist"}))
	if st.Tokens != 10 || st.TokensPerPlace["b"] != 10 || st.EventsPerType[wire.EventTokenTransitioned] != 10 || st.TransitionsInWindow != 10 {
		t.Fatalf("stats = %+v", st)
	}
}

// drain reads n events from a subscription, acking each.
func drain(t *testing.T, sub *client.Subscription, n int) []wire.EventRecord {
	t.Helper()
	var out []wire.EventRecord
	for range n {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d, err := sub.Next(c)
		cancel()
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		if err := d.Ack(ctx(t)); err != nil {
			t.Fatal(err)
		}
		out = append(out, d.Record)
	}
	return out
}

func seqs(recs []wire.EventRecord) []uint64 {
	var out []uint64
	for _, r := range recs {
		out = append(out, r.Sequence)
	}
	return out
}

// TestDurableSubscriptions: two named subscribers each get every event;
// one that disconnects resumes after its last ack with nothing lost or
// repeated; a short wait for more gives up without losing the next event.
func TestDurableSubscriptions(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	seedEvents(t, s, "subs", 3) // 7 events before anyone subscribes
	a := testkit.Must(s.c.SubscribeTokenEvents(c, &wire.SubscribeRequest{WorkflowID: "subs", Name: "billing", Deliver: wire.DeliverAll}))
	b := testkit.Must(s.c.SubscribeTokenEvents(c, &wire.SubscribeRequest{WorkflowID: "subs", Name: "audit", Deliver: wire.DeliverAll}))
	gotA := drain(t, a, 4)
	a.Stop() // billing goes away after 4 events
	seedMore := func() {
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "subs"}))
		testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "to_c"}))
	}
	seedMore() // 9 events
	gotB := drain(t, b, 9)
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if _, err := b.Next(short); !errors.Is(err, fail.ErrTimeout) {
		t.Fatalf("Next with nothing pending: %v", err)
	}
	cancel()
	seedMore() // 11 events
	gotB = append(gotB, drain(t, b, 2)...)
	a = testkit.Must(s.c.SubscribeTokenEvents(c, &wire.SubscribeRequest{WorkflowID: "subs", Name: "billing"}))
	gotA = append(gotA, drain(t, a, 7)...)
	// Redelivered events may come before newer ones (JetStream redelivery),
	// so compare the sets: no loss, no duplicate.
	sa, sb := seqs(gotA), seqs(gotB)
	slices.Sort(sa)
	if !slices.Equal(sa, sb) || len(slices.Compact(sa)) != 11 {
		t.Fatalf("billing got %v\naudit got %v", seqs(gotA), seqs(gotB))
	}
	list := testkit.Must(s.c.Subscriptions(c, "subs"))
	if len(list.Items) != 2 || list.Items[0].AckPending != 0 {
		t.Fatalf("subscriptions = %+v", list.Items)
	}
	a.Stop()
	b.Stop()
	testkit.Must(0, s.c.DeleteSubscription(c, "subs", "billing"))
	if err := s.c.DeleteSubscription(c, "subs", "billing"); !errors.Is(err, fail.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestWatchCleansUp: watchers read live events and leave no consumer
// behind when they go away.
func TestWatchCleansUp(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	ids := seedEvents(t, s, "watch", 1)
	wctx, stop := context.WithCancel(c)
	events := testkit.Must(s.c.WatchEvents(wctx, "watch", 0, []string{wire.EventTokenTransitioned}))
	tokens := testkit.Must(s.c.WatchToken(wctx, ids[0]))
	if first := <-tokens; first.Place != "b" || first.Revision != 2 {
		t.Fatalf("first token state = %s rev %d", first.Place, first.Revision)
	}
	testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: ids[0], TransitionID: "tick"}))
	if ev := <-events; ev.Event.TokenID != ids[0] || ev.Event.ToPlace != "a" {
		t.Fatalf("event = %+v", ev.Event)
	}
	if next := <-tokens; next.Place != "a" || next.Revision != 3 {
		t.Fatalf("next token state = %s rev %d", next.Place, next.Revision)
	}
	js := testkit.Must(jetstream.New(s.nc))
	st := testkit.Must(js.Stream(c, subjects.StreamName("watch")))
	if n := testkit.Must(st.Info(c)).State.Consumers; n != 2 {
		t.Fatalf("%d consumers while watching, want 2", n)
	}
	stop()
	testkit.Poll(t, 5*time.Second, "condition", func() bool { return testkit.Must(st.Info(c)).State.Consumers == 0 })
}

// TestEventCountRetention: the per-subject event limit drops old events,
// never state.
// TestEventCountRetention: the event service keeps the newest
// --event-max-msgs events of each event subject; token state and token
// history (a message per change, never an event) are untouched.
func TestEventCountRetention(t *testing.T) {
	s := startWith(t, "", func(st *storeOpts) { st.EventMaxMsgs, st.EventTrimEvery = 3, time.Second })
	c := ctx(t)
	ids := seedEvents(t, s, "keep3", 5)
	for range 5 {
		testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: ids[0], TransitionID: "tick"}))
		testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: ids[0], TransitionID: "to_b"}))
	}
	testkit.Poll(t, 10*time.Second, "events trimmed to 3 per event subject", func() bool {
		return len(testkit.Must(s.c.History(c, &wire.HistoryRequest{WorkflowID: "keep3"})).Items) == 6
	})
	hist := testkit.Must(s.c.AllHistory(c, ids[0]))
	if tok := testkit.Must(s.c.GetToken(c, ids[0])); tok.Revision != 12 || len(hist) != 12 || tok.Records != 12 || tok.Place != "b" {
		t.Fatalf("token rev %d, %d of %d history entries, in %s", tok.Revision, len(hist), tok.Records, tok.Place)
	}
	if n := len(testkit.Must(s.c.TokensInPlace(c, "keep3", "b", wire.Page{})).Items); n != 5 {
		t.Fatalf("%d tokens in b, want 5", n)
	}
	testkit.Must(s.c.GetWorkflow(c, "keep3"))
}

func TestEventServiceUnknownWorkflow(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	for name, call := range map[string]func() error{
		"history": func() error { _, err := s.c.History(c, &wire.HistoryRequest{WorkflowID: "nope"}); return err },
		"stats":   func() error { _, err := s.c.Stats(c, &wire.StatsRequest{WorkflowID: "nope"}); return err },
		"subscribe": func() error {
			_, err := s.c.CreateSubscription(c, &wire.SubscribeRequest{WorkflowID: "nope", Name: "x"})
			return err
		},
	} {
		if err := call(); !errors.Is(err, fail.ErrNotFound) || !strings.Contains(err.Error(), "Workflow not found: nope") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestEventByteRetention: the event service trims the oldest events beyond
// the byte budget, never state.
func TestEventByteRetention(t *testing.T) {
	s := startWith(t, "", func(st *storeOpts) { st.EventMaxBytes, st.EventTrimEvery = 2000, time.Second })
	c := ctx(t)
	ids := seedEvents(t, s, "bytes", 10) // 21 events of ~200–300 bytes
	var evs []wire.EventRecord
	size := 0
	testkit.Poll(t, 15*time.Second, "the events trimmed to the budget", func() bool { // a trim may be under way
		evs = testkit.Must(s.c.History(c, &wire.HistoryRequest{WorkflowID: "bytes"})).Items
		size = 0
		for _, e := range evs {
			b, _ := json.Marshal(e.Event)
			size += len(b) + len(e.Subject)
		}
		return len(evs) < 21 && size <= 2000+400
	})
	if len(evs) == 0 || evs[len(evs)-1].Event.TokenID != ids[9] {
		t.Fatalf("%d events (%d bytes) kept; the newest must stay", len(evs), size)
	}
	for _, id := range ids {
		if tok := testkit.Must(s.c.GetToken(c, id)); tok.Place != "b" {
			t.Fatalf("token %s in %s", id, tok.Place)
		}
	}
	if n := len(testkit.Must(s.c.TokensInPlace(c, "bytes", "b", wire.Page{})).Items); n != 10 {
		t.Fatalf("%d tokens in b", n)
	}
	testkit.Must(s.c.GetWorkflow(c, "bytes"))
}
