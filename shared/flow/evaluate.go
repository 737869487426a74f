package flow

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cbnats/circuitbreaker/shared/rules"
)

// Evaluation explains whether one transition can fire for a token.
type Evaluation struct {
	TransitionID    string         `json:"transitionId"`
	Name            string         `json:"name,omitempty"`
	ToPlace         string         `json:"toPlace"`
	FromPlaces      []string       `json:"fromPlaces"`
	PlaceCompatible bool           `json:"placeCompatible"`
	RulesPassed     bool           `json:"rulesPassed"`
	CanFire         bool           `json:"canFire"`
	RuleResults     []rules.Result `json:"ruleResults"`
	Explanation     string         `json:"explanation"`
	// TimerDueAt is when the transition's timer fires by itself, for a
	// timer transition the token has a pending timer for.
	TimerDueAt *time.Time `json:"timerDueAt,omitempty"`
}

// Evaluate is EvaluateContext with no deadline but the rules' own limits.
func (m *Machine) Evaluate(t *Token) []Evaluation {
	return m.EvaluateContext(context.Background(), t)
}

// EvaluateContext explains, for every transition of the definition in
// order, whether it can fire for t. Guards are evaluated even when the
// place does not match, so the results show what else would block the
// transition. A guard still running when ctx is done fails.
func (m *Machine) EvaluateContext(ctx context.Context, t *Token) []Evaluation {
	f, ferr := tokenFacts(t)
	out := make([]Evaluation, len(m.Def.Transitions))
	for i, tr := range m.Def.Transitions {
		e := Evaluation{
			TransitionID: tr.ID, Name: tr.Name, ToPlace: tr.ToPlace,
			FromPlaces:      slices.Clone(tr.FromPlaces),
			PlaceCompatible: slices.Contains(tr.FromPlaces, t.Place),
			RuleResults:     m.results(ctx, i, f, ferr),
		}
		failed := failures(e.RuleResults)
		e.RulesPassed = len(failed) == 0
		e.CanFire = e.PlaceCompatible && e.RulesPassed && t.ArchivedAt == nil
		e.Explanation = explain(e, t.Place, failed)
		if t.ArchivedAt != nil {
			e.Explanation = "the token is archived: no transition can fire"
		}
		out[i] = e
	}
	m.markTimers(t, out)
	return out
}

// results evaluates every guard of transition i; when the token's facts
// could not be decoded, every guard fails with that error.
func (m *Machine) results(ctx context.Context, i int, f rules.Facts, ferr error) []rules.Result {
	rs := make([]rules.Result, len(m.guards[i]))
	for j, g := range m.guards[i] {
		if ferr != nil {
			rs[j] = rules.Result{RuleID: g.name, Explanation: ferr.Error()}
			continue
		}
		rs[j] = g.rule.EvaluateContext(ctx, f)
		rs[j].RuleID = g.name
	}
	return rs
}

// failures returns the results that did not pass.
func failures(rs []rules.Result) []rules.Result {
	var failed []rules.Result
	for _, r := range rs {
		if !r.Passed {
			failed = append(failed, r)
		}
	}
	return failed
}

// explain words an Evaluation the way the original engine did.
func explain(e Evaluation, place string, failed []rules.Result) string {
	if !e.PlaceCompatible {
		return fmt.Sprintf("Token is in place '%s' but transition requires one of: [%s]", place, strings.Join(e.FromPlaces, ", "))
	}
	if len(failed) > 0 {
		parts := make([]string, len(failed))
		for i, r := range failed {
			parts[i] = fmt.Sprintf("rule '%s': %s", r.RuleID, r.Explanation)
		}
		return fmt.Sprintf("%d of %d rules failed: %s", len(failed), len(e.RuleResults), strings.Join(parts, "; "))
	}
	return "All conditions met - transition can fire"
}

// Available is AvailableContext with no deadline but the rules' own limits.
func (m *Machine) Available(t *Token) []Transition {
	return m.AvailableContext(context.Background(), t)
}

// AvailableContext returns the transitions that can fire for t now: t's
// place is one of their FromPlaces and all their guards pass. A guard still
// running when ctx is done fails.
func (m *Machine) AvailableContext(ctx context.Context, t *Token) []Transition {
	out := []Transition{}
	if t.ArchivedAt != nil {
		return out
	}
	f, ferr := tokenFacts(t)
	for i, tr := range m.Def.Transitions {
		if !slices.Contains(tr.FromPlaces, t.Place) {
			continue
		}
		if len(m.guards[i]) > 0 && (ferr != nil || !allPass(ctx, m.guards[i], f)) {
			continue
		}
		out = append(out, tr)
	}
	return out
}

// Fireable returns the transitions whose evaluation (from EvaluateContext
// on the same token) says they can fire: AvailableContext without running
// the guards again.
func (m *Machine) Fireable(evals []Evaluation) []Transition {
	out := []Transition{}
	for i, e := range evals {
		if e.CanFire {
			out = append(out, m.Def.Transitions[i])
		}
	}
	return out
}

// allPass reports whether every guard passes for f.
func allPass(ctx context.Context, gs []guard, f rules.Facts) bool {
	for _, g := range gs {
		if !g.rule.EvaluateContext(ctx, f).Passed {
			return false
		}
	}
	return true
}
