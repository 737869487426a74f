package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// exprEnv is the whole world an Expression script sees: two variables and
// the available builtins. It has no methods, so scripts cannot call into
// Go. Meter is hidden: rewrite refuses scripts that name it.
type exprEnv struct {
	Data     any            `expr:"data"`
	Metadata map[string]any `expr:"metadata"`
	Meter    *meter         `expr:"__meter"`
}

// compileExpression compiles an expr-lang script that must yield a bool,
// then runs it once on an empty token: a script that goes over a budget
// even there is refused now rather than failing at every evaluation.
func (c *Compiled) compileExpression(script string) error {
	if script == "" {
		return badRule(c.id, "Expression needs a script")
	}
	if len(script) > c.limits.MaxScriptBytes && !c.limits.stored {
		return badRule(c.id, "script is longer than %d bytes", c.limits.MaxScriptBytes)
	}
	program, err := c.limits.compileScript(script)
	if err != nil {
		return badRule(c.id, "invalid expression: %s", clientText(err))
	}
	c.script, c.program = script, program
	if c.limits.stored {
		return nil
	}
	empty := Facts{Metadata: map[string]any{}, Data: map[string]any{}}
	// No wall clock here: the step and memory budgets bound the trial, so
	// whether a script is accepted never depends on how busy the machine is.
	if _, err := c.exec(context.Background(), empty); err != nil {
		if why, over := c.limits.overBudget(err); over {
			return badRule(c.id, "expression %s even on an empty token", why)
		}
	}
	return nil
}

// compileScript compiles script with rewrite applied and expr-lang's
// optimizer off, so that what runs is exactly the metered tree.
func (l Limits) compileScript(script string) (*vm.Program, error) {
	w := &rewrite{}
	maxNodes := uint(l.MaxNodes)
	if l.stored {
		maxNodes = 1 << 20 // admitted already: only bound the program's size
	}
	opts := []expr.Option{expr.Env(exprEnv{}), expr.AsBool(), expr.Optimize(false),
		expr.MaxNodes(maxNodes), expr.Patch(w)}
	opts = append(opts, meterFunctions()...)
	for _, name := range unavailableBuiltins() {
		opts = append(opts, expr.DisableBuiltin(name))
	}
	program, err := expr.Compile(script, opts...)
	if w.err != nil {
		return nil, w.err
	}
	return program, err
}

// run runs the compiled script against f, within c's limits and until ctx
// is done.
func (c *Compiled) run(ctx context.Context, f Facts) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.limits.Timeout)
	defer cancel()
	return c.exec(ctx, f)
}

// exec runs the compiled script against f within c's step and memory
// budgets, until ctx is done.
func (c *Compiled) exec(ctx context.Context, f Facts) (any, error) {
	env := exprEnv{Data: exprValue(f.Data), Meter: &meter{ctx: ctx, limits: c.limits}}
	if md, ok := exprValue(f.Metadata).(map[string]any); ok {
		env.Metadata = md
	}
	machine := vm.VM{MemoryBudget: uint(c.limits.MemoryBudget)}
	return machine.Run(c.program, env)
}

// evalExpression runs the compiled script against f.
func (c *Compiled) evalExpression(ctx context.Context, f Facts) Result {
	out, err := c.run(ctx, f)
	if err != nil {
		why, undecided := c.limits.explain(ctx, err)
		res := c.result(false, "Expression '%s' %s", clip(c.script), why)
		res.undecided = undecided
		return res
	}
	passed, ok := out.(bool)
	if !ok {
		return c.result(false, "Expression '%s' did not yield a bool", clip(c.script))
	}
	return c.result(passed, "Expression '%s' evaluated to %t", clip(c.script), passed)
}

// vmBudgetExceeded is the message of expr-lang's VM when it goes over its
// MemoryBudget (vm.VM.memGrow panics with it).
const vmBudgetExceeded = "memory budget exceeded"

// overBudget says which budget err reports a run went over, if any.
func (l Limits) overBudget(err error) (string, bool) {
	var b *budgetError
	var f *file.Error
	switch {
	case errors.As(err, &b):
		return b.Error(), true
	case errors.As(err, &f) && f.Message == vmBudgetExceeded:
		return fmt.Sprintf("exceeded its memory budget (%d elements)", l.MemoryBudget), true
	}
	return "", false
}

// explain words why a run given ctx failed with err, and reports whether
// it was cut short (over a budget, or stopped) rather than failing.
func (l Limits) explain(ctx context.Context, err error) (string, bool) {
	if why, over := l.overBudget(err); over {
		return why, true
	}
	switch {
	case !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled):
		return "failed: " + clientText(err), false
	case ctx.Err() != nil:
		return "stopped: " + ctx.Err().Error(), true
	}
	return fmt.Sprintf("exceeded its time budget (%v)", l.Timeout), true
}

// goTypes are the Go words in expr-lang's messages and what a client,
// who writes JSON, calls them.
var goTypes = strings.NewReplacer(
	"map[string]interface {}", "object", "map[string]any", "object",
	"[]interface {}", "array", "[]any", "array", "interface {}", "value",
	"time.Time", "time", "time.Duration", "duration", "float64", "number", "int64", "int",
	"runtime error: ", "")

// clientText is an expr-lang error as a client should read it: its
// message without the source excerpt, Go's type names in JSON's words.
func clientText(err error) string {
	msg := err.Error()
	var f *file.Error
	if errors.As(err, &f) {
		msg = f.Message
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return goTypes.Replace(msg)
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
