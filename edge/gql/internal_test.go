package gql

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
)

func TestDocCacheReusesAndEvicts(t *testing.T) {
	s, err := NewSchema([]*ast.Source{{Input: "type Query { a: Int }"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := Limits{}.withDefaults()
	d1 := s.loadDocument("{ a }", l)
	d2 := s.loadDocument("{ a }", l)
	if d1 != d2 {
		t.Fatal("second load did not hit the cache")
	}
	for i := range 600 {
		s.loadDocument(fmt.Sprintf("{ a%d: a }", i), l)
	}
	if n := s.docs.len(); n != 512 {
		t.Fatalf("cache size = %d, want 512", n)
	}
	if s.loadDocument("{ a }", l) == d1 {
		t.Fatal("oldest entry was not evicted")
	}
}

type inner struct {
	Deep string `json:"deep"`
}

type sample struct {
	*inner
	Tagged  string `json:"tagged,omitempty"`
	Plain   int
	Skipped string `json:"-"`
	private string
}

func TestDefaultResolve(t *testing.T) {
	s := &Schema{structs: &structCache{}}
	v := &sample{inner: &inner{Deep: "d"}, Tagged: "t", Plain: 3, Skipped: "x", private: "p"}
	cases := []struct {
		name   string
		parent any
		field  string
		want   any
	}{
		{"map", map[string]any{"a": 1}, "a", 1},
		{"typed map", map[string]string{"a": "s"}, "a", "s"},
		{"json tag", v, "tagged", "t"},
		{"untagged", v, "Plain", 3},
		{"embedded", v, "deep", "d"},
		{"nil embedded", &sample{}, "deep", nil},
		{"skipped", v, "Skipped", nil},
		{"private", v, "private", nil},
		{"nil pointer", (*sample)(nil), "tagged", nil},
		{"scalar parent", 5, "a", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.defaultResolve(tc.parent, tc.field); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	cases := []struct {
		accept []string
		want   string
		ok     bool
	}{
		{nil, mediaJSON, true},
		{[]string{"application/graphql-response+json"}, mediaGraphQLJSON, true},
		{[]string{"text/html, */*;q=0.1"}, mediaJSON, true},
		{[]string{"application/json;q=0.9, application/graphql-response+json"}, mediaGraphQLJSON, true},
		{[]string{"text/html"}, "", false},
		{[]string{"application/json;q=0"}, "", false},
		{[]string{"application/json;q=x"}, "", false},
	}
	for _, tc := range cases {
		got, ok := negotiate(tc.accept)
		if got != tc.want || ok != tc.ok {
			t.Errorf("negotiate(%q) = %q, %v; want %q, %v", tc.accept, got, ok, tc.want, tc.ok)
		}
	}
}

func TestIntrospectionTypeOrderFollowsSDL(t *testing.T) {
	srcs := []*ast.Source{
		{Name: "b.graphql", Input: "type Query { z: Zed a: Alpha }"},
		{Name: "a.graphql", Input: "type Zed { x: Int }\ntype Alpha { y: Int }"},
	}
	s, err := NewSchema(srcs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range sortedDefs(s.schema.Types, s.srcOrder) {
		if !d.BuiltIn {
			names = append(names, d.Name)
		}
	}
	if fmt.Sprint(names) != "[Query Zed Alpha]" {
		t.Fatalf("order = %v, want SDL order [Query Zed Alpha]", names)
	}
}
