package flow

import (
	"fmt"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// ArchiveTransition is the transition id of the history record an archive
// adds (as "create" is that of the creation record).
const ArchiveTransition = "archive"

// ArchiveRequest asks to archive a token.
type ArchiveRequest struct {
	TriggeredBy      string
	TriggeredByClaim string    // what the client claimed, when not TriggeredBy
	Now              time.Time // zero = time.Now()
}

// Archive returns t archived: ArchivedAt and UpdatedAt set to Now,
// Revision+1, and the history entry the archive adds (a record with
// transition id "archive" from and to its place, no history event). It
// never modifies t. An archived token cannot change any more: archiving
// it again is for the caller to answer (with the token as it is).
func (m *Machine) Archive(t *Token, r ArchiveRequest) (*Token, *Entry, error) {
	if err := changeable(t); err != nil {
		return nil, nil, err
	}
	now := nowOr(r.Now)
	next := t.Clone()
	next.ArchivedAt, next.UpdatedAt, next.Revision, next.Records = &now, now, t.Revision+1, t.Records+1
	return next, &Entry{Record: TransitionRecord{FromPlace: t.Place, ToPlace: t.Place, TransitionID: ArchiveTransition,
		Timestamp: now, TriggeredBy: r.TriggeredBy, TriggeredByClaim: r.TriggeredByClaim}}, nil
}

// changeable refuses a change of an archived token.
func changeable(t *Token) error {
	if t.ArchivedAt != nil {
		return fail.New(fail.Conflict, "token %s is archived: it can no longer change", t.ID)
	}
	return nil
}

// Bounds of a workflow's archiveAfter.
const (
	MinArchiveAfter = time.Second
	MaxArchiveAfter = 100 * 365 * 24 * time.Hour
)

// ParseArchiveAfter reads a workflow's archiveAfter: an ISO 8601 duration
// of weeks, days, hours, minutes and seconds ("P30D", "P1W", "PT12H",
// "P1DT30M", "PT1.5S"; days are 24 hours) or a Go duration ("720h",
// "90s"), between MinArchiveAfter and MaxArchiveAfter.
func ParseArchiveAfter(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < MinArchiveAfter || d > MaxArchiveAfter {
		return 0, fmt.Errorf("archiveAfter %q is out of range: between %v and %v", s, MinArchiveAfter, MaxArchiveAfter)
	}
	return d, nil
}

func parseDuration(s string) (time.Duration, error) {
	if len(s) > 0 && s[0] != 'P' {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("archiveAfter %q is neither an ISO 8601 duration (P30D, PT12H) nor a Go duration (720h)", s)
		}
		return d, nil
	}
	d, err := ParseDuration(s) // ISO 8601, as timers take it
	if err != nil || d.Years != 0 || d.Months != 0 {
		return 0, fmt.Errorf("archiveAfter %q is not an ISO 8601 duration of weeks, days, hours, minutes and seconds (P30D, PT12H, P1DT30M)", s)
	}
	total := time.Duration(d.Days)*24*time.Hour + d.Clock
	if total > MaxArchiveAfter {
		return 0, fmt.Errorf("archiveAfter %q is out of range: between %v and %v", s, MinArchiveAfter, MaxArchiveAfter)
	}
	return total, nil
}

// ArchiveAfterDuration is d's archiveAfter as a duration; 0 when unset
// (or invalid, which validation refuses).
func (d *Definition) ArchiveAfterDuration() time.Duration {
	if d.ArchiveAfter == "" {
		return 0
	}
	dur, _ := ParseArchiveAfter(d.ArchiveAfter)
	return dur
}

func (d *Definition) checkArchiveAfter() string {
	if d.ArchiveAfter == "" {
		return ""
	}
	if _, err := ParseArchiveAfter(d.ArchiveAfter); err != nil {
		return err.Error()
	}
	return ""
}
