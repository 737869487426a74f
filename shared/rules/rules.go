// Package rules defines guard rules for workflow transitions: a small JSON
// condition language (field tests, And/Or/Not, expr-lang expressions), its
// validation and compilation, and evaluation against a token's metadata and
// data with human readable explanations.
//
// # What an expression may cost
//
// Expression scripts come from whoever creates a workflow and run on data
// from whoever writes a token, so one evaluation is bounded by Limits
// (DefaultLimits, unless compiled with Limits.Compile):
//
//   - Compile refuses a script longer than MaxScriptBytes or of more than
//     MaxNodes syntax nodes; names starting with "__" and $env; method
//     calls; the builtins whose output can dwarf their input or whose time
//     is quadratic (repeat, join, replace, string, toJSON, fromJSON,
//     toBase64, fromBase64, uniq, flatten); trim with a cutset; and matches
//     with a pattern that is not a literal. It then runs the script once on
//     an empty token and refuses it if that alone goes over a budget, so a
//     let-chain doubling a literal string is refused when the workflow is
//     created.
//   - Memory. expr-lang's VM counts the elements of the arrays, maps and
//     ranges it builds against its MemoryBudget, but not strings: a + b and
//     upper(s) are free to it, and 30 doublings of a 32-byte string ask for
//     32 GiB. So rewrite.go rewrites the script: a + b charges
//     len(a)+len(b) bytes before the string is built; upper, lower, split,
//     splitAfter, keys, values, toPairs, fromPairs and concat charge the
//     length of their arguments; sum adds numbers only. What one evaluation
//     allocates this way, counted as allocated and not as held, is at most
//     MemoryBudget bytes, and what the VM allocates at most MemoryBudget
//     elements.
//   - Time. A check before every binary operator, builtin call and loop
//     iteration counts a step against MaxSteps and stops the evaluation
//     when its ctx is done: the caller's, cut to Timeout. Matching a regexp,
//     whose time grows with the pattern as well as the text, is charged
//     text bytes × pattern instructions before it runs. Between two checks
//     runs at most one operator or builtin, on operands no larger than the
//     token's data or the memory budget.
//
// A rule that goes over a budget or is stopped does not pass, nor does a Not
// of it, and its explanation says why, e.g. "Expression '…' exceeded its
// memory budget (1048576 bytes)".
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

// MaxScriptLen is the longest Expression script, in bytes, that Compile
// accepts: the default of Limits.MaxScriptBytes.
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
	// undecided: an expression in the rule stopped or went over a budget
	// before it gave an answer. Such a rule fails, and so does a Not of it:
	// running a guard out of budget must not make it pass.
	undecided bool
}
