package event

import (
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/cbnats/circuitbreaker/shared/wire"
)

// A workflow's analytics are an aggregate folded from its events, one at
// a time, in stream order: each event is applied exactly once (see
// analytics.go for how), and nothing here reads an event twice, so event
// retention may delete events once they are applied.
//
// Time in place needs, per live token, when it entered its place and when
// it was created: kept in one small entry per token (tokenEntry), deleted
// when the token reaches a terminal place. Durations are summarised in
// log-spaced histograms (hist) and counts per minute and per hour in
// bounded maps (the last minuteSlots minutes and hourSlots hours).

const (
	aggregateFormat = 1
	minuteSlots     = 6 * 60  // windows up to 6h are counted by the minute
	hourSlots       = 30 * 24 // longer ones (up to 30d) by the hour
	// histBase is the upper bound of a histogram's first bucket (1 ms,
	// in seconds); every later bucket is histRatio times wider than the
	// one before: 4 buckets per doubling.
	histBase        = 1e-3
	histPerDoubling = 4
)

// histRatio is the ratio of a bucket's bounds; a value reported for a
// bucket (its geometric middle) is within sqrt(histRatio)-1 ≈ 9.05 % of
// every duration the bucket holds (above histBase).
var histRatio = math.Pow(2, 1.0/histPerDoubling)

// hist counts durations (seconds) in log-spaced buckets: bucket 0 holds
// [0, 1 ms], bucket i > 0 holds (1 ms·r^(i-1), 1 ms·r^i]; 160 buckets
// reach past 30 years.
type hist struct {
	N   int64         `json:"n"`
	Sum float64       `json:"sum"`
	B   map[int]int64 `json:"b,omitempty"`
}

// HistBucket is the bucket of a duration in seconds.
func HistBucket(secs float64) int {
	if secs <= histBase {
		return 0
	}
	return int(math.Ceil(math.Log2(secs/histBase)*histPerDoubling - 1e-9))
}

// HistValue is what a bucket reports: its geometric middle (half of 1 ms
// for bucket 0).
func HistValue(b int) float64 {
	if b == 0 {
		return histBase / 2
	}
	return histBase * math.Pow(histRatio, float64(b)-0.5)
}

func (h *hist) add(secs float64) {
	if secs < 0 {
		secs = 0 // clocks of two writers may disagree by a little
	}
	if h.B == nil {
		h.B = map[int]int64{}
	}
	h.N++
	h.Sum += secs
	h.B[HistBucket(secs)]++
}

// quantile is the value of the bucket holding the nearest-rank q-th
// duration (rank ceil(q·N)), or nil without durations.
func (h *hist) quantile(q float64) *float64 {
	if h.N == 0 {
		return nil
	}
	rank := int64(math.Ceil(q * float64(h.N)))
	rank = max(rank, 1)
	keys := make([]int, 0, len(h.B))
	for k := range h.B {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var cum int64
	for _, k := range keys {
		if cum += h.B[k]; cum >= rank {
			v := HistValue(k)
			return &v
		}
	}
	return nil
}

func (h *hist) stats() wire.DurationStats {
	st := wire.DurationStats{Count: h.N, P50: h.quantile(0.5), P95: h.quantile(0.95)}
	if h.N > 0 {
		st.Average = h.Sum / float64(h.N)
	}
	return st
}

// counts are one minute's or hour's events.
type counts struct {
	Events      int64   `json:"e,omitempty"`
	Created     int64   `json:"c,omitempty"`
	Transitions int64   `json:"t,omitempty"`
	Completed   int64   `json:"d,omitempty"`
	DoneSecs    float64 `json:"ds,omitempty"` // completion times of Completed, summed
}

type placeAgg struct {
	Tokens  int64 `json:"tokens"`
	Entered int64 `json:"entered"`
	Stay    hist  `json:"stay"`
}

// aggregate is a workflow's analytics as stored.
type aggregate struct {
	Format  int    `json:"format"`
	LastSeq uint64 `json:"lastSeq"` // the last event applied (its stream sequence)
	Events  int64  `json:"events"`
	// Since is the time of the first event applied; Covers says whether
	// that was the workflow's workflow_created event (else older events
	// had been deleted by retention before analytics began).
	Since       time.Time            `json:"since"`
	Covers      bool                 `json:"covers"`
	Created     int64                `json:"created"`
	Completed   int64                `json:"completed"`
	Removed     int64                `json:"removed,omitempty"` // archived or deleted before they completed
	Transitions int64                `json:"transitions"`
	Transit     hist                 `json:"transit"` // every stay that ended in a transition
	Completion  hist                 `json:"completion"`
	Places      map[string]*placeAgg `json:"places"`
	Minutes     map[int64]*counts    `json:"minutes"` // unix minute → counts
	Hours       map[int64]*counts    `json:"hours"`   // unix hour → counts
}

func newAggregate() *aggregate {
	return &aggregate{Format: aggregateFormat, Places: map[string]*placeAgg{}, Minutes: map[int64]*counts{}, Hours: map[int64]*counts{}}
}

// tokenEntry is a live token's entry: its place, when it entered it and
// when it was created (unix nanoseconds; 0 when not known).
type tokenEntry struct {
	Place   string `json:"p"`
	Entered int64  `json:"e"`
	Created int64  `json:"c"`
}

func (a *aggregate) place(p string) *placeAgg {
	pa := a.Places[p]
	if pa == nil {
		pa = &placeAgg{}
		a.Places[p] = pa
	}
	return pa
}

// each calls f with the minute's and the hour's counts of t.
func (a *aggregate) each(t time.Time, f func(*counts)) {
	for _, c := range []struct {
		m    map[int64]*counts
		unit int64
	}{{a.Minutes, 60}, {a.Hours, 3600}} {
		k := t.Unix() / c.unit
		if t.Unix() < 0 {
			k = (t.Unix() - c.unit + 1) / c.unit
		}
		x := c.m[k]
		if x == nil {
			x = &counts{}
			c.m[k] = x
		}
		f(x)
	}
}

// prune drops the counts older than the slots kept.
func (a *aggregate) prune() {
	for _, c := range []struct {
		m     map[int64]*counts
		slots int64
	}{{a.Minutes, minuteSlots}, {a.Hours, hourSlots}} {
		newest := int64(math.MinInt64)
		for k := range c.m {
			newest = max(newest, k)
		}
		for k := range c.m {
			if k <= newest-c.slots {
				delete(c.m, k)
			}
		}
	}
}

// apply folds one event in. tokens holds the entries of the event's
// token (nil: none, or deleted); touched collects the tokens whose entry
// changed. terminal are the workflow's terminal places.
func (a *aggregate) apply(rec wire.EventRecord, tokens map[string]*tokenEntry, touched map[string]bool, terminal map[string]bool) {
	ev := rec.Event
	t := ev.Timestamp
	if t.IsZero() {
		t = rec.Time
	}
	if a.Events == 0 {
		a.Since, a.Covers = t, ev.EventType == wire.EventWorkflowCreated
	}
	a.Events++
	a.LastSeq = rec.Sequence
	a.each(t, func(c *counts) { c.Events++ })
	id := ev.TokenID
	switch ev.EventType {
	case wire.EventTokenCreated:
		a.Created++
		a.each(t, func(c *counts) { c.Created++ })
		a.move("", ev.Place)
		a.enter(id, ev.Place, t, t.UnixNano(), tokens, touched, terminal)
	case wire.EventTokenTransitioned:
		a.Transitions++
		a.each(t, func(c *counts) { c.Transitions++ })
		created := int64(0)
		if e := tokens[id]; e != nil {
			created = e.Created
			if e.Place == ev.FromPlace {
				stay := t.Sub(time.Unix(0, e.Entered)).Seconds()
				a.place(ev.FromPlace).Stay.add(stay)
				a.Transit.add(stay)
			}
		}
		a.move(ev.FromPlace, ev.ToPlace)
		a.enter(id, ev.ToPlace, t, created, tokens, touched, terminal)
	case wire.EventTokenMigrated:
		if ev.FromPlace == ev.ToPlace {
			return
		}
		created := int64(0)
		if e := tokens[id]; e != nil {
			created = e.Created
		}
		a.move(ev.FromPlace, ev.ToPlace)
		a.enter(id, ev.ToPlace, t, created, tokens, touched, terminal)
	case wire.EventTokenArchived, wire.EventTokenDeleted:
		a.remove(id, ev, tokens, touched)
	}
}

// remove takes an archived or deleted token out of the counts: out of its
// place (once: a deleted token archived before is out already), and out
// of the live tokens unless it had completed. An archived token keeps an
// entry without a place until it is deleted.
func (a *aggregate) remove(id string, ev wire.Event, tokens map[string]*tokenEntry, touched map[string]bool) {
	e := tokens[id]
	if e != nil && e.Place == "" { // archived before
		if ev.EventType == wire.EventTokenDeleted {
			tokens[id], touched[id] = nil, true
		}
		return
	}
	if pa := a.place(ev.Place); pa.Tokens > 0 {
		pa.Tokens--
	}
	if e != nil { // live, not completed
		a.Removed++
	}
	touched[id] = true
	tokens[id] = nil
	if ev.EventType == wire.EventTokenArchived {
		tokens[id] = &tokenEntry{}
	}
}

// move counts a token out of from (if any) and into to.
func (a *aggregate) move(from, to string) {
	if from != "" {
		if pa := a.place(from); pa.Tokens > 0 {
			pa.Tokens--
		}
	}
	pa := a.place(to)
	pa.Tokens++
	pa.Entered++
}

// enter records that a token entered place at t; a terminal place
// completes it (its entry is deleted: nothing follows a completion but
// updates and migrations).
func (a *aggregate) enter(id, place string, t time.Time, created int64, tokens map[string]*tokenEntry, touched map[string]bool, terminal map[string]bool) {
	touched[id] = true
	if !terminal[place] {
		tokens[id] = &tokenEntry{Place: place, Entered: t.UnixNano(), Created: created}
		return
	}
	tokens[id] = nil
	a.Completed++
	if created == 0 {
		a.each(t, func(c *counts) { c.Completed++ })
		return // created before analytics began: its time is not known
	}
	d := max(t.Sub(time.Unix(0, created)).Seconds(), 0)
	a.Completion.add(d)
	a.each(t, func(c *counts) { c.Completed++; c.DoneSecs += d })
}

// report is what the aggregate says about the window ending now.
func (a *aggregate) report(wf string, window time.Duration, now time.Time) *wire.Analytics {
	out := &wire.Analytics{WorkflowID: wf, TotalTokens: a.Created, LiveTokens: a.Created - a.Completed - a.Removed,
		Transitions: a.Transitions, AverageTransitionTime: a.Transit.stats().Average,
		Completion: a.Completion.stats(), Events: a.Events, LastSequence: a.LastSeq, CoversHistory: a.Covers, Since: a.Since,
		TokensPerPlace: []wire.PlaceCount{}, Places: []wire.PlaceTime{}, Periods: []wire.Period{}}
	names := make([]string, 0, len(a.Places))
	for p := range a.Places {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		pa := a.Places[p]
		out.TokensPerPlace = append(out.TokensPerPlace, wire.PlaceCount{Place: p, Count: pa.Tokens})
		out.Places = append(out.Places, wire.PlaceTime{Place: p, Tokens: pa.Tokens, Entered: pa.Entered, Stay: pa.Stay.stats()})
	}
	unit, m := int64(60), a.Minutes
	if window > minuteSlots*time.Minute {
		unit, m = 3600, a.Hours
	}
	n := (int64(window.Seconds()) + unit - 1) / unit
	last := now.Unix() / unit
	tp := &out.Throughput
	var done float64
	for k := last - n + 1; k <= last; k++ {
		p := wire.Period{Start: time.Unix(k*unit, 0).UTC(), Seconds: unit}
		if c := m[k]; c != nil {
			p.Events, p.TokensCreated, p.Transitions, p.TokensCompleted = c.Events, c.Created, c.Transitions, c.Completed
			if c.Completed > 0 {
				p.AverageCompletion = c.DoneSecs / float64(c.Completed)
			}
			tp.TokensCreated += c.Created
			tp.Transitions += c.Transitions
			tp.TokensCompleted += c.Completed
			done += c.DoneSecs
		}
		out.Periods = append(out.Periods, p)
	}
	tp.Period = "last_" + windowName(window)
	tp.WindowSeconds = int64(window.Seconds())
	tp.TransitionsPerMinute = float64(tp.Transitions) / window.Minutes()
	if tp.TokensCompleted > 0 {
		tp.AverageProcessingSecs = done / float64(tp.TokensCompleted)
	}
	tp.AverageProcessingTime = wire.FormatDuration(time.Duration(tp.AverageProcessingSecs * float64(time.Second)))
	return out
}

// windowName is a window as the guide names periods: "24h", "7d", "90m".
func windowName(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d > 24*time.Hour:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
}
