package flow

import (
	"errors"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

func TestParseArchiveAfter(t *testing.T) {
	day := 24 * time.Hour
	for in, want := range map[string]time.Duration{
		"P30D": 30 * day, "P1W": 7 * day, "PT12H": 12 * time.Hour, "P1DT30M": day + 30*time.Minute,
		"PT1.5S": 1500 * time.Millisecond, "PT1S": time.Second, "P2W3DT4H5M6S": 17*day + 4*time.Hour + 5*time.Minute + 6*time.Second,
		"720h": 720 * time.Hour, "90s": 90 * time.Second,
	} {
		if got, err := ParseArchiveAfter(in); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "P", "PT", "P1M", "P1Y", "P1DT", "30D", "P-1D", "PT0.5S", "0s", "-5s", "P1H", "1 day", "P99999999D", "PT1S ", "pt1s"} {
		if got, err := ParseArchiveAfter(in); err == nil {
			t.Errorf("%q: accepted as %v", in, got)
		}
	}
}

func TestArchiveAfterIsValidated(t *testing.T) {
	d := &Definition{ID: "w", Name: "w", Places: []string{"a"}, InitialPlace: "a", ArchiveAfter: "P1M"}
	if err := d.Validate(); !errors.Is(err, fail.ErrBadInput) {
		t.Fatalf("archiveAfter P1M: %v", err)
	}
	d.ArchiveAfter = "P30D"
	if err := d.Validate(); err != nil || d.ArchiveAfterDuration() != 30*24*time.Hour {
		t.Fatalf("archiveAfter P30D: %v, %v", err, d.ArchiveAfterDuration())
	}
}

// TestArchivedTokenCannotChange: archiving adds an archive record and a
// revision; the archived token cannot fire, be updated or be archived
// again, and no transition can fire for it.
func TestArchivedTokenCannotChange(t *testing.T) {
	m, err := NewMachine(&Definition{ID: "w", Name: "w", Places: []string{"a", "b"}, InitialPlace: "a",
		Transitions: []Transition{{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := m.Create(CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	arch, entry, err := m.Archive(tok, ArchiveRequest{TriggeredBy: "ops", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if tok.ArchivedAt != nil {
		t.Fatal("Archive modified its argument")
	}
	if arch.ArchivedAt == nil || !arch.ArchivedAt.Equal(now) || arch.Revision != 2 || arch.Records != 2 || arch.Place != "a" {
		t.Fatalf("archived: %+v", arch)
	}
	if r := entry.Record; r.TransitionID != ArchiveTransition || r.FromPlace != "a" || r.ToPlace != "a" || r.TriggeredBy != "ops" || entry.Event != nil {
		t.Fatalf("archive entry: %+v", entry)
	}
	if _, _, err := m.Fire(arch, FireRequest{TransitionID: "go"}); !errors.Is(err, fail.ErrConflict) {
		t.Errorf("fire: %v", err)
	}
	if _, err := m.Update(arch, UpdateRequest{Data: []byte(`{"x":1}`)}); !errors.Is(err, fail.ErrConflict) {
		t.Errorf("update: %v", err)
	}
	if _, _, err := m.Archive(arch, ArchiveRequest{}); !errors.Is(err, fail.ErrConflict) {
		t.Errorf("archive again: %v", err)
	}
	if av := m.Available(arch); len(av) != 0 {
		t.Errorf("available: %+v", av)
	}
	for _, e := range m.Evaluate(arch) {
		if e.CanFire {
			t.Errorf("evaluation says %s can fire", e.TransitionID)
		}
	}
}
