package gql_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

// FuzzExecute runs arbitrary documents and variables against the test
// schema: it must never panic and must always produce valid JSON.
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
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, query, vars string) {
		var v map[string]any
		_ = json.Unmarshal([]byte(vars), &v)
		req := gql.Request{Query: query, Variables: v}
		resp := fx.Schema.Execute(context.Background(), req, gql.Limits{Timeout: 100 * time.Millisecond})
		b, err := json.Marshal(resp)
		if err != nil || !json.Valid(b) {
			t.Fatalf("invalid response JSON %q: %v", b, err)
		}
	})
}
