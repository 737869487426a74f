package flow

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Timers: a transition with After (an ISO 8601 duration, counted from the
// moment the token entered the from-place) or At (a path into the token's
// data or metadata holding an RFC 3339 time) fires by itself when it falls
// due and the token is still in that place, with the same entry: a token
// that left and came back starts a new timer. Entering a place is a
// create or a fire (a self-loop re-enters); an update or a migration does
// not. The token service schedules and fires timers (services/token); this
// file decides what a token's timers are.

// Timer is one pending timer of a token: transition TransitionID falls
// due at DueAt. Revision is the token revision of the entry it belongs to
// (EnteredRevision), which makes a timer of an earlier entry recognisably
// stale.
type Timer struct {
	TransitionID string    `json:"transitionId"`
	DueAt        time.Time `json:"dueAt"`
	Revision     uint64    `json:"revision"`
}

// HasTimer reports whether t is a timer transition.
func (t Transition) HasTimer() bool { return t.After != "" || t.At != "" }

// HasTimers reports whether any transition of d is a timer.
func (d *Definition) HasTimers() bool {
	for _, t := range d.Transitions {
		if t.HasTimer() {
			return true
		}
	}
	return false
}

// MaxTimerDelay bounds After: a duration beyond it is refused.
const MaxTimerDelay = 100 * 365 * 24 * time.Hour

// isoDuration matches an ISO 8601 duration: PnYnMnWnDTnHnMnS, each part
// optional, seconds may have a fraction.
var isoDuration = regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$`)

// Duration is a parsed ISO 8601 duration: calendar parts and a clock part.
type Duration struct {
	Years, Months, Days int
	Clock               time.Duration
}

// ParseDuration parses an ISO 8601 duration such as "PT48H", "P1DT12H",
// "P2W" or "PT0.5S".
func ParseDuration(s string) (Duration, error) {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return Duration{}, fmt.Errorf("'%s' is not an ISO 8601 duration (e.g. PT48H, P1DT12H, PT30S)", s)
	}
	n := func(i int) int {
		v, _ := strconv.Atoi(m[i])
		return v
	}
	d := Duration{Years: n(1), Months: n(2), Days: n(3)*7 + n(4)}
	if d.Years > 100 || d.Months > 1200 || d.Days > 36500 || n(5) > 876000 || n(6) > 52560000 {
		return Duration{}, fmt.Errorf("duration '%s' is too long (at most 100 years)", s)
	}
	d.Clock = time.Duration(n(5))*time.Hour + time.Duration(n(6))*time.Minute
	if m[7] != "" {
		sec, err := strconv.ParseFloat(strings.Replace(m[7], ",", ".", 1), 64)
		if err != nil || sec > MaxTimerDelay.Seconds() {
			return Duration{}, fmt.Errorf("duration '%s' has bad seconds", s)
		}
		d.Clock += time.Duration(sec * float64(time.Second))
	}
	return d, nil
}

// After returns from plus d.
func (d Duration) After(from time.Time) time.Time {
	return from.AddDate(d.Years, d.Months, d.Days).Add(d.Clock)
}

// checkTimer checks a transition's After or At.
func checkTimer(t Transition) string {
	switch {
	case t.After != "" && t.At != "":
		return fmt.Sprintf("Transition '%s' has both after and at: give one", t.ID)
	case t.After != "":
		d, err := ParseDuration(t.After)
		if err != nil {
			return fmt.Sprintf("Transition '%s': %v", t.ID, err)
		}
		if due := d.After(time.Unix(0, 0)); due.Sub(time.Unix(0, 0)) > MaxTimerDelay {
			return fmt.Sprintf("Transition '%s': duration '%s' is too long (at most 100 years)", t.ID, t.After)
		}
	case t.At != "":
		if !validPath(t.At) {
			return fmt.Sprintf("Transition '%s': at '%s' is not a path: dotted names, optionally starting with data. or metadata.", t.ID, t.At)
		}
	}
	return ""
}

// validPath reports whether p is a dotted path of names (at most 256 bytes).
func validPath(p string) bool {
	if len(p) == 0 || len(p) > 256 {
		return false
	}
	for _, part := range strings.Split(p, ".") {
		if part == "" || strings.ContainsAny(part, " \t\n*>") {
			return false
		}
	}
	return true
}

// Enter records that t entered its place with the change to its current
// revision, at now.
func (t *Token) Enter(now time.Time) {
	t.EnteredAt, t.EnteredRevision = now, t.Revision
}

// entry returns when and at which revision t entered its place. A token
// stored before entries were recorded counts from its creation (revision
// 1) or else from its last change.
func (t *Token) entry() (time.Time, uint64) {
	switch {
	case t.EnteredRevision > 0 || !t.EnteredAt.IsZero():
		return t.EnteredAt, t.EnteredRevision
	case t.Revision <= 1:
		return t.CreatedAt, 0
	default:
		return t.UpdatedAt, 0
	}
}

// Timers returns the timers t has in its place under m's definition,
// earliest first: one per timer transition that can leave the place and
// whose due time is known (an At path that is missing or not an RFC 3339
// time sets no timer).
func (m *Machine) Timers(t *Token) []Timer {
	var out []Timer
	var docs map[string]map[string]any // decoded lazily
	enteredAt, rev := t.entry()
	for _, tr := range m.Def.Transitions {
		if !tr.HasTimer() || !slices.Contains(tr.FromPlaces, t.Place) {
			continue
		}
		var due time.Time
		if tr.After != "" {
			d, err := ParseDuration(tr.After)
			if err != nil {
				continue
			}
			due = d.After(enteredAt)
		} else {
			if docs == nil {
				docs = map[string]map[string]any{"metadata": decodeObject(t.Metadata), "data": decodeObject(t.Data)}
			}
			var ok bool
			if due, ok = lookupTime(docs, tr.At); !ok {
				continue
			}
		}
		out = append(out, Timer{TransitionID: tr.ID, DueAt: due.UTC(), Revision: rev})
	}
	slices.SortStableFunc(out, func(a, b Timer) int { return a.DueAt.Compare(b.DueAt) })
	return out
}

// TimerOf returns t's timer for transition id under m, if it has one.
func (m *Machine) TimerOf(t *Token, id string) (Timer, bool) {
	for _, tm := range m.Timers(t) {
		if tm.TransitionID == id {
			return tm, true
		}
	}
	return Timer{}, false
}

func decodeObject(raw json.RawMessage) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

// lookupTime reads an RFC 3339 time at path: "data.x", "metadata.x", or
// "x" (metadata first, then data, as guards look fields up).
func lookupTime(docs map[string]map[string]any, path string) (time.Time, bool) {
	parts := strings.Split(path, ".")
	roots := []string{"metadata", "data"}
	if len(parts) > 1 && (parts[0] == "data" || parts[0] == "metadata") {
		roots, parts = []string{parts[0]}, parts[1:]
	}
	for _, r := range roots {
		var v any = docs[r]
		for _, p := range parts {
			obj, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = obj[p]
		}
		if s, ok := v.(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// markTimers sets TimerDueAt on the evaluations of the transitions t has
// a timer for.
func (m *Machine) markTimers(t *Token, evals []Evaluation) {
	timers := m.Timers(t)
	for i := range evals {
		for _, tm := range timers {
			if tm.TransitionID == evals[i].TransitionID && evals[i].PlaceCompatible {
				due := tm.DueAt
				evals[i].TimerDueAt = &due
			}
		}
	}
}

// MaxTimersPerPlace bounds the timer transitions that can leave one
// place: each writes its schedule and event in the batch of the change
// that enters the place.
const MaxTimersPerPlace = 32

func (d *Definition) checkTimers() string {
	n := map[string]int{}
	for _, t := range d.Transitions {
		if !t.HasTimer() {
			continue
		}
		for _, p := range t.FromPlaces {
			if n[p]++; n[p] > MaxTimersPerPlace {
				return fmt.Sprintf("place '%s' has more than %d timer transitions", p, MaxTimersPerPlace)
			}
		}
	}
	return ""
}
