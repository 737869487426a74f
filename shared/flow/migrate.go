package flow

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// MigrateTransition is the transition id of the record a migration adds.
const MigrateTransition = "migrate"

// Mapping says where a migration puts the tokens of each place of one
// version of a workflow in another version.
type Mapping struct {
	From, To *Machine
	places   map[string]string // place in From → place in To
}

// NewMapping checks that every place of from has a place in to: the same
// name, or the one mapping names. A mapping's keys must be places of
// from and its values places of to. Nothing is checked per token: a bad
// mapping is refused before any token moves.
func NewMapping(from, to *Machine, mapping map[string]string) (*Mapping, error) {
	if from.Def.ID != to.Def.ID || from.Def.Version == to.Def.Version {
		return nil, fail.New(fail.BadInput, "a migration moves tokens between two versions of one workflow")
	}
	for p, q := range mapping {
		if !slices.Contains(from.Def.Places, p) {
			return nil, fail.New(fail.BadInput, "placeMapping: '%s' is not a place of version %d", p, from.Def.Version)
		}
		if !slices.Contains(to.Def.Places, q) {
			return nil, fail.New(fail.BadInput, "placeMapping: '%s' → '%s': '%s' is not a place of version %d", p, q, q, to.Def.Version)
		}
	}
	places := make(map[string]string, len(from.Def.Places))
	for _, p := range from.Def.Places {
		q, ok := mapping[p]
		if !ok {
			q = p
		}
		if !slices.Contains(to.Def.Places, q) {
			return nil, fail.New(fail.BadInput, "place '%s' of version %d is not in version %d: map it in placeMapping", p, from.Def.Version, to.Def.Version)
		}
		places[p] = q
	}
	return &Mapping{From: from, To: to, places: places}, nil
}

// Place is where a token in place p goes.
func (m *Mapping) Place(p string) string { return m.places[p] }

// Migrate moves t from m.From's version to m.To's at its mapped place,
// adding a "migrate" transition record.
func (m *Mapping) Migrate(t *Token, triggeredBy string, now time.Time) (*Token, *Entry, error) {
	if t.WorkflowID != m.From.Def.ID || t.WorkflowVersion != m.From.Def.Version {
		return nil, nil, fail.New(fail.Conflict, "token %s is on version %d of %s, not %d", t.ID, t.WorkflowVersion, t.WorkflowID, m.From.Def.Version)
	}
	now = nowOr(now)
	next := t.Clone()
	next.WorkflowVersion, next.Place = m.To.Def.Version, m.Place(t.Place)
	next.UpdatedAt, next.Revision, next.Records = now, t.Revision+1, t.Records+1
	md, _ := json.Marshal(map[string]int{"from_version": m.From.Def.Version, "to_version": m.To.Def.Version})
	return next, &Entry{Record: TransitionRecord{FromPlace: t.Place, ToPlace: next.Place, TransitionID: MigrateTransition,
		Timestamp: now, TriggeredBy: triggeredBy, Metadata: md}}, nil
}
