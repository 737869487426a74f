package gql_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

const benchQuery = `query Bench($first: Int, $f: ItemFilter) {
  items(first: $first, filter: $f) { id name color price count tags createdAt meta owner { id login } ...Extra }
  search(text: "x") { __typename ... on User { login } ... on Item { name } }
}
fragment Extra on Item { __typename oldName }`

// BenchmarkExecute measures parse → validate → execute of a typical query;
// "cached" reuses the document cache, "uncached" varies the text each time.
func BenchmarkExecute(b *testing.B) {
	fx := newFixture(b)
	vars := map[string]any{"first": int64(3), "f": map[string]any{"names": []any{"a"}}}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			run(b, fx.Schema, gql.Request{Query: benchQuery, Variables: vars})
		}
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			run(b, fx.Schema, gql.Request{Query: fmt.Sprintf("%s\n# %d", benchQuery, i), Variables: vars})
		}
	})
}

// run executes req and fails the benchmark on errors.
func run(b *testing.B, s *gql.Schema, req gql.Request) {
	resp := s.Execute(context.Background(), req, gql.Limits{})
	if len(resp.Errors) > 0 {
		b.Fatal(resp.Errors[0].Message)
	}
}
