// Package rules defines guard rules for workflow transitions: a small JSON
// condition language (field tests, And/Or/Not, expr-lang expressions), its
// validation and compilation, and evaluation against a token's metadata and
// data with human readable explanations.
package rules

import (
	"bytes"
	"encoding/json"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/mergepatch"
)

// The condition types, as spelled in the "type" member of a Condition.
const (
	FieldExists      = "FieldExists"
	FieldEquals      = "FieldEquals"
	FieldGreaterThan = "FieldGreaterThan"
	FieldLessThan    = "FieldLessThan"
	FieldContains    = "FieldContains"
	And              = "And"
	Or               = "Or"
	Not              = "Not"
	Expression       = "Expression"
)

// MaxDepth is the deepest nesting of And/Or/Not that Compile accepts.
const MaxDepth = 32

// MaxScriptLen is the longest Expression script, in bytes, that Compile accepts.
const MaxScriptLen = 4096

// Rule is a named condition.
type Rule struct {
	ID          string    `json:"id"`
	Description string    `json:"description,omitempty"`
	Condition   Condition `json:"condition"`
}

// Condition is one test; Type says which of the other fields matter.
type Condition struct {
	Type      string          `json:"type"`                // one of the condition type constants
	Field     string          `json:"field,omitempty"`     // dotted path, e.g. "review.score"
	Value     json.RawMessage `json:"value,omitempty"`     // FieldEquals: any JSON; GreaterThan/LessThan: a number
	Substring string          `json:"substring,omitempty"` // FieldContains
	Rules     []Rule          `json:"rules,omitempty"`     // And, Or
	Rule      *Rule           `json:"rule,omitempty"`      // Not
	Script    string          `json:"script,omitempty"`    // Expression (expr-lang, must yield bool)
}

// Facts is what a rule sees: the token's metadata (a JSON object) and data
// (any JSON), decoded with numbers as json.Number. Rules never modify Facts.
type Facts struct {
	Metadata map[string]any
	Data     any
}

// NewFacts decodes a token's metadata and data. Empty or null metadata is an
// empty object; empty data is an empty object. Metadata must be an object.
func NewFacts(metadata, data json.RawMessage) (Facts, error) {
	md, err := decodeOr(metadata, map[string]any{})
	if err != nil {
		return Facts{}, fail.New(fail.BadInput, "invalid metadata: %v", err)
	}
	if md == nil {
		md = map[string]any{}
	}
	obj, ok := md.(map[string]any)
	if !ok {
		return Facts{}, fail.New(fail.BadInput, "metadata must be a JSON object")
	}
	d, err := decodeOr(data, map[string]any{})
	if err != nil {
		return Facts{}, fail.New(fail.BadInput, "invalid data: %v", err)
	}
	return Facts{Metadata: obj, Data: d}, nil
}

// decodeOr decodes raw, or returns def when raw is blank.
func decodeOr(raw json.RawMessage, def any) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return def, nil
	}
	return mergepatch.Decode(raw)
}

// Result is the outcome of evaluating one rule, with an explanation.
type Result struct {
	RuleID      string   `json:"ruleId"`
	Passed      bool     `json:"passed"`
	Explanation string   `json:"explanation"`
	SubResults  []Result `json:"subResults,omitempty"`
}
