package processtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// cycle is a workflow whose tokens go round a → b → c → a, so the place a
// token is in names the one transition it can fire next.
func cycle(id string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{ID: id, Name: "cycle", Places: []string{"a", "b", "c"}, InitialPlace: "a",
		Transitions: []flow.Transition{
			{ID: "ab", FromPlaces: []string{"a"}, ToPlace: "b"},
			{ID: "bc", FromPlaces: []string{"b"}, ToPlace: "c"},
			{ID: "ca", FromPlaces: []string{"c"}, ToPlace: "a"},
		}}
}

var next = map[string]struct{ transition, to string }{"a": {"ab", "b"}, "b": {"bc", "c"}, "c": {"ca", "a"}}

// tokenRec is what the writers know of one token: the revision and place
// of its last acknowledged (or settled) write, and an unsettled fire.
type tokenRec struct {
	id, key      string
	rev          uint64
	place        string
	pendingRev   uint64 // a fire to this revision had an unknown outcome; 0: none
	pendingPlace string
}

// failure is a request that did not succeed.
type failure struct {
	op         string
	start, end time.Time
	err        error
}

// ledger records every acknowledged write of a load, and the writes whose
// outcome the client does not know.
type ledger struct {
	wf string

	mu             sync.Mutex
	tokens         map[string]*tokenRec
	pendingCreates map[string]bool // data key of creates with an unknown outcome
	failures       []failure
	settledFires   int // unknown-outcome fires that a read showed committed

	acked atomic.Int64 // acknowledged writes
}

func newLedger(wf string) *ledger {
	return &ledger{wf: wf, tokens: make(map[string]*tokenRec), pendingCreates: make(map[string]bool)}
}

// onError decides what a writer does after a failed request: return false
// to stop the writer.
type onError func(w *writer, op string, tok *tokenRec, err error) bool

// writer is one goroutine of a load: it creates tokens and fires them round
// the cycle. Each token belongs to one writer, so its revisions are known.
type writer struct {
	id      int
	c       *client.Client
	led     *ledger
	timeout time.Duration
	rnd     *rand.Rand
	own     []*tokenRec
	n       int
	t       testing.TB
}

// run writes until stop is set or onErr says to stop.
func (w *writer) run(stop *atomic.Bool, onErr onError) {
	for !stop.Load() {
		if len(w.own) < 6 || w.rnd.IntN(5) == 0 {
			if !w.create(onErr) {
				return
			}
			continue
		}
		if !w.fire(w.own[w.rnd.IntN(len(w.own))], onErr) {
			return
		}
	}
}

func (w *writer) create(onErr onError) bool {
	w.n++
	key := fmt.Sprintf("w%d-%d", w.id, w.n)
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	start := time.Now()
	tok, err := w.c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: w.led.wf, Data: keyData(key), TriggeredBy: "load"})
	if err != nil {
		w.led.fail("create", start, err)
		w.led.mu.Lock()
		w.led.pendingCreates[key] = true
		w.led.mu.Unlock()
		return onErr(w, "create", nil, err)
	}
	if tok.Revision != 1 || tok.Place != "a" {
		w.t.Errorf("create %s: rev %d in %s, want rev 1 in a", key, tok.Revision, tok.Place)
	}
	rec := &tokenRec{id: tok.ID, key: key, rev: 1, place: "a"}
	w.led.mu.Lock()
	w.led.tokens[tok.ID] = rec
	w.led.mu.Unlock()
	w.led.acked.Add(1)
	w.own = append(w.own, rec)
	return true
}

func (w *writer) fire(rec *tokenRec, onErr onError) bool {
	nx := next[rec.place]
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	start := time.Now()
	tok, err := w.c.Fire(ctx, &wire.FireRequest{TokenID: rec.id, TransitionID: nx.transition, TriggeredBy: "load"})
	if err != nil {
		w.led.fail("fire", start, err)
		w.led.mu.Lock()
		rec.pendingRev, rec.pendingPlace = rec.rev+1, nx.to
		w.led.mu.Unlock()
		return onErr(w, "fire", rec, err)
	}
	if tok.Revision != rec.rev+1 || tok.Place != nx.to {
		w.t.Errorf("fire %s on %s: rev %d in %s, want rev %d in %s", nx.transition, rec.id, tok.Revision, tok.Place, rec.rev+1, nx.to)
	}
	w.led.mu.Lock()
	rec.rev, rec.place = tok.Revision, tok.Place
	w.led.mu.Unlock()
	w.led.acked.Add(1)
	return true
}

func (l *ledger) fail(op string, start time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, failure{op: op, start: start, end: time.Now(), err: err})
}

// settle reads a token whose last fire had an unknown outcome and records
// what happened: the fire committed whole (revision and place moved on by
// one) or not at all. Anything else is an error.
func (l *ledger) settle(t testing.TB, tok *flow.Token, rec *tokenRec) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case rec.pendingRev == 0:
		return
	case tok.Revision == rec.pendingRev && tok.Place == rec.pendingPlace:
		rec.rev, rec.place = tok.Revision, tok.Place
		l.settledFires++
	case tok.Revision == rec.rev && tok.Place == rec.place:
	default:
		t.Errorf("token %s after an unknown-outcome fire: rev %d in %s; want rev %d in %s (not fired) or rev %d in %s (fired)",
			rec.id, tok.Revision, tok.Place, rec.rev, rec.place, rec.pendingRev, rec.pendingPlace)
	}
	rec.pendingRev, rec.pendingPlace = 0, ""
}

func keyData(key string) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"k":%q}`, key)) }

func keyOf(t *flow.Token) string {
	var d struct {
		K string `json:"k"`
	}
	_ = json.Unmarshal(t.Data, &d)
	return d.K
}

// typed reports whether err is one of the errors a client may get when a
// server or service dies under it.
func typed(err error) bool {
	return errors.Is(err, fail.ErrTimeout) || errors.Is(err, fail.ErrUnavailable)
}

// listAll pages through a workflow's tokens.
func listAll(ctx context.Context, t testing.TB, c *client.Client, wf string, place string) []*flow.Token {
	t.Helper()
	var out []*flow.Token
	for p := (wire.Page{First: 1000}); ; {
		var page *wire.TokenPage
		if place == "" {
			page = testkit.Must(c.ListTokens(ctx, wf, p))
		} else {
			page = testkit.Must(c.TokensInPlace(ctx, wf, place, p))
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		p.After = page.Next
	}
}

// streamEvents reads every event stored in a workflow's stream, in order.
func streamEvents(ctx context.Context, t testing.TB, js jetstream.JetStream, wf string) []wire.Event {
	t.Helper()
	var out []wire.Event
	for after := uint64(0); ; {
		it, err := jetstreamext.GetBatch(ctx, js, subjects.StreamName(wf), 1000,
			jetstreamext.GetBatchSeq(after+1), jetstreamext.GetBatchSubject(subjects.AllEvents(wf)))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for msg, err := range it {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			var ev wire.Event
			if err := json.Unmarshal(msg.Data, &ev); err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
			after = msg.Sequence
			n++
		}
		if n == 0 {
			return out
		}
	}
}

// verify checks the stored state of the ledger's workflow against what the
// writers were told, settling the writes whose outcome they do not know:
//   - every token listed was created by a writer (acknowledged, or a create
//     with an unknown outcome, found by its data key), and every
//     acknowledged token is listed;
//   - every token is at its last acknowledged revision, or one more when
//     its last fire had an unknown outcome (and then in that fire's place);
//   - every token is live in exactly its own place;
//   - each token's events are revisions 1..rev without a gap, created then
//     transitioned along the cycle, the last one naming the token's state
//     sequence, and its transition history has rev records.
//
// It returns how many writes were committed without being acknowledged.
func (l *ledger) verify(ctx context.Context, t testing.TB, c *client.Client, js jetstream.JetStream) (committedUnacked int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	listed := listAll(ctx, t, c, l.wf, "")
	byID := make(map[string]*flow.Token, len(listed))
	createdUnacked := 0
	for _, tok := range listed {
		if byID[tok.ID] != nil {
			t.Errorf("token %s listed twice", tok.ID)
		}
		byID[tok.ID] = tok
		if l.tokens[tok.ID] != nil {
			continue
		}
		key := keyOf(tok)
		if !l.pendingCreates[key] {
			t.Errorf("token %s (key %q) is stored but no writer created it", tok.ID, key)
			continue
		}
		delete(l.pendingCreates, key)
		createdUnacked++
		l.tokens[tok.ID] = &tokenRec{id: tok.ID, key: key, rev: 1, place: "a"}
	}
	firedUnacked := 0
	for id, rec := range l.tokens {
		got, err := c.GetToken(ctx, id)
		if err != nil {
			t.Errorf("token %s (acknowledged at rev %d) is lost: %v", id, rec.rev, err)
			continue
		}
		if lt := byID[id]; lt == nil || lt.Revision != got.Revision || lt.NatsSequence != got.NatsSequence {
			t.Errorf("token %s: get says rev %d, list says %+v", id, got.Revision, lt)
		}
		switch {
		case got.Revision == rec.rev && got.Place == rec.place:
		case rec.pendingRev != 0 && got.Revision == rec.pendingRev && got.Place == rec.pendingPlace:
			firedUnacked++
			rec.rev, rec.place = got.Revision, got.Place
		default:
			t.Errorf("token %s: stored rev %d in %s; acknowledged rev %d in %s (pending %d in %q)",
				id, got.Revision, got.Place, rec.rev, rec.place, rec.pendingRev, rec.pendingPlace)
		}
		rec.pendingRev, rec.pendingPlace = 0, ""
		if got.Records != int(got.Revision) {
			t.Errorf("token %s: %d transition records at rev %d", id, got.Records, got.Revision)
		}
		if keyOf(got) != rec.key {
			t.Errorf("token %s: data key %q, want %q", id, keyOf(got), rec.key)
		}
	}
	// Live in exactly one place, its own.
	seen := make(map[string]string)
	for _, place := range []string{"a", "b", "c"} {
		for _, tok := range listAll(ctx, t, c, l.wf, place) {
			if other, ok := seen[tok.ID]; ok {
				t.Errorf("token %s is live in %s and %s; its messages:\n%s", tok.ID, other, place, dumpToken(ctx, t, js, l.wf, tok.ID))
			}
			seen[tok.ID] = place
			if rec := l.tokens[tok.ID]; rec == nil || rec.place != place {
				t.Errorf("token %s listed in %s; its place is %+v", tok.ID, place, rec)
			}
		}
	}
	if len(seen) != len(l.tokens) {
		t.Errorf("%d tokens live in places, %d tokens known", len(seen), len(l.tokens))
	}
	// Events match revisions.
	evs := make(map[string][]wire.Event)
	for _, ev := range streamEvents(ctx, t, js, l.wf) {
		if ev.EventType == wire.EventWorkflowCreated {
			continue
		}
		evs[ev.TokenID] = append(evs[ev.TokenID], ev)
	}
	for id := range evs {
		if l.tokens[id] == nil {
			t.Errorf("%d events for token %s, which is not stored", len(evs[id]), id)
		}
	}
	for id, rec := range l.tokens {
		checkEvents(t, id, rec, evs[id], byID[id])
	}
	// The creates with an unknown outcome that are not stored did not
	// happen, and never will: the settled state is what was just read.
	clear(l.pendingCreates)
	return createdUnacked + firedUnacked
}

func checkEvents(t testing.TB, id string, rec *tokenRec, evs []wire.Event, tok *flow.Token) {
	t.Helper()
	if len(evs) != int(rec.rev) {
		t.Errorf("token %s at rev %d has %d events", id, rec.rev, len(evs))
		return
	}
	place := "a"
	for i, ev := range evs {
		want := wire.EventTokenTransitioned
		if i == 0 {
			want = wire.EventTokenCreated
		}
		if ev.Revision != uint64(i+1) || ev.EventType != want {
			t.Errorf("token %s event %d: %s rev %d, want %s rev %d", id, i, ev.EventType, ev.Revision, want, i+1)
			return
		}
		if i > 0 {
			nx := next[place]
			if ev.FromPlace != place || ev.ToPlace != nx.to || ev.TransitionID != nx.transition {
				t.Errorf("token %s event %d: %s %s→%s, want %s %s→%s", id, i, ev.TransitionID, ev.FromPlace, ev.ToPlace, nx.transition, place, nx.to)
				return
			}
			place = nx.to
		}
	}
	if place != rec.place {
		t.Errorf("token %s: events end in %s, token is in %s", id, place, rec.place)
	}
	if tok != nil && evs[len(evs)-1].NatsSequence != tok.NatsSequence {
		t.Errorf("token %s: last event names sequence %d, state is at %d", id, evs[len(evs)-1].NatsSequence, tok.NatsSequence)
	}
}

// kinds counts failures by error kind.
func kinds(fs []failure) map[string]int {
	m := make(map[string]int)
	for _, f := range fs {
		m[fail.KindOf(f.err).String()]++
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func fireReq(tokenID, transition string) *wire.FireRequest {
	return &wire.FireRequest{TokenID: tokenID, TransitionID: transition, TriggeredBy: "test"}
}

// dumpToken lists every message stored on a token's state subjects, for
// failure reports.
func dumpToken(ctx context.Context, t testing.TB, js jetstream.JetStream, wf, id string) string {
	t.Helper()
	it, err := jetstreamext.GetBatch(ctx, js, subjects.StreamName(wf), 1000, jetstreamext.GetBatchSubject(subjects.TokenAnyPlace(wf, id)))
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for msg, err := range it {
		if err != nil {
			fmt.Fprintf(&b, "  %v\n", err)
			break
		}
		var tok flow.Token
		_ = json.Unmarshal(msg.Data, &tok)
		fmt.Fprintf(&b, "  seq %d %s op=%q rev=%d ttl=%q rollup=%q data.rev=%d data.seq=%d\n", msg.Sequence, msg.Subject,
			msg.Header.Get(subjects.HeaderTokenOp), tok.Revision, msg.Header.Get(jetstream.MsgTTLHeader),
			msg.Header.Get(jetstream.MsgRollup), tok.Revision, tok.NatsSequence)
	}
	return b.String()
}
