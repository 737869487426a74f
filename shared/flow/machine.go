package flow

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/mergepatch"
	"github.com/cbnats/circuitbreaker/shared/rules"
)

// Machine is a validated definition with its guards compiled. Build one per
// definition and share it: it is immutable and safe for concurrent use. Def
// must not be modified after NewMachine.
type Machine struct {
	Def    *Definition
	places map[string]bool
	guards [][]guard // per transition, in definition order
}

// NewMachine validates d and compiles its guards.
func NewMachine(d *Definition) (*Machine, error) { return NewMachineWithin(d, rules.Limits{}) }

// NewMachineWithin is NewMachine with Expression rules bounded by lim.
func NewMachineWithin(d *Definition, lim rules.Limits) (*Machine, error) {
	guards, err := d.compile(lim)
	if err != nil {
		return nil, err
	}
	return &Machine{Def: d, places: toSet(d.Places), guards: guards}, nil
}

// FireRequest asks to fire a transition.
type FireRequest struct {
	TransitionID     string
	NewPlace         string          // optional; if set it must be the transition's ToPlace
	Data             json.RawMessage // optional; a merge patch, or the new data when ReplaceData
	ReplaceData      bool
	TriggeredBy      string
	TriggeredByClaim string // what the client claimed, when not TriggeredBy
	IdempotencyKey   string
	RequestHash      string    // fingerprint of the request, kept with the key
	Now              time.Time // zero = time.Now()
}

// Fire is FireContext with no deadline but the rules' own limits.
func (m *Machine) Fire(t *Token, r FireRequest) (*Token, *Entry, error) {
	return m.FireContext(context.Background(), t, r)
}

// FireContext fires the first transition with r.TransitionID that can
// leave t's place, if its guards pass against t's current data and
// metadata. It returns a new token and the history entry the fire adds,
// and never modifies t. If ctx is done before the guards are decided, the
// error is fail.Timeout.
func (m *Machine) FireContext(ctx context.Context, t *Token, r FireRequest) (*Token, *Entry, error) {
	if err := changeable(t); err != nil {
		return nil, nil, err
	}
	i, err := m.fireable(t, r)
	if err != nil {
		return nil, nil, err
	}
	if err := m.checkGuards(ctx, t, i); err != nil {
		return nil, nil, err
	}
	next := t.Clone()
	if len(bytes.TrimSpace(r.Data)) > 0 || r.ReplaceData {
		if next.Data, err = applyData(t.Data, r.Data, r.ReplaceData); err != nil {
			return nil, nil, err
		}
	}
	tr, now := m.Def.Transitions[i], nowOr(r.Now)
	var evData json.RawMessage
	if len(bytes.TrimSpace(r.Data)) > 0 {
		evData, _ = compact(r.Data, "data") // valid: applyData accepted it
	}
	next.Place, next.UpdatedAt, next.Revision, next.Records = tr.ToPlace, now, t.Revision+1, t.Records+1
	next.Enter(now)
	next.remember(r.IdempotencyKey, r.RequestHash, next.Revision)
	return next, &Entry{
		Record: TransitionRecord{FromPlace: t.Place, ToPlace: tr.ToPlace, TransitionID: tr.ID, Timestamp: now,
			TriggeredBy: r.TriggeredBy, TriggeredByClaim: r.TriggeredByClaim, IdempotencyKey: r.IdempotencyKey, RequestHash: r.RequestHash},
		Event: &HistoryEvent{Timestamp: now, Transition: tr.ID, From: t.Place, To: tr.ToPlace, Data: evData},
	}, nil
}

// fireable returns the index of the transition r fires from t's place.
func (m *Machine) fireable(t *Token, r FireRequest) (int, error) {
	if t.WorkflowID != m.Def.ID {
		return 0, fail.New(fail.BadInput, "token '%s' belongs to workflow '%s', not '%s'", t.ID, t.WorkflowID, m.Def.ID)
	}
	known := false
	for i, tr := range m.Def.Transitions {
		if tr.ID != r.TransitionID {
			continue
		}
		known = true
		if !slices.Contains(tr.FromPlaces, t.Place) {
			continue
		}
		if r.NewPlace != "" && r.NewPlace != tr.ToPlace {
			return 0, fail.New(fail.InvalidTransition, "Invalid transition: '%s' leads to '%s', not '%s'", tr.ID, tr.ToPlace, r.NewPlace)
		}
		return i, nil
	}
	if !known {
		return 0, fail.New(fail.InvalidTransition, "Invalid transition: workflow '%s' has no transition '%s'", m.Def.ID, r.TransitionID)
	}
	return 0, fail.New(fail.InvalidTransition, "Invalid transition: '%s' cannot fire from place '%s'", r.TransitionID, t.Place)
}

// checkGuards returns a GuardFailed error naming the first guard of
// transition i that t does not pass, or Timeout if ctx ended first.
func (m *Machine) checkGuards(ctx context.Context, t *Token, i int) error {
	if len(m.guards[i]) == 0 {
		return nil
	}
	f, err := tokenFacts(t)
	if err != nil {
		return err
	}
	for _, g := range m.guards[i] {
		if res := g.rule.EvaluateContext(ctx, f); !res.Passed {
			if err := ctx.Err(); err != nil {
				return fail.Wrap(fail.Timeout, err, "Guard '"+g.name+"' not decided: "+err.Error())
			}
			return fail.New(fail.GuardFailed, "Guard failed: rule '%s': %s", g.name, res.Explanation)
		}
	}
	return nil
}

// tokenFacts decodes what guards see of t.
func tokenFacts(t *Token) (rules.Facts, error) {
	f, err := rules.NewFacts(t.Metadata, t.Data)
	if err != nil {
		return rules.Facts{}, fail.New(fail.BadInput, "token '%s': %v", t.ID, err)
	}
	return f, nil
}

// applyData merge-patches cur with patch, or replaces it when replace is set.
func applyData(cur, patch json.RawMessage, replace bool) (json.RawMessage, error) {
	if len(bytes.TrimSpace(patch)) == 0 {
		return nil, fail.New(fail.BadInput, "replacing data needs data")
	}
	if replace {
		return compact(patch, "data")
	}
	return mergepatch.Apply(cur, patch)
}

// UpdateRequest asks to change a token's data or metadata in place.
type UpdateRequest struct {
	Data        json.RawMessage // a merge patch, or the new data when ReplaceData
	ReplaceData bool
	Metadata    json.RawMessage // a merge patch; the result must stay an object
	Now         time.Time       // zero = time.Now()
}

// Update returns a new token with r applied: no place change and no history
// entry, but Revision+1 and UpdatedAt=Now. It never modifies t.
func (m *Machine) Update(t *Token, r UpdateRequest) (*Token, error) {
	hasData, hasMD := len(bytes.TrimSpace(r.Data)) > 0, len(bytes.TrimSpace(r.Metadata)) > 0
	if !hasData && !hasMD {
		return nil, fail.New(fail.BadInput, "nothing to update: give data or metadata")
	}
	if err := changeable(t); err != nil {
		return nil, err
	}
	next := t.Clone()
	var err error
	if hasData || r.ReplaceData {
		if next.Data, err = applyData(t.Data, r.Data, r.ReplaceData); err != nil {
			return nil, err
		}
	}
	if hasMD {
		if next.Metadata, err = mergepatch.Apply(t.Metadata, r.Metadata); err != nil {
			return nil, err
		}
		if !isObject(next.Metadata) {
			return nil, fail.New(fail.BadInput, "metadata must be a JSON object")
		}
	}
	next.UpdatedAt, next.Revision = nowOr(r.Now), t.Revision+1
	return next, nil
}
