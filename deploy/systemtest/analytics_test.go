package systemtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/services/event"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// analyticsFlow has loops, a self-loop and two terminal places (done,
// rejected).
func analyticsFlow(id string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{ID: id, Name: "analytics", InitialPlace: "new",
		Places: []string{"new", "triage", "work", "review", "done", "rejected"},
		Transitions: []flow.Transition{
			{ID: "triage", FromPlaces: []string{"new"}, ToPlace: "triage"},
			{ID: "start", FromPlaces: []string{"triage"}, ToPlace: "work"},
			{ID: "reject", FromPlaces: []string{"triage", "new"}, ToPlace: "rejected"},
			{ID: "poke", FromPlaces: []string{"work"}, ToPlace: "work"},
			{ID: "submit", FromPlaces: []string{"work"}, ToPlace: "review"},
			{ID: "rework", FromPlaces: []string{"review"}, ToPlace: "work"},
			{ID: "approve", FromPlaces: []string{"review"}, ToPlace: "done"},
		}}
}

// activity creates tokens and fires random transitions on them from
// several clients at once; some tokens reach a terminal place.
func activity(t *testing.T, s *system, wf string, tokens, fires int, seed uint64) {
	t.Helper()
	c := ctx(t)
	def := analyticsFlow(wf)
	from := map[string][]string{}
	for _, tr := range def.Transitions {
		for _, p := range tr.FromPlaces {
			from[p] = append(from[p], tr.ID)
		}
	}
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := range tokens / 4 {
				tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf, Data: []byte(`{"n":` + fmt.Sprint(i) + `}`)}))
				mu.Lock()
				ids = append(ids, tok.ID)
				mu.Unlock()
			}
			for range fires / 4 {
				mu.Lock()
				id := ids[rnd.IntN(len(ids))]
				mu.Unlock()
				tok, err := s.c.GetToken(c, id)
				if err != nil {
					t.Error(err)
					return
				}
				opts := from[tok.Place]
				if len(opts) == 0 {
					if rnd.IntN(3) == 0 { // a terminal token's data changes: an event that moves nothing
						_, _ = s.c.UpdateToken(c, &wire.UpdateTokenRequest{TokenID: id, Data: []byte(`{"late":true}`)})
					}
					continue
				}
				tr := opts[rnd.IntN(len(opts))]
				if tr == "reject" && rnd.IntN(4) != 0 {
					tr = opts[0] // rejections are rarer
				}
				if _, err := s.c.Fire(c, &wire.FireRequest{TokenID: id, TransitionID: tr}); err != nil && !isRace(err) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// isRace is what a fire may get when another client moved the token
// first.
func isRace(err error) bool {
	return errors.Is(err, fail.ErrInvalidTransition) || errors.Is(err, fail.ErrConflict)
}

func isNotFound(err error) bool { return errors.Is(err, fail.ErrNotFound) }

// instances are extra event-service instances folding analytics
// concurrently (and some of them cut off mid-fold, as a crash would).
func foldConcurrently(t *testing.T, s *system, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range 3 {
		nc := testkit.Must(nats.Connect(s.stack.ClientURL()))
		svc := event.New(testkit.Must(jetstream.New(nc)), event.Options{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer nc.Close()
			rnd := rand.New(rand.NewPCG(uint64(i), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, cancel := context.WithTimeout(context.Background(), time.Duration(1+rnd.IntN(8))*time.Millisecond)
				if i == 0 { // one instance is never cut off
					c, cancel = context.WithTimeout(context.Background(), 10*time.Second)
				}
				_ = svc.CatchUpAll(c)
				cancel()
				if i > 0 {
					// A batch cut off mid-way stays open on the server
					// until its timeout (10 s), and a stream takes at most
					// 50 open batches: crash no more often than that.
					time.Sleep(time.Second)
				}
			}
		}()
	}
	return &wg
}

// expected is what the test computes from the full event history.
type expected struct {
	created, completed, transitions int64
	tokens                          map[string]int64
	entered                         map[string]int64
	stays                           map[string][]float64
	transit, completion             []float64
	minutes                         map[int64][4]int64 // events, created, transitions, completed
	doneSecs                        map[int64]float64
	events                          int64
	lastSeq                         uint64
}

func computeExpected(recs []wire.EventRecord, terminal map[string]bool) *expected {
	x := &expected{tokens: map[string]int64{}, entered: map[string]int64{}, stays: map[string][]float64{},
		minutes: map[int64][4]int64{}, doneSecs: map[int64]float64{}}
	type tok struct {
		place            string
		entered, created time.Time
	}
	live := map[string]*tok{}
	bump := func(t time.Time, i int) {
		m := x.minutes[t.Unix()/60]
		m[i]++
		x.minutes[t.Unix()/60] = m
	}
	enter := func(id, place string, t, created time.Time) {
		x.tokens[place]++
		x.entered[place]++
		live[id] = &tok{place, t, created}
		if terminal[place] {
			x.completed++
			d := t.Sub(created).Seconds()
			x.completion = append(x.completion, d)
			bump(t, 3)
			x.doneSecs[t.Unix()/60] += d
			delete(live, id)
		}
	}
	for _, r := range recs {
		ev := r.Event
		x.events++
		x.lastSeq = r.Sequence
		bump(ev.Timestamp, 0)
		switch ev.EventType {
		case wire.EventTokenCreated:
			x.created++
			bump(ev.Timestamp, 1)
			enter(ev.TokenID, ev.Place, ev.Timestamp, ev.Timestamp)
		case wire.EventTokenTransitioned:
			x.transitions++
			bump(ev.Timestamp, 2)
			tk := live[ev.TokenID]
			stay := ev.Timestamp.Sub(tk.entered).Seconds()
			x.stays[ev.FromPlace] = append(x.stays[ev.FromPlace], stay)
			x.transit = append(x.transit, stay)
			x.tokens[ev.FromPlace]--
			enter(ev.TokenID, ev.ToPlace, ev.Timestamp, tk.created)
		}
	}
	return x
}

// nearestRank is the exact q-quantile (rank ceil(q·n)) of xs.
func nearestRank(xs []float64, q float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[max(int(math.Ceil(q*float64(len(s))))-1, 0)]
}

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

// checkDurations compares reported durations with the exact ones: count
// and mean equal, p50/p95 the bucket of the exact nearest-rank value and
// within the documented ±9.1 % of it (or 1 ms).
func checkDurations(t *testing.T, what string, got wire.DurationStats, xs []float64) {
	t.Helper()
	if got.Count != int64(len(xs)) {
		t.Errorf("%s: count %d, want %d", what, got.Count, len(xs))
		return
	}
	if len(xs) == 0 {
		if got.P50 != nil || got.P95 != nil {
			t.Errorf("%s: percentiles without durations", what)
		}
		return
	}
	if !near(got.Average, mean(xs)) {
		t.Errorf("%s: average %v, want %v", what, got.Average, mean(xs))
	}
	for _, q := range []struct {
		p   *float64
		q   float64
		tag string
	}{{got.P50, 0.5, "p50"}, {got.P95, 0.95, "p95"}} {
		exact := nearestRank(xs, q.q)
		want := event.HistValue(event.HistBucket(exact))
		if q.p == nil || !near(*q.p, want) {
			t.Errorf("%s: %s %v, want %v (exact %v)", what, q.tag, q.p, want, exact)
			continue
		}
		if math.Abs(*q.p-exact) > 0.0905*exact+0.001 {
			t.Errorf("%s: %s %v is not within 9.05%% of %v", what, q.tag, *q.p, exact)
		}
	}
}

func allEvents(t *testing.T, s *system, wf string) []wire.EventRecord {
	t.Helper()
	var out []wire.EventRecord
	r := &wire.HistoryRequest{WorkflowID: wf, First: wire.MaxPageSize}
	for {
		p := testkit.Must(s.c.History(ctx(t), r))
		out = append(out, p.Items...)
		if p.Next == 0 {
			return out
		}
		r.AfterSequence = p.Next
	}
}

// TestAnalyticsMatchHistory: randomised activity on a workflow with
// loops, a self-loop and two terminal places, while three extra event
// service instances fold analytics at once (two of them cut off after a
// few milliseconds again and again, as crashes mid-fold would be); then
// the whole system restarts on its data, more activity follows, and
// analytics must equal what the test computes from the full event
// history: every event applied once, none missed.
func TestAnalyticsMatchHistory(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	c := ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, analyticsFlow("analytics_flow"))).ID

	stop := make(chan struct{})
	wg := foldConcurrently(t, s, stop)
	activity(t, s, wf, 40, 240, 1)
	mid := testkit.Must(s.c.Analytics(c, &wire.AnalyticsRequest{WorkflowID: wf}))
	close(stop)
	wg.Wait()
	s.stop()

	s = start(t, dir) // a new event service: only what the bucket holds remains
	if got := testkit.Must(s.c.Analytics(c, &wire.AnalyticsRequest{WorkflowID: wf})); got.LastSequence < mid.LastSequence || got.Events < mid.Events {
		t.Fatalf("after the restart analytics went back: %d events to %d", mid.Events, got.Events)
	}
	stop = make(chan struct{})
	wg = foldConcurrently(t, s, stop)
	activity(t, s, wf, 40, 240, 2)
	close(stop)
	wg.Wait()

	got := testkit.Must(s.c.Analytics(c, &wire.AnalyticsRequest{WorkflowID: wf, Window: "1h"}))
	recs := allEvents(t, s, wf)
	x := computeExpected(recs, map[string]bool{"done": true, "rejected": true})
	t.Logf("%d events, %d tokens created, %d transitions, %d completed", x.events, x.created, x.transitions, x.completed)
	if x.completed == 0 || x.transitions < 100 {
		t.Fatalf("the activity was too thin: %+v", x)
	}
	if got.Events != x.events || got.LastSequence != x.lastSeq || !got.CoversHistory {
		t.Errorf("events %d (last %d, covers %v), want %d (last %d)", got.Events, got.LastSequence, got.CoversHistory, x.events, x.lastSeq)
	}
	if got.TotalTokens != x.created || got.LiveTokens != x.created-x.completed || got.Transitions != x.transitions {
		t.Errorf("tokens %d live %d transitions %d, want %d %d %d", got.TotalTokens, got.LiveTokens, got.Transitions, x.created, x.created-x.completed, x.transitions)
	}
	perPlace := map[string]int64{}
	for _, pc := range got.TokensPerPlace {
		perPlace[pc.Place] = pc.Count
	}
	for p, n := range x.tokens {
		if perPlace[p] != n {
			t.Errorf("tokens in %s: %d, want %d", p, perPlace[p], n)
		}
	}
	// The stored tokens agree too (a brute-force count of the states).
	st := testkit.Must(s.c.Stats(c, &wire.StatsRequest{WorkflowID: wf}))
	for p, n := range st.TokensPerPlace {
		if perPlace[p] != int64(n) {
			t.Errorf("tokens in %s: analytics %d, stored states %d", p, perPlace[p], n)
		}
	}
	for _, pt := range got.Places {
		if pt.Entered != x.entered[pt.Place] {
			t.Errorf("%s entered %d times, want %d", pt.Place, pt.Entered, x.entered[pt.Place])
		}
		checkDurations(t, "time in "+pt.Place, pt.Stay, x.stays[pt.Place])
	}
	checkDurations(t, "completion", got.Completion, x.completion)
	if !near(got.AverageTransitionTime, mean(x.transit)) {
		t.Errorf("average transition time %v, want %v", got.AverageTransitionTime, mean(x.transit))
	}
	// Periods: every minute of the last hour, counted from the events.
	var tp wire.Throughput
	var done float64
	for _, p := range got.Periods {
		m := x.minutes[p.Start.Unix()/60]
		if p.Events != m[0] || p.TokensCreated != m[1] || p.Transitions != m[2] || p.TokensCompleted != m[3] {
			t.Errorf("period %s: %+v, want events/created/transitions/completed %v", p.Start, p, m)
		}
		if m[3] > 0 && !near(p.AverageCompletion, x.doneSecs[p.Start.Unix()/60]/float64(m[3])) {
			t.Errorf("period %s: average completion %v, want %v", p.Start, p.AverageCompletion, x.doneSecs[p.Start.Unix()/60]/float64(m[3]))
		}
		tp.TokensCreated += m[1]
		tp.Transitions += m[2]
		tp.TokensCompleted += m[3]
		done += x.doneSecs[p.Start.Unix()/60]
	}
	if len(got.Periods) != 60 || got.Throughput.Period != "last_1h" {
		t.Errorf("%d periods, throughput period %q", len(got.Periods), got.Throughput.Period)
	}
	if g := got.Throughput; g.TokensCreated != x.created || g.Transitions != x.transitions || g.TokensCompleted != x.completed ||
		!near(g.AverageProcessingSecs, done/float64(x.completed)) {
		t.Errorf("throughput %+v, want %d created, %d transitions, %d completed in %v s", g, x.created, x.transitions, x.completed, done/float64(x.completed))
	}
	st2 := testkit.Must(s.stackJS().Stream(c, "KV_CB_ANALYTICS"))
	agg := testkit.Must(st2.GetLastMsgForSubject(c, "$KV.CB_ANALYTICS.w."+wf))
	t.Logf("the aggregate is %d bytes", len(agg.Data))
	// A longer window counts by the hour, with the same totals.
	long := testkit.Must(s.c.Analytics(c, &wire.AnalyticsRequest{WorkflowID: wf, Window: "7d"}))
	if g := long.Throughput; len(long.Periods) != 168 || g.Period != "last_7d" || g.TokensCreated != x.created || g.Transitions != x.transitions || g.TokensCompleted != x.completed {
		t.Errorf("7d: %d periods, throughput %+v", len(long.Periods), g)
	}
}

// TestAnalyticsRequests: bad windows, absent workflows, and a workflow
// without tokens.
func TestAnalyticsRequests(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, analyticsFlow("quiet"))).ID
	for _, w := range []string{"0m", "x", "31d", "90s", "-1h"} {
		if _, err := s.c.Analytics(c, &wire.AnalyticsRequest{WorkflowID: wf, Window: w}); fmt.Sprint(err) == "<nil>" {
			t.Errorf("window %q accepted", w)
		}
	}
	if _, err := s.c.Analytics(c, &wire.AnalyticsRequest{WorkflowID: "absent"}); !isNotFound(err) {
		t.Errorf("absent workflow: %v", err)
	}
	got := testkit.Must(s.c.Analytics(c, &wire.AnalyticsRequest{WorkflowID: wf, Window: "90m"}))
	if got.TotalTokens != 0 || got.Events != 1 || !got.CoversHistory || len(got.Periods) != 90 || got.Throughput.Period != "last_90m" ||
		got.Completion.P50 != nil || got.Throughput.AverageProcessingTime != "0s" {
		t.Errorf("a workflow without tokens: %+v", got)
	}
}

// TestAnalyticsCountArchivedAndDeleted: an archived or deleted token
// leaves its place's count and the live tokens, once (a token archived
// and then deleted too); a completed token archived stays completed.
func TestAnalyticsCountArchivedAndDeleted(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	testkit.Must(s.c.CreateWorkflow(c, race("gone")))
	var ids []string
	for range 5 {
		ids = append(ids, testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "gone"})).ID)
	}
	testkit.Must(s.c.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: ids[0]}))
	testkit.Must(s.c.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: ids[1]}))
	testkit.Must(s.c.DeleteToken(c, &wire.DeleteTokenRequest{TokenID: ids[1]})) // archived, then deleted
	testkit.Must(s.c.DeleteToken(c, &wire.DeleteTokenRequest{TokenID: ids[2]}))
	a := testkit.Must(s.c.Analytics(c, &wire.AnalyticsRequest{WorkflowID: "gone"}))
	inA := int64(-1)
	for _, pc := range a.TokensPerPlace {
		if pc.Place == "a" {
			inA = pc.Count
		}
	}
	if a.TotalTokens != 5 || a.LiveTokens != 2 || inA != 2 {
		t.Fatalf("total %d, live %d, in a %d; want 5, 2, 2 (%+v)", a.TotalTokens, a.LiveTokens, inA, a.TokensPerPlace)
	}
}
