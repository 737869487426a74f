// Package flow is the workflow model of Circuit Breaker: definitions (places
// and transitions with guard rules), their validation and static analysis,
// and tokens moving through them. It is pure Go: storage and transport wrap
// it.
package flow

import (
	"fmt"
	"strings"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/rules"
)

// Limits on the size of a definition.
const (
	MaxPlaces      = 1000
	MaxTransitions = 1000
	MaxNameLen     = 128
)

// Definition is a workflow: a set of places, the place tokens start in, and
// the transitions that move a token between places.
type Definition struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	Description  string       `json:"description,omitempty"`
	Places       []string     `json:"places"`
	InitialPlace string       `json:"initialPlace"`
	Transitions  []Transition `json:"transitions"`
	// ArchiveAfter, when set, archives a token that has sat this long in a
	// terminal place without changing: an ISO 8601 duration ("P30D",
	// "PT12H") or a Go duration ("720h"). See ParseArchiveAfter.
	ArchiveAfter string    `json:"archiveAfter,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	Version      int       `json:"version"`
	Analysis     Analysis  `json:"analysis"`
	// SearchAttributes are the keys of data and metadata that findTokens
	// searches by (see search.go).
	SearchAttributes []SearchAttribute `json:"searchAttributes,omitempty"`
}

// Transition moves a token that is in any of FromPlaces to ToPlace, when all
// of its guards (the named builtin Conditions and the Rules) pass. Ids need
// not be unique as long as transitions sharing an id have disjoint
// FromPlaces.
type Transition struct {
	ID          string       `json:"id"`
	Name        string       `json:"name,omitempty"`
	Description string       `json:"description,omitempty"`
	FromPlaces  []string     `json:"fromPlaces"`
	ToPlace     string       `json:"toPlace"`
	Conditions  []string     `json:"conditions"` // names of rules.Builtins
	Rules       []rules.Rule `json:"rules"`
	// After or At make the transition a timer (timer.go): it fires by
	// itself After (ISO 8601) from the token's entry into the from-place,
	// or at the RFC 3339 time found at path At in its data or metadata.
	After string `json:"after,omitempty"`
	At    string `json:"at,omitempty"`
}

// ValidName reports whether s is usable as a workflow id, place name or
// transition id: 1 to 128 ASCII letters, digits, '_' or '-'. Such names are
// safe inside NATS subjects and keys.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// Validate reports the first problem of d as a fail.BadInput error whose
// message starts with "Invalid workflow: ". An empty ID is allowed (the
// service assigns one).
func (d *Definition) Validate() error { return d.ValidateWithin(rules.Limits{}) }

// ValidateWithin is Validate with Expression rules bounded by lim.
func (d *Definition) ValidateWithin(lim rules.Limits) error {
	_, err := d.compile(lim)
	return err
}

// compile checks d and compiles each transition's guards within lim.
func (d *Definition) compile(lim rules.Limits) ([][]guard, error) {
	for _, check := range []func() string{d.checkHeader, d.checkPlaces, d.checkTransitions, d.checkSearchAttributes, d.checkArchiveAfter, d.checkTimers} {
		if msg := check(); msg != "" {
			return nil, fail.New(fail.BadInput, "Invalid workflow: %s", msg)
		}
	}
	guards := make([][]guard, len(d.Transitions))
	for i, t := range d.Transitions {
		gs, err := compileGuards(t, lim)
		if err != nil {
			return nil, fail.New(fail.BadInput, "Invalid workflow: %v", err)
		}
		guards[i] = gs
	}
	return guards, nil
}

// TenantSeparator joins a tenant and a workflow name in a workflow id, the
// original guide's multi-tenant form ("tenant_a::document_approval").
const TenantSeparator = "::"

// ValidWorkflowID reports whether id is a valid name, or two valid names
// joined by TenantSeparator. ':' is safe in subjects and stream names; the
// catalogue maps the separator to '.', which no name contains, so the
// mapping is injective.
func ValidWorkflowID(id string) bool {
	tenant, name, found := strings.Cut(id, TenantSeparator)
	if !found {
		return ValidName(id)
	}
	return ValidName(tenant) && ValidName(name)
}

// unsafeName describes why a name of the given kind is rejected.
func unsafeName(kind, name string) string {
	return fmt.Sprintf("%s '%s' is not allowed: use letters, digits, '_' and '-' (at most %d)", kind, name, MaxNameLen)
}

func (d *Definition) checkHeader() string {
	if d.ID != "" && !ValidWorkflowID(d.ID) {
		return unsafeName("workflow id", d.ID) + ", optionally as tenant" + TenantSeparator + "name"
	}
	if strings.TrimSpace(d.Name) == "" {
		return "name must not be empty"
	}
	return ""
}

func (d *Definition) checkPlaces() string {
	if len(d.Places) == 0 {
		return "workflow has no places"
	}
	if len(d.Places) > MaxPlaces {
		return fmt.Sprintf("too many places: %d (at most %d)", len(d.Places), MaxPlaces)
	}
	seen := make(map[string]bool, len(d.Places))
	for _, p := range d.Places {
		if !ValidName(p) {
			return unsafeName("place", p)
		}
		if seen[p] {
			return fmt.Sprintf("duplicate place '%s'", p)
		}
		seen[p] = true
	}
	if !seen[d.InitialPlace] {
		return fmt.Sprintf("Initial place '%s' not found in places", d.InitialPlace)
	}
	return ""
}

func (d *Definition) checkTransitions() string {
	if len(d.Transitions) > MaxTransitions {
		return fmt.Sprintf("too many transitions: %d (at most %d)", len(d.Transitions), MaxTransitions)
	}
	places := toSet(d.Places)
	owner := map[string]map[string]bool{} // transition id -> from places already used
	for _, t := range d.Transitions {
		if msg := checkTransition(t, places); msg != "" {
			return msg
		}
		if owner[t.ID] == nil {
			owner[t.ID] = map[string]bool{}
		}
		for _, p := range t.FromPlaces {
			if owner[t.ID][p] {
				return fmt.Sprintf("Transition '%s' is defined more than once from place '%s'", t.ID, p)
			}
			owner[t.ID][p] = true
		}
	}
	return ""
}

// checkTransition checks one transition against the workflow's places.
func checkTransition(t Transition, places map[string]bool) string {
	if !ValidName(t.ID) {
		return unsafeName("transition id", t.ID)
	}
	if len(t.FromPlaces) == 0 {
		return fmt.Sprintf("Transition '%s' has no from_places", t.ID)
	}
	seen := make(map[string]bool, len(t.FromPlaces))
	for _, p := range t.FromPlaces {
		if !places[p] {
			return fmt.Sprintf("Transition '%s' references invalid from_place '%s'", t.ID, p)
		}
		if seen[p] {
			return fmt.Sprintf("Transition '%s' lists from_place '%s' twice", t.ID, p)
		}
		seen[p] = true
	}
	if !places[t.ToPlace] {
		return fmt.Sprintf("Transition '%s' references invalid to_place '%s'", t.ID, t.ToPlace)
	}
	return checkTimer(t)
}

// guard is one compiled check of a transition: a builtin condition or a rule.
type guard struct {
	name string
	rule *rules.Compiled
}

// compileGuards compiles a transition's conditions, then its rules
// within lim.
func compileGuards(t Transition, lim rules.Limits) ([]guard, error) {
	gs := make([]guard, 0, len(t.Conditions)+len(t.Rules))
	for _, name := range t.Conditions {
		c, ok := rules.Builtin(name)
		if !ok {
			return nil, fmt.Errorf("Transition '%s' has unknown condition '%s'", t.ID, name)
		}
		gs = append(gs, guard{name: name, rule: c})
	}
	ids := make(map[string]bool, len(t.Rules))
	for _, r := range t.Rules {
		c, err := lim.Compile(r)
		if err != nil {
			return nil, fmt.Errorf("Transition '%s': %v", t.ID, err)
		}
		if ids[r.ID] {
			return nil, fmt.Errorf("Transition '%s' has duplicate rule id '%s'", t.ID, r.ID)
		}
		ids[r.ID] = true
		gs = append(gs, guard{name: r.ID, rule: c})
	}
	return gs, nil
}

// toSet returns the set of strings in s.
func toSet(s []string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, v := range s {
		m[v] = true
	}
	return m
}
