package rules

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Evaluate evaluates the rule against f, each expression within its own
// Limits only. See EvaluateContext.
func (c *Compiled) Evaluate(f Facts) Result {
	return c.EvaluateContext(context.Background(), f)
}

// EvaluateContext evaluates the rule against f. An expression stops when
// ctx is done or when it goes over its Limits, and then does not pass. It
// never panics: an expression that fails at run time, or any unexpected
// failure, gives a result that did not pass, with the error in the
// explanation.
func (c *Compiled) EvaluateContext(ctx context.Context, f Facts) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			res = c.result(false, "internal error evaluating rule: %v", p)
		}
	}()
	return c.eval(ctx, f)
}

// eval dispatches on the condition type.
func (c *Compiled) eval(ctx context.Context, f Facts) Result {
	switch c.kind {
	case FieldExists:
		return c.evalExists(f)
	case FieldEquals:
		return c.evalEquals(f)
	case FieldGreaterThan, FieldLessThan:
		return c.evalCompare(f)
	case FieldContains:
		return c.evalContains(f)
	case And, Or:
		return c.evalList(ctx, f)
	case Not:
		return c.evalNot(ctx, f)
	case Expression:
		return c.evalExpression(ctx, f)
	}
	return c.result(false, "unknown condition type '%s'", c.kind)
}

// result builds a Result for c.
func (c *Compiled) result(passed bool, format string, args ...any) Result {
	return Result{RuleID: c.id, Passed: passed, Explanation: fmt.Sprintf(format, args...)}
}

func (c *Compiled) evalExists(f Facts) Result {
	if _, ok := f.find(c.field, c.path); ok {
		return c.result(true, "Field '%s' exists", c.field)
	}
	return c.result(false, "Field '%s' does not exist", c.field)
}

// evalEquals passes when the metadata value or the data value equals c.value.
func (c *Compiled) evalEquals(f Facts) Result {
	mv, inMeta := lookup(f.Metadata, c.field, c.path)
	dv, inData := lookup(f.Data, c.field, c.path)
	if (inMeta && jsonEqual(mv, c.value)) || (inData && jsonEqual(dv, c.value)) {
		return c.result(true, "Field '%s' equals %s", c.field, c.valueText)
	}
	if !inMeta && !inData {
		return c.result(false, "Field '%s' does not exist (expected %s)", c.field, c.valueText)
	}
	found := mv
	if !inMeta {
		found = dv
	}
	return c.result(false, "Field '%s' does not equal %s (found %s)", c.field, c.valueText, shortJSON(found))
}

// evalCompare implements FieldGreaterThan and FieldLessThan.
func (c *Compiled) evalCompare(f Facts) Result {
	op, passed := "greater than", false
	if c.kind == FieldLessThan {
		op = "less than"
	}
	limit := strconv.FormatFloat(c.number, 'g', -1, 64)
	v, ok := f.find(c.field, c.path)
	if !ok {
		return c.result(false, "Field '%s' does not exist (expected a number %s %s)", c.field, op, limit)
	}
	n, ok := asNumber(v)
	if !ok {
		return c.result(false, "Field '%s' is not a number (found %s)", c.field, shortJSON(v))
	}
	if c.kind == FieldLessThan {
		passed = n < c.number
	} else {
		passed = n > c.number
	}
	if passed {
		return c.result(true, "Field '%s' (%s) is %s %s", c.field, shortJSON(v), op, limit)
	}
	return c.result(false, "Field '%s' (%s) is not %s %s", c.field, shortJSON(v), op, limit)
}

// evalContains passes for a string containing the substring, or an array
// with an element equal to it.
func (c *Compiled) evalContains(f Facts) Result {
	v, ok := f.find(c.field, c.path)
	if !ok {
		return c.result(false, "Field '%s' does not exist", c.field)
	}
	switch x := v.(type) {
	case string:
		if strings.Contains(x, c.substring) {
			return c.result(true, "Field '%s' contains %q", c.field, c.substring)
		}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && s == c.substring {
				return c.result(true, "Field '%s' contains %q", c.field, c.substring)
			}
		}
	default:
		return c.result(false, "Field '%s' is neither a string nor an array (found %s)", c.field, shortJSON(v))
	}
	return c.result(false, "Field '%s' does not contain %q", c.field, c.substring)
}

// evalList implements And (all pass; true when empty) and Or (any passes).
func (c *Compiled) evalList(ctx context.Context, f Facts) Result {
	subs := make([]Result, len(c.children))
	passed := 0
	for i, child := range c.children {
		subs[i] = child.eval(ctx, f)
		if subs[i].Passed {
			passed++
		}
	}
	ok, label := passed == len(subs), "AND"
	if c.kind == Or {
		ok, label = passed > 0, "OR"
	}
	res := c.result(ok, "%s: %d of %d rules passed", label, passed, len(subs))
	res.SubResults = subs
	res.undecided = !ok && slices.ContainsFunc(subs, func(r Result) bool { return r.undecided })
	return res
}

// evalNot inverts its nested rule.
func (c *Compiled) evalNot(ctx context.Context, f Facts) Result {
	sub := c.children[0].eval(ctx, f)
	res := c.result(!sub.Passed, "NOT: nested rule '%s' failed (so NOT passes)", sub.RuleID)
	switch {
	case sub.undecided:
		res = c.result(false, "NOT: nested rule '%s' was cut short (so NOT fails)", sub.RuleID)
		res.undecided = true
	case sub.Passed:
		res.Explanation = fmt.Sprintf("NOT: nested rule '%s' passed (so NOT fails)", sub.RuleID)
	}
	res.SubResults = []Result{sub}
	return res
}
