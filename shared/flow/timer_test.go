package flow

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	base := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"PT48H":    base.Add(48 * time.Hour),
		"PT2S":     base.Add(2 * time.Second),
		"PT0.5S":   base.Add(500 * time.Millisecond),
		"P1DT12H":  base.Add(36 * time.Hour),
		"P2W":      base.AddDate(0, 0, 14),
		"P1M":      base.AddDate(0, 1, 0),
		"PT1H30M":  base.Add(90 * time.Minute),
		"P1Y2M3D":  base.AddDate(1, 2, 3),
		"PT0S":     base,
		"PT1,5S":   base.Add(1500 * time.Millisecond),
		"P0DT0H5M": base.Add(5 * time.Minute),
	} {
		d, err := ParseDuration(in)
		if err != nil || !d.After(base).Equal(want) {
			t.Errorf("%s: %v, %v; want %v", in, d.After(base), err, want)
		}
	}
	for _, bad := range []string{"", "P", "PT", "48H", "PT-1S", "P1.5D", "PT1H2", "P1000Y", "pt1h", "PT1S "} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func timerMachine(t *testing.T) *Machine {
	t.Helper()
	m, err := NewMachine(&Definition{ID: "w", Name: "w", Places: []string{"a", "b", "c"}, InitialPlace: "a",
		Transitions: []Transition{
			{ID: "late", FromPlaces: []string{"a"}, ToPlace: "b", After: "PT1H"},
			{ID: "soon", FromPlaces: []string{"a"}, ToPlace: "c", After: "PT1M"},
			{ID: "deadline", FromPlaces: []string{"b"}, ToPlace: "c", At: "data.due"},
			{ID: "meta", FromPlaces: []string{"b"}, ToPlace: "a", At: "due2"},
			{ID: "loop", FromPlaces: []string{"c"}, ToPlace: "c", After: "PT5S"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTimersFollowEntry(t *testing.T) {
	m := timerMachine(t)
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tok, _, err := m.Create(CreateRequest{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	ts := m.Timers(tok)
	if len(ts) != 2 || ts[0].TransitionID != "soon" || !ts[0].DueAt.Equal(t0.Add(time.Minute)) || ts[1].TransitionID != "late" || ts[0].Revision != 1 {
		t.Fatalf("timers in a: %+v", ts)
	}
	// an update keeps the entry
	up, _ := m.Update(tok, UpdateRequest{Data: json.RawMessage(`{"x":1}`), Now: t0.Add(time.Second)})
	if ts2 := m.Timers(up); !ts2[0].DueAt.Equal(ts[0].DueAt) || ts2[0].Revision != 1 {
		t.Fatalf("timers after an update: %+v", ts2)
	}
	// moving to b: at-timers from data (explicit root) and metadata (bare path)
	up.Data = json.RawMessage(`{"due":"2026-12-05T00:00:00Z"}`)
	up.Metadata = json.RawMessage(`{"due2":"2026-12-04T13:00:00.5+01:00"}`)
	b, _, err := m.Fire(up, FireRequest{TransitionID: "late", Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ts = m.Timers(b)
	if len(ts) != 2 || ts[0].TransitionID != "meta" || !ts[0].DueAt.Equal(time.Date(2026, 12, 4, 12, 0, 0, 5e8, time.UTC)) ||
		ts[1].TransitionID != "deadline" || ts[1].Revision != 3 {
		t.Fatalf("timers in b: %+v", ts)
	}
	// a missing or malformed time sets no timer
	b.Data = json.RawMessage(`{"due":"tomorrow"}`)
	if ts := m.Timers(b); len(ts) != 1 || ts[0].TransitionID != "meta" {
		t.Fatalf("timers with a bad time: %+v", ts)
	}
	// a self-loop re-enters: a new timer
	c, _, _ := m.Fire(b, FireRequest{TransitionID: "meta", Now: t0.Add(2 * time.Hour)})
	c, _, _ = m.Fire(c, FireRequest{TransitionID: "soon", Now: t0.Add(3 * time.Hour)})
	c2, _, _ := m.Fire(c, FireRequest{TransitionID: "loop", Now: t0.Add(4 * time.Hour)})
	if a, b := m.Timers(c)[0], m.Timers(c2)[0]; a.Revision == b.Revision || !b.DueAt.Equal(t0.Add(4*time.Hour+5*time.Second)) {
		t.Fatalf("self-loop timers: %+v then %+v", a, b)
	}
	// evaluations say when
	for _, e := range m.Evaluate(c2) {
		if (e.TransitionID == "loop") != (e.TimerDueAt != nil) {
			t.Fatalf("evaluation %s: timerDueAt %v", e.TransitionID, e.TimerDueAt)
		}
	}
}

func TestTimerDefinitionsChecked(t *testing.T) {
	for _, tc := range []struct {
		tr   Transition
		want string
	}{
		{Transition{ID: "x", FromPlaces: []string{"a"}, ToPlace: "a", After: "PT1H", At: "due"}, "both after and at"},
		{Transition{ID: "x", FromPlaces: []string{"a"}, ToPlace: "a", After: "1h"}, "not an ISO 8601 duration"},
		{Transition{ID: "x", FromPlaces: []string{"a"}, ToPlace: "a", At: "data..due"}, "is not a path"},
		{Transition{ID: "x", FromPlaces: []string{"a"}, ToPlace: "a", After: "P200Y"}, "too long"},
	} {
		d := &Definition{ID: "w", Name: "w", Places: []string{"a"}, InitialPlace: "a", Transitions: []Transition{tc.tr}}
		if err := d.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.tr, err, tc.want)
		}
	}
	d := &Definition{ID: "w", Name: "w", Places: []string{"a"}, InitialPlace: "a"}
	for i := range MaxTimersPerPlace + 1 {
		d.Transitions = append(d.Transitions, Transition{ID: "t" + string(rune('a'+i%26)) + string(rune('a'+i/26)), FromPlaces: []string{"a"}, ToPlace: "a", After: "PT1S"})
	}
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "timer transitions") {
		t.Errorf("%d timers from one place: %v", MaxTimersPerPlace+1, err)
	}
}
