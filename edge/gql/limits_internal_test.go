package gql

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// parseDoc parses q without limits, failing t on a syntax error.
func parseDoc(t *testing.T, q string) *ast.QueryDocument {
	t.Helper()
	doc, err := parser.ParseQuery(&ast.Source{Input: q})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// doublingChain has n fragments, each spreading the next one twice.
func doublingChain(n int) string {
	var b strings.Builder
	b.WriteString("{ x { ...F0 } }\n")
	for i := range n {
		fmt.Fprintf(&b, "fragment F%d on T { a ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on T { a }\n", n)
	return b.String()
}

func TestMeasureExpandsEachFragmentOnce(t *testing.T) {
	cases := []struct {
		name          string
		query         string
		depth, fields int
	}{
		{"one field", `{ a }`, 1, 1},
		{"nested", `{ a { b c { d } } }`, 3, 4},
		{"inline fragment", `{ a { ... on T { b } } }`, 2, 2},
		{"spread twice counts twice", `{ x { ...F ...F } } fragment F on T { a b { c } }`, 3, 7},
		{"fragments add no depth", `{ x { ...F } } fragment F on T { ...G } fragment G on T { a }`, 2, 2},
		{"cycle counts as empty", `{ x { ...F } } fragment F on T { a ...G } fragment G on T { b ...F }`, 2, 3},
		{"self spread", `{ x { ...F } } fragment F on T { a ...F }`, 2, 2},
		{"unknown fragment", `{ x { ...Nope } }`, 1, 1},
		{"introspection adds no depth", `{ __schema { types { fields { name } } } }`, 1, 4},
		{"doubling chain", doublingChain(28), 2, 1 + 1<<29 - 1},
		{"saturates", doublingChain(60), 2, countCap},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := parseDoc(t, tc.query)
			got := newMeasurer(doc).set(doc.Operations[0].SelectionSet)
			if got.depth != tc.depth || got.fields != tc.fields {
				t.Fatalf("got depth %d, fields %d; want %d, %d", got.depth, got.fields, tc.depth, tc.fields)
			}
		})
	}
}

func TestCheckLimitsIsLinearInTheDocument(t *testing.T) {
	// 400 levels would be 2^400 fields walked one by one.
	doc := parseDoc(t, doublingChain(400))
	start := time.Now()
	errs, _ := checkLimits(doc, docLimits{depth: 15, aliases: 30, fields: DefaultMaxFields})
	elapsed := time.Since(start)
	t.Logf("400-level doubling chain: %v", elapsed)
	if elapsed > 100*time.Millisecond {
		t.Fatalf("took %v", elapsed)
	}
	want := "Query selects over 1099511627776 fields once fragments are expanded, more than the maximum of 5000."
	if len(errs) != 1 || errs[0].Message != want {
		t.Fatalf("errors = %v, want %q", errs, want)
	}
}

func TestCheckLimitsFieldBoundary(t *testing.T) {
	doc := parseDoc(t, `{ x { ...F ...F ...F } } fragment F on T { a b }`) // 7 fields
	cases := []struct {
		max  int
		want string
	}{
		{7, ""},
		{6, "Query selects 7 fields once fragments are expanded, more than the maximum of 6."},
	}
	for _, tc := range cases {
		errs, _ := checkLimits(doc, docLimits{depth: 15, aliases: 30, fields: tc.max})
		got := ""
		if len(errs) > 0 {
			got = errs[0].Message
		}
		if got != tc.want || len(errs) > 1 {
			t.Errorf("max %d: errors %v, want %q", tc.max, errs, tc.want)
		}
	}
}

func TestCheckLimitsReportsEachLimit(t *testing.T) {
	doc := parseDoc(t, `query A { a: x { b: y { z } } } query B { w } fragment F on T { c: q }`)
	errs, _ := checkLimits(doc, docLimits{depth: 2, aliases: 2, fields: 2})
	var got []string
	for _, e := range errs {
		got = append(got, e.Message)
	}
	want := []string{
		"Query depth 3 exceeds the maximum of 2.",
		"Query selects 3 fields once fragments are expanded, more than the maximum of 2.",
		"Document has 3 aliases, more than the maximum of 2.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCollectFieldsIsSharedWithinAnExecution(t *testing.T) {
	s, err := NewSchema([]*ast.Source{{Input: "type Query { t: T } type T { a: Int b: Int }"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc := parseDoc(t, `{ t { a ...F } } fragment F on T { b }`)
	set := doc.Operations[0].SelectionSet[0].(*ast.Field).SelectionSet
	e := &execution{s: s, doc: doc}
	typ := s.schema.Types["T"]
	first, again := e.collectFields(typ, set), e.collectFields(typ, set)
	if len(first) != 2 || &first[0] != &again[0] {
		t.Fatalf("second CollectFields was not shared: %v, %v", first, again)
	}
	if other := (&execution{s: s, doc: doc}).collectFields(typ, set); &other[0] == &first[0] {
		t.Fatal("another execution shared the groups")
	}
}
