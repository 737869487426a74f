package gql_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/vektah/gqlparser/v2/ast"
)

// TestGoValuesComplete pins how resolved Go values complete: a leaf behind
// a pointer is its value, a nil pointer is null, a nil slice is an empty
// list (nullable or not), an untyped nil list is null.
func TestGoValuesComplete(t *testing.T) {
	type item struct {
		Name  *string  `json:"name"`
		Tags  []string `json:"tags"`
		Extra []string `json:"extra"`
	}
	name := "n"
	n := 7
	sdl := `type Query { s: String i: Int j: Int items: [Item!]! none: [String] nilTyped: [String] }
	        type Item { name: String tags: [String!]! extra: [String] }`
	s, err := gql.NewSchema([]*ast.Source{{Input: sdl}}, gql.Resolvers{
		"Query.s":        func(context.Context, gql.Params) (any, error) { return &name, nil },
		"Query.i":        func(context.Context, gql.Params) (any, error) { return &n, nil },
		"Query.j":        func(context.Context, gql.Params) (any, error) { return (*int)(nil), nil },
		"Query.items":    func(context.Context, gql.Params) (any, error) { return []item{{Name: &name}, {}}, nil },
		"Query.none":     func(context.Context, gql.Params) (any, error) { return nil, nil },
		"Query.nilTyped": func(context.Context, gql.Params) (any, error) { return []string(nil), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	resp := s.Execute(context.Background(), gql.Request{Query: `{ s i j items { name tags extra } none nilTyped }`}, gql.Limits{})
	if len(resp.Errors) > 0 {
		t.Fatal(resp.Errors)
	}
	got, _ := json.Marshal(resp.Data)
	want := `{"s":"n","i":7,"j":null,"items":[{"name":"n","tags":[],"extra":[]},{"name":null,"tags":[],"extra":[]}],"none":null,"nilTyped":[]}`
	if !jsonSame(t, got, want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func jsonSame(t *testing.T, a []byte, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
