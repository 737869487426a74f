package rules

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/expr-lang/expr"
)

// exprEnv is the whole world an Expression script sees: two variables and
// expr-lang's builtins. It has no methods, so scripts cannot call into Go.
type exprEnv struct {
	Data     any            `expr:"data"`
	Metadata map[string]any `expr:"metadata"`
}

// compileExpression compiles an expr-lang script that must yield a bool.
func (c *Compiled) compileExpression(script string) error {
	if script == "" {
		return badRule(c.id, "Expression needs a script")
	}
	if len(script) > MaxScriptLen {
		return badRule(c.id, "script is longer than %d bytes", MaxScriptLen)
	}
	program, err := expr.Compile(script, expr.Env(exprEnv{}), expr.AsBool())
	if err != nil {
		return badRule(c.id, "invalid expression: %v", err)
	}
	c.script, c.program = script, program
	return nil
}

// evalExpression runs the compiled script against f.
func (c *Compiled) evalExpression(f Facts) Result {
	env := exprEnv{Data: exprValue(f.Data)}
	if md, ok := exprValue(f.Metadata).(map[string]any); ok {
		env.Metadata = md
	}
	out, err := expr.Run(c.program, env)
	if err != nil {
		return c.result(false, "Expression '%s' failed: %v", clip(c.script), err)
	}
	passed, ok := out.(bool)
	if !ok {
		return c.result(false, "Expression '%s' did not yield a bool", clip(c.script))
	}
	return c.result(passed, "Expression '%s' evaluated to %t", clip(c.script), passed)
}

// exprValue copies a decoded JSON value, turning each json.Number into an
// int when it is integral and into a float64 otherwise, so that scripts can
// compare numbers with literals.
func exprValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.Atoi(string(x)); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = exprValue(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = exprValue(e)
		}
		return s
	default:
		return v
	}
}

// clip shortens s for use inside an explanation.
func clip(s string) string {
	const limit = 120
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
