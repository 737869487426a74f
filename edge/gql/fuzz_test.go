package gql_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

// FuzzExecute runs arbitrary documents and variables against the test
// schema: it must never panic, must always produce valid JSON, and must
// finish within a bound whatever the fragments do (issue 12).
func FuzzExecute(f *testing.F) {
	seeds := [][2]string{
		{`{ items { id name owner { login } } }`, `{}`},
		{`query ($f: ItemFilter) { echo(filter: $f) }`, `{"f": {"names": ["a"], "page": {"first": 1}}}`},
		{`query ($by: Lookup!) { user(by: $by) { id } }`, `{"by": {"id": 1}}`},
		{`{ search(text: "x") { ... on Item { failingNonNull } ... on User { items { panicking } } } }`, ``},
		{`mutation { increment(by: 2) addItem(name: "n") { id } }`, `null`},
		{`{ __schema { types { name fields { name } } } }`, `[]`},
		{`query ($n: Int, $c: Color) { echo(n: $n, color: $c, list: [1, 2]) }`, `{"n": 1e400, "c": "RED"}`},
		{`{ a: item(id: 1) { ...F } } fragment F on Item { id ...F }`, `{}`},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	for _, q := range fragmentHeavySeeds() {
		f.Add(q, `{}`)
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, query, vars string) {
		var v map[string]any
		_ = json.Unmarshal([]byte(vars), &v)
		req := gql.Request{Query: query, Variables: v}
		start := time.Now()
		resp := fx.Schema.Execute(context.Background(), req, gql.Limits{Timeout: 100 * time.Millisecond})
		if d := time.Since(start); d > fuzzBound {
			t.Fatalf("Execute took %v, more than %v, for %q", d, fuzzBound, query)
		}
		b, err := json.Marshal(resp)
		if err != nil || !json.Valid(b) {
			t.Fatalf("invalid response JSON %q: %v", b, err)
		}
	})
}

// fuzzBound is the most one fuzzed Execute may take: the 100ms request
// timeout, plus validation, which the timeout does not cover (about 250ms
// for the worst 2,000-token documents found), plus room for the fuzzer's
// instrumentation on two shared cores.
const fuzzBound = 2 * time.Second

// fragmentHeavySeeds are documents whose fragments would expand to far
// more than they say: doubling chains, aliases times fragments, cycles,
// unknown fragments, and nesting just under and over the limits.
func fragmentHeavySeeds() []string {
	return []string{
		fragmentBomb(28, "issue 12"),
		fragmentBomb(12, "expands to 4,096 fields: allowed"),
		aliasBomb(),
		`{ items { ...A } } fragment A on Item { owner { ...B } ...A } fragment B on User { items { ...A } }`,
		`{ items { ...Nope ...F } } fragment F on Item { id ...F ...G } fragment G on Item { ...F }`,
		`mutation { addItem(name: "x") { ...F0 } } fragment F0 on Item { id ...F1 ...F1 } fragment F1 on Item { owner { items { ...F0 } } }`,
		`{ items { ... on Item { ...F0 ...F0 } } } fragment F0 on Item { a: owner { ...U } b: owner { ...U } } fragment U on User { x: items { id } y: items { ...F0 } }`,
		`subscription { itemAdded { ...F0 } } fragment F0 on Item { id ...F1 ...F1 ...F1 } fragment F1 on Item { id ...F2 ...F2 ...F2 } fragment F2 on Item { id }`,
	}
}
