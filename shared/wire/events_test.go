package wire

import (
	"math"
	"testing"
	"time"
)

// TestHistoryBounds: cursors and times at or beyond what JetStream can
// store select what they mean (everything or nothing), without overflow.
func TestHistoryBounds(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name      string
		r         HistoryRequest
		exhausted bool
		fromTime  bool
	}{
		{"nothing given", HistoryRequest{}, false, false},
		{"last sequence", HistoryRequest{AfterSequence: math.MaxUint64}, true, false},
		{"since in 2262", HistoryRequest{Since: at("2262-04-12T00:00:00Z")}, true, false},
		{"since in 9999", HistoryRequest{Since: at("9999-12-31T00:00:00Z")}, true, false},
		{"since before 1970", HistoryRequest{Since: at("1000-01-01T00:00:00Z")}, false, false},
		{"since year 1", HistoryRequest{Since: ClampEventTime(time.Time{})}, false, false},
		{"since now", HistoryRequest{Since: at("2025-01-01T00:00:00Z")}, false, true},
		{"until before 1970", HistoryRequest{Until: at("1000-01-01T00:00:00Z")}, true, false},
		{"until year 1", HistoryRequest{Until: ClampEventTime(time.Time{})}, true, false},
		{"until in 9999", HistoryRequest{Until: at("9999-01-01T00:00:00Z")}, false, false},
	} {
		r := tc.r
		r.Normalize()
		_, fromTime := r.StartTime()
		if r.Exhausted() != tc.exhausted || (!tc.exhausted && fromTime != tc.fromTime) {
			t.Errorf("%s: exhausted %v, from time %v; want %v, %v", tc.name, r.Exhausted(), fromTime, tc.exhausted, tc.fromTime)
		}
		if t0, ok := r.StartTime(); ok && (t0.UnixNano() < 0 || t0.Year() > 2262) {
			t.Errorf("%s: start time %v overflows", tc.name, t0)
		}
	}
	if ClampEventTime(time.Time{}).IsZero() {
		t.Fatal("the zero time stays zero: it would read as absent on the wire")
	}
}

// TestHistorySinceFilters: since filters the events after a sequence too.
func TestHistorySinceFilters(t *testing.T) {
	now := time.Now()
	r := HistoryRequest{AfterSequence: 5, Since: now}
	if r.Matches(EventRecord{Time: now.Add(-time.Second)}) || !r.Matches(EventRecord{Time: now}) {
		t.Fatal("since does not filter")
	}
}
