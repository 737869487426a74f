package rules

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
)

// regexpWorkPerStep is how many (text byte × program instruction) pairs of
// regexp matching cost one step. Go's regexp takes up to 10–15 ns per pair
// (measured: `[a-z]{1000}c`, 1003 instructions, over 900 KiB took 9.3 s;
// `[a-z]{100}c` 1.3 s), and a step, one loop iteration, about 100 ns.
const regexpWorkPerStep = 8

// meter is what one evaluation has spent. evalExpression makes one per
// evaluation and hands it to the script as the hidden variable __meter; the
// calls that rewrite inserts into the script charge it. Only the goroutine
// running the VM uses it, so it needs no lock; it holds that evaluation's
// ctx, for the length of that evaluation only.
type meter struct {
	ctx    context.Context
	limits Limits
	bytes  int // string bytes and list or map elements copied so far
	steps  int // operators, calls, loop iterations and regexp work so far
}

// budgetError is the failure of an evaluation that would go over a budget.
type budgetError struct {
	budget string // "memory" or "step"
	limit  int
	unit   string
}

func (e *budgetError) Error() string {
	return fmt.Sprintf("exceeded its %s budget (%d %s)", e.budget, e.limit, e.unit)
}

// step charges n steps, then fails if the step budget is spent or the
// evaluation's ctx is done.
func (m *meter) step(n int) error {
	m.steps += n
	if m.steps > m.limits.MaxSteps {
		return &budgetError{budget: "step", limit: m.limits.MaxSteps, unit: "steps"}
	}
	select {
	case <-m.ctx.Done():
		return m.ctx.Err()
	default:
		return nil
	}
}

// alloc charges n bytes or elements about to be allocated, and one step.
func (m *meter) alloc(n int) error {
	m.bytes += n
	if m.bytes > m.limits.MemoryBudget {
		return &budgetError{budget: "memory", limit: m.limits.MemoryBudget, unit: "bytes"}
	}
	return m.step(1)
}

// size is what copying v costs: its length if it is a string, list or map.
func size(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []any:
		return len(x)
	case map[string]any:
		return len(x)
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.String, reflect.Slice, reflect.Array, reflect.Map:
		return rv.Len()
	}
	return 0
}

// meterFunctions are the functions rewrite inserts. Their names start with
// "__", which scripts may not use; all but __number take __meter first.
func meterFunctions() []expr.Option {
	return []expr.Option{
		function(&builtin.Function{Name: fnTick, Func: tick, Types: types(new(func(*meter) bool))}),
		function(&builtin.Function{Name: fnConcat, Func: concatCost, Types: types(new(func(*meter, any, any) bool))}),
		function(&builtin.Function{Name: fnRegexp, Func: regexpCost, Types: types(new(func(*meter, any, int) bool))}),
		function(&builtin.Function{Name: fnCharge, Func: charge, Validate: sameAs(1)}),
		function(&builtin.Function{Name: fnNumber, Func: number, Validate: sameAs(0)}),
	}
}

// The names of the functions rewrite inserts.
const (
	fnTick   = "__tick"
	fnConcat = "__concat"
	fnRegexp = "__regexp"
	fnCharge = "__charge"
	fnNumber = "__number"
	varMeter = "__meter"
)

// tick charges one step: __tick(__meter) before an operator, a builtin
// call or a loop iteration.
func tick(args ...any) (any, error) {
	return true, args[0].(*meter).step(1)
}

// concatCost charges the string a + b would build, before it is built:
// __concat(__meter, a, b). Other operands of + cost one step.
func concatCost(args ...any) (any, error) {
	a, okA := args[1].(string)
	b, okB := args[2].(string)
	if okA && okB {
		return true, args[0].(*meter).alloc(len(a) + len(b))
	}
	return true, args[0].(*meter).step(1)
}

// regexpCost charges matching text against a pattern of n instructions,
// before it runs: __regexp(__meter, text, n).
func regexpCost(args ...any) (any, error) {
	text, _ := args[1].(string)
	work := (len(text) + 1) * args[2].(int) / regexpWorkPerStep
	return true, args[0].(*meter).step(1 + work)
}

// charge charges the copy a builtin is about to make of x, and returns x:
// __charge(__meter, x).
func charge(args ...any) (any, error) {
	return args[1], args[0].(*meter).alloc(size(args[1]))
}

// number returns x if it is a number or a duration, the only things sum may
// add (it would otherwise concatenate strings unmetered): __number(x).
func number(args ...any) (any, error) {
	switch x := args[0].(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64, time.Duration, nil:
		return x, nil
	}
	return nil, fmt.Errorf("sum adds numbers only, not %T", args[0])
}

// function registers f as expr.Function does, but keeps f's Validate.
func function(f *builtin.Function) expr.Option {
	return func(c *conf.Config) { c.Functions[f.Name] = f }
}

// types returns the function types of the given func pointers.
func types(fns ...any) []reflect.Type {
	ts := make([]reflect.Type, len(fns))
	for i, f := range fns {
		ts[i] = reflect.TypeOf(f).Elem()
	}
	return ts
}

// sameAs types a call as the type of its i-th argument.
func sameAs(i int) func([]reflect.Type) (reflect.Type, error) {
	return func(args []reflect.Type) (reflect.Type, error) {
		if i >= len(args) {
			return nil, fmt.Errorf("want at least %d arguments", i+1)
		}
		return args[i], nil
	}
}
