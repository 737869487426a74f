package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/expr-lang/expr/vm"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/mergepatch"
)

// Compiled is a validated rule ready to be evaluated many times; expression
// scripts are compiled once. A Compiled is immutable and safe for
// concurrent use.
type Compiled struct {
	id        string
	kind      string
	field     string
	path      []string
	value     any    // FieldEquals: the decoded JSON value
	valueText string // FieldEquals: the value as compact JSON, for explanations
	number    float64
	substring string
	children  []*Compiled
	script    string
	program   *vm.Program
	limits    Limits // with defaults filled in
}

// Compile validates r and prepares it for evaluation within the default
// Limits. Errors are fail.BadInput and name the offending rule, e.g.
// "rule 'r1': unknown condition type 'Foo'".
func Compile(r Rule) (*Compiled, error) {
	return Limits{}.Compile(r)
}

// ID returns the rule's id.
func (c *Compiled) ID() string { return c.id }

// compile compiles r found at nesting depth inside the rule named parent.
func compile(r Rule, depth int, parent string, l Limits) (*Compiled, error) {
	if r.ID == "" {
		if parent != "" {
			return nil, fail.New(fail.BadInput, "rule '%s': nested rule id must not be empty", parent)
		}
		return nil, fail.New(fail.BadInput, "rule id must not be empty")
	}
	if depth > MaxDepth {
		return nil, badRule(r.ID, "rules nest deeper than %d levels", MaxDepth)
	}
	c := &Compiled{id: r.ID, kind: r.Condition.Type, limits: l}
	var err error
	switch r.Condition.Type {
	case FieldExists, FieldEquals, FieldGreaterThan, FieldLessThan, FieldContains:
		err = c.compileField(r.Condition)
	case And, Or:
		err = c.compileList(r.Condition.Rules, depth)
	case Not:
		err = c.compileNot(r.Condition.Rule, depth)
	case Expression:
		err = c.compileExpression(r.Condition.Script)
	case "":
		err = badRule(r.ID, "condition type is missing")
	default:
		err = badRule(r.ID, "unknown condition type '%s'", r.Condition.Type)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// badRule returns a BadInput error about the rule named id.
func badRule(id, format string, args ...any) error {
	return fail.New(fail.BadInput, "rule '%s': %s", id, fmt.Sprintf(format, args...))
}

// compileField validates and stores the operands of a field condition.
func (c *Compiled) compileField(cond Condition) error {
	if cond.Field == "" {
		return badRule(c.id, "%s needs a field", c.kind)
	}
	c.field = cond.Field
	c.path = strings.Split(cond.Field, ".")
	for _, seg := range c.path {
		if seg == "" {
			return badRule(c.id, "field '%s' has an empty path segment", cond.Field)
		}
	}
	switch c.kind {
	case FieldEquals:
		return c.compileEqualsValue(cond.Value)
	case FieldGreaterThan, FieldLessThan:
		return c.compileNumberValue(cond.Value)
	case FieldContains:
		if cond.Substring == "" {
			return badRule(c.id, "FieldContains needs a substring")
		}
		c.substring = cond.Substring
	}
	return nil
}

// compileEqualsValue decodes the JSON value a FieldEquals compares against.
func (c *Compiled) compileEqualsValue(raw json.RawMessage) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return badRule(c.id, "FieldEquals needs a value")
	}
	v, err := mergepatch.Decode(raw)
	if err != nil {
		return badRule(c.id, "value is not valid JSON: %v", err)
	}
	text, err := mergepatch.Encode(v)
	if err != nil {
		return badRule(c.id, "value cannot be encoded: %v", err)
	}
	c.value, c.valueText = v, string(text)
	return nil
}

// compileNumberValue decodes the number a FieldGreaterThan/LessThan compares against.
func (c *Compiled) compileNumberValue(raw json.RawMessage) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return badRule(c.id, "%s needs a numeric value", c.kind)
	}
	v, err := mergepatch.Decode(raw)
	if err != nil {
		return badRule(c.id, "value is not valid JSON: %v", err)
	}
	n, ok := asNumber(v)
	if !ok {
		return badRule(c.id, "%s needs a numeric value, got %s", c.kind, bytes.TrimSpace(raw))
	}
	c.number = n
	return nil
}

// compileList compiles the nested rules of an And or Or.
func (c *Compiled) compileList(rs []Rule, depth int) error {
	c.children = make([]*Compiled, 0, len(rs))
	for _, r := range rs {
		child, err := compile(r, depth+1, c.id, c.limits)
		if err != nil {
			return err
		}
		c.children = append(c.children, child)
	}
	return nil
}

// compileNot compiles the nested rule of a Not.
func (c *Compiled) compileNot(r *Rule, depth int) error {
	if r == nil {
		return badRule(c.id, "Not needs a nested rule")
	}
	child, err := compile(*r, depth+1, c.id, c.limits)
	if err != nil {
		return err
	}
	c.children = []*Compiled{child}
	return nil
}
