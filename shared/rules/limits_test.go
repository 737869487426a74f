package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// doubling is the script of issue 12: a 32-byte string doubled n times by
// a let-chain, starting from seed (a literal, or data.s).
func doubling(seed string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "let v0=%s; ", seed)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "let v%d=v%d+v%d; ", i, i-1, i-1)
	}
	fmt.Fprintf(&b, "len(v%d)>0", n)
	return b.String()
}

const seed32 = `"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"`

// expression returns an Expression rule r1 running script.
func expression(script string) Rule {
	return Rule{ID: "r1", Condition: Condition{Type: Expression, Script: script}}
}

// bigFacts is a token whose data.s holds n bytes.
func bigFacts(t testing.TB, n int) Facts {
	t.Helper()
	data, err := json.Marshal(map[string]any{"s": strings.Repeat("ab", n/2), "xs": []int{1, 2, 3}, "short": "abc"})
	if err != nil {
		t.Fatal(err)
	}
	return facts(t, `{"status":"ok"}`, string(data))
}

// cost is what one call took: wall time and bytes allocated.
type cost struct {
	took  time.Duration
	alloc uint64
}

func (c cost) String() string {
	return fmt.Sprintf("%v, %.1f MiB allocated", c.took.Round(10*time.Microsecond), float64(c.alloc)/(1<<20))
}

// measure runs fn and returns what it cost.
func measure(fn func()) cost {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	fn()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	return cost{took: took, alloc: after.TotalAlloc - before.TotalAlloc}
}

// unchecked compiles script without Compile's trial run on an empty token,
// to show that evaluation itself is bounded.
func unchecked(t testing.TB, script string) *Compiled {
	t.Helper()
	c := &Compiled{id: "r1", kind: Expression, limits: DefaultLimits(), script: script}
	p, err := c.limits.compileScript(script)
	if err != nil {
		t.Fatalf("compileScript: %v", err)
	}
	c.program = p
	return c
}

// wantBounded fails the test unless res did not pass for the reason want
// and c stayed within a second and 64 MiB.
func wantBounded(t *testing.T, res Result, c cost, want string) {
	t.Helper()
	t.Logf("%s -> %s", c, res.Explanation)
	if res.Passed || !strings.Contains(res.Explanation, want) {
		t.Errorf("result = %+v, want a failure saying %q", res, want)
	}
	if c.took > time.Second || c.alloc > 64<<20 {
		t.Errorf("evaluation cost %s, want under 1s and 64 MiB", c)
	}
}

// Before: doubling a 32-byte string 30 times asked for 32 GiB; under a
// 4 GB ulimit the process died "out of memory" after 15 s at 2.1 GB RSS,
// and 24 doublings took 7.6 s and 1 GiB.
func TestDoublingStringStopsAtMemoryBudget(t *testing.T) {
	script := doubling(seed32, 30)
	t.Logf("script: %d bytes", len(script))
	var res Result
	c := measure(func() { res = unchecked(t, script).Evaluate(Facts{}) })
	wantBounded(t, res, c, "exceeded its memory budget (1048576 bytes)")

	fromData, f := mustCompile(t, mustJSON(t, expression(doubling("data.short", 30)))), bigFacts(t, 1<<10)
	c = measure(func() { res = fromData.Evaluate(f) })
	wantBounded(t, res, c, "exceeded its memory budget (1048576 bytes)")
}

// Before: 2.3 s and 888 MiB allocated per evaluation, whatever the deadline.
func TestUpperInLoopStopsEarly(t *testing.T) {
	c := mustCompile(t, mustJSON(t, expression(`all(1..999, {upper(data.s) != ""})`)))
	f := bigFacts(t, 900<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var res Result
	cst := measure(func() { res = c.EvaluateContext(ctx, f) })
	wantBounded(t, res, cst, "exceeded its memory budget")
}

// Before: the scan below ran to its end, 900 Ki scans of 900 KiB at 13 µs
// each, about 12 s, whatever the caller's deadline.
func TestEvaluationStopsAtDeadline(t *testing.T) {
	const scan = `all(1..len(data.s), {!(data.s contains "zz")})`
	f := bigFacts(t, 900<<10)
	relaxed := Limits{MaxSteps: 1 << 40, Timeout: time.Hour}
	background := func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }
	tests := []struct {
		name, script string
		limits       Limits
		ctx          func() (context.Context, context.CancelFunc)
		want         string
	}{
		{"caller's deadline", scan, relaxed, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, "stopped: context deadline exceeded"},
		{"caller gone", scan, relaxed, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, "stopped: context canceled"},
		{"own timeout", scan, Limits{MaxSteps: 1 << 40}, background, "exceeded its time budget (100ms)"},
		{"step budget", `all(1..len(data.s), {# > 0})`, Limits{MaxSteps: 100_000, Timeout: time.Hour}, background,
			"exceeded its step budget (100000 steps)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.limits.Compile(expression(tc.script))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := tc.ctx()
			defer cancel()
			var res Result
			cst := measure(func() { res = c.EvaluateContext(ctx, f) })
			wantBounded(t, res, cst, tc.want)
		})
	}
}

func TestCutShortRuleFailsEvenUnderNot(t *testing.T) {
	heavy := expression(`all(1..len(data.s), {upper(data.s) != ""})`)
	for _, tc := range []struct {
		name string
		rule Rule
	}{
		{"not", Rule{ID: "n", Condition: Condition{Type: Not, Rule: &heavy}}},
		{"not of or", Rule{ID: "n", Condition: Condition{Type: Not, Rule: &Rule{ID: "o",
			Condition: Condition{Type: Or, Rules: []Rule{heavy, expression("data.s == \"x\"")}}}}}},
		{"not of and", Rule{ID: "n", Condition: Condition{Type: Not, Rule: &Rule{ID: "a",
			Condition: Condition{Type: And, Rules: []Rule{heavy, expression("data.s != \"x\"")}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := mustCompile(t, mustJSON(t, tc.rule)).Evaluate(bigFacts(t, 900<<10))
			if res.Passed || !strings.Contains(res.Explanation, "was cut short") {
				t.Fatalf("result = %+v", res)
			}
		})
	}
	res := mustCompile(t, mustJSON(t, Rule{ID: "n", Condition: Condition{Type: Not, Rule: &heavy}})).Evaluate(bigFacts(t, 8))
	if res.Passed || res.undecided || !res.SubResults[0].Passed {
		t.Fatalf("within budget the rule is decided: %+v", res)
	}
}

// Before: 9.3 s for one match of 900 KiB, which no deadline could stop.
func TestRegexpChargedBeforeItRuns(t *testing.T) {
	c := mustCompile(t, mustJSON(t, expression(`data.s matches "[a-z]{1000}c"`)))
	f := bigFacts(t, 900<<10)
	var res Result
	cst := measure(func() { res = c.Evaluate(f) })
	wantBounded(t, res, cst, "exceeded its step budget")
	if res := c.Evaluate(facts(t, `{}`, `{"s":"abc"}`)); res.Passed {
		t.Errorf("short text: %+v", res)
	}
}

func TestCompileRefusesCostlyScripts(t *testing.T) {
	tests := []struct {
		name, script string
		limits       Limits
		want         string
	}{
		{"long script", strings.Repeat("1", MaxScriptLen+1), Limits{}, "script is longer than 4096 bytes"},
		{"own script cap", "data.a == 1", Limits{MaxScriptBytes: 10}, "script is longer than 10 bytes"},
		{"too many nodes", strings.Repeat("1 + ", 600) + "1 > 0", Limits{}, "exceeds maximum allowed nodes"},
		{"own node cap", "data.a + 1 > data.b + 2", Limits{MaxNodes: 5}, "exceeds maximum allowed nodes"},
		{"doubling literal", doubling(seed32, 30), Limits{}, "exceeded its memory budget (1048576 bytes) even on an empty token"},
		{"doubling in reduce", `reduce(1..30, #acc + #acc, "a") != ""`, Limits{}, "exceeded its memory budget"},
		{"huge range", `len(1..2000000) > 0`, Limits{}, "exceeded its memory budget (1048576 elements)"},
		{"step hog", `all(1..100000, {# > 0})`, Limits{MaxSteps: 1000}, "exceeded its step budget (1000 steps) even on an empty token"},
		{"repeat", `repeat("a", 1000000) != ""`, Limits{}, "repeat is not available"},
		{"join", `join(["a"]) != ""`, Limits{}, "join is not available"},
		{"toJSON", `toJSON(data) != ""`, Limits{}, "toJSON is not available"},
		{"reserved name", `__meter == nil`, Limits{}, "the name __meter is reserved"},
		{"reserved let", `let __v1 = 1; __v1 > 0`, Limits{}, "the name __v1 is reserved"},
		{"env", `$env.data != nil`, Limits{}, "the name $env is reserved"},
		{"method call", `now().Format(data.s) != ""`, Limits{}, "method calls are not available"},
		{"dynamic pattern", `data.s matches data.p`, Limits{}, "matches needs a literal pattern"},
		{"bad pattern", `data.s matches "("`, Limits{}, "invalid pattern"},
		{"trim cutset", `trim(data.s, data.c) == ""`, Limits{}, "trim takes no cutset"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c *Compiled
			var err error
			cst := measure(func() { c, err = tc.limits.Compile(expression(tc.script)) })
			if !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "rule 'r1': ") {
				t.Fatalf("Compile = %v, %v; want BAD_USER_INPUT with %q", c, err, tc.want)
			}
			if cst.took > time.Second {
				t.Errorf("Compile took %s", cst)
			}
		})
	}
}

func TestMeteredScriptsKeepTheirMeaning(t *testing.T) {
	f := facts(t, `{"status":"approved"}`, `{"n":5,"f":1.5,"s":"abc","xs":[1,2,3],"tags":["a","b"],"m":{"k":1},"d":"2024-01-02T03:04:05Z"}`)
	for _, script := range []string{
		`data.n + 1 == 6`, `data.f + 1 == 2.5`, `data.s + "d" == "abcd"`, `"a" + "b" + "c" == "abc"`,
		`let x = data.n; x + x == 10`, `1 + 2 * 3 == 7`, `reduce(data.xs, #acc + #, 0) == 6`,
		`sum(data.xs) == 6`, `sum(data.xs, # * 2) == 12`, `sum([1, 2.5]) == 3.5`,
		`upper(data.s) == "ABC"`, `lower("ABC") == data.s`, `"b" in split("a,b", ",")`,
		`len(concat(data.xs, data.tags)) == 5`, `keys(data.m) == ["k"]`, `values(data.m) == [1]`,
		`data.s matches "^a.c$"`, `not (data.s matches "z")`, `trim(" x ") == "x"`,
		`all(data.xs, # > 0) && any(data.tags, # == "b") && none(data.xs, # > 3)`,
		`count(data.xs, # > 1) == 2 && count([true, false]) == 1`, `map(data.xs, # + 1) == [2, 3, 4]`,
		`filter(data.xs, # > 1) | len() == 2`, `len(sort(data.xs, "desc")) == 3`,
		`date(data.d) + duration("1h") > date(data.d)`, `now() - duration("1h") < now()`,
		`data?.missing?.x ?? true`, `metadata.status == "approved" && data.n in 1..9`,
	} {
		if res := mustCompile(t, mustJSON(t, expression(script))).Evaluate(f); !res.Passed {
			t.Errorf("%s: %s", script, res.Explanation)
		}
	}
}

func TestLimitsDefaults(t *testing.T) {
	want := Limits{MaxScriptBytes: MaxScriptLen, MaxNodes: DefaultMaxNodes, MemoryBudget: DefaultMemoryBudget,
		MaxSteps: DefaultMaxSteps, Timeout: DefaultTimeout}
	if got := DefaultLimits(); got != want {
		t.Fatalf("DefaultLimits() = %+v, want %+v", got, want)
	}
	if got := (Limits{MaxSteps: 7, Timeout: -1}).withDefaults(); got.MaxSteps != 7 || got.Timeout != DefaultTimeout {
		t.Fatalf("withDefaults kept %+v", got)
	}
	c, err := Limits{MemoryBudget: 100}.Compile(expression(`len(data.s + data.s) > 0`))
	if err != nil {
		t.Fatal(err)
	}
	res := c.Evaluate(facts(t, `{}`, `{"s":"`+strings.Repeat("x", 60)+`"}`))
	if res.Passed || !strings.Contains(res.Explanation, "memory budget (100 bytes)") {
		t.Fatalf("own memory budget: %+v", res)
	}
}

// mustJSON encodes v or fails the test.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzExpression: whatever the script, compiling and evaluating it never
// panics and stays within the limits' time (a trial run at compile, one
// evaluation) and a bounded allocation.
func FuzzExpression(f *testing.F) {
	for _, s := range []string{
		doubling(seed32, 30), doubling("data.s", 30), `all(1..999, {upper(data.s) != ""})`,
		`reduce(1..30, #acc + #acc, "a") != ""`, `data.s matches "[a-z]{1000}c"`,
		`map(1..1000, {1..1000}) != nil`, `groupBy(1..100000, # % 7) != nil`,
		`sortBy(map(1..100000, -#), #)[0] < 0`, `sum(map(1..100, {data.s})) > 0`,
		`len(concat(1..500000, 1..500000)) > 0`, `keys(data) != nil && values(data) != nil`,
		`count(1..1000000) > 0`, `data.xs | map(# * 2) | sum() > 0`, `split(data.s, "") != nil`,
		`let a = upper(data.s); let b = lower(a); a + b != ""`, `1 + "a" == 2`, `data.n / 0 > 1`,
		`data.xs[100] == 1`, `int("x") > 0`, `date("nonsense") > now()`, `-9223372036854775808 / -1 > 0`,
	} {
		f.Add(s)
	}
	fs := bigFacts(f, 4<<10)
	f.Fuzz(func(t *testing.T, script string) {
		var res Result
		cst := measure(func() {
			c, err := Compile(expression(script))
			if err != nil {
				return
			}
			res = c.Evaluate(fs)
			if res.RuleID != "r1" || res.Explanation == "" || strings.HasPrefix(res.Explanation, "internal error") {
				t.Fatalf("script %q: bad result %+v", script, res)
			}
		})
		if cst.took > 3*time.Second || cst.alloc > 256<<20 {
			t.Fatalf("script %q cost %s (%s)", script, cst, res.Explanation)
		}
	})
}

// BenchmarkEvaluateExpression: what the meter adds to an ordinary guard
// (before it: 2.8 µs and 3.2 µs per evaluation on the 2-core CI box).
func BenchmarkEvaluateExpression(b *testing.B) {
	f := facts(b, `{"status":"approved"}`, `{"priority":9,"tags":["urgent","finance"],"items":[{"qty":1},{"qty":2}]}`)
	for _, script := range []string{
		`data.priority > 5 && metadata.status == "approved"`,
		`"urgent" in data.tags && all(data.items, {.qty > 0})`,
	} {
		c := mustCompile(b, mustJSON(b, expression(script)))
		b.Run(script, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !c.Evaluate(f).Passed {
					b.Fatal("did not pass")
				}
			}
		})
	}
}

// TestExpressionErrorsSpeakJSON: what a failing script tells a client
// names no Go type and no Go runtime.
func TestExpressionErrorsSpeakJSON(t *testing.T) {
	cases := []struct{ script, data string }{
		{`1%00 > 0`, `{}`},
		{`data.deep`, `{"deep":{"a":1}}`},
		{`data.s.foo == 1`, `{"s":"x"}`},
	}
	for _, tc := range cases {
		c, err := Compile(Rule{ID: "r", Condition: Condition{Type: Expression, Script: tc.script}})
		var msg string
		if err != nil {
			msg = err.Error()
		} else {
			f, ferr := NewFacts(nil, json.RawMessage(tc.data))
			if ferr != nil {
				t.Fatal(ferr)
			}
			msg = c.Evaluate(f).Explanation
		}
		for _, leak := range []string{"interface {}", "runtime error", "map[string]", "float64"} {
			if strings.Contains(msg, leak) {
				t.Errorf("%s on %s: %q names %q", tc.script, tc.data, msg, leak)
			}
		}
	}
	if _, err := Compile(Rule{ID: "r", Condition: Condition{Type: Expression, Script: `now() > 0`}}); err == nil || strings.Contains(err.Error(), "time.Time") {
		t.Errorf("now() > 0: %v", err)
	}
}

// TestStoredRulesIgnoreAdmissionLimits: a script admitted under generous
// limits still compiles, as a stored rule, under tighter admission limits,
// and its evaluation is still bounded.
func TestStoredRulesIgnoreAdmissionLimits(t *testing.T) {
	r := Rule{ID: "r", Condition: Condition{Type: Expression, Script: `data.a > 1 && data.b > 2 && data.c > 3`}}
	tight := Limits{MaxScriptBytes: 10, MaxNodes: 3}
	if _, err := tight.Compile(r); err == nil {
		t.Fatal("admission limits did not refuse the script")
	}
	c, err := tight.Stored().Compile(r)
	if err != nil {
		t.Fatalf("stored: %v", err)
	}
	f, _ := NewFacts(nil, json.RawMessage(`{"a":2,"b":3,"c":4}`))
	if res := c.Evaluate(f); !res.Passed {
		t.Fatalf("stored rule: %+v", res)
	}
}
