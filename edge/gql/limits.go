package gql

import (
	"strconv"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/core"
)

// DefaultMaxFields is the default bound on the fields one operation selects
// once every fragment spread is expanded in place (a spread counts each time
// it appears; list lengths are not known and do not count). GraphiQL's
// introspection query counts 227 and the largest query in the system tests
// 13, so 5,000 leaves room while stopping a document that asks for millions
// of fields with a kilobyte of nested spreads (issue 12: 2^28 fields).
const DefaultMaxFields = 5000

// countCap is where field and alias counts saturate: far above any limit,
// far below overflow, whatever the document.
const countCap = 1 << 40

// docLimits are the limits checked on a parsed document before the
// gqlparser rules run. They take part in the document cache key.
type docLimits struct {
	depth, aliases, fields int
}

// docLimitsOf returns the document limits of l (with defaults applied).
func docLimitsOf(l Limits) docLimits {
	return docLimits{depth: l.MaxDepth, aliases: l.MaxAliases, fields: l.MaxFields}
}

// checkLimits rejects operations deeper than lim.depth or selecting more
// than lim.fields fields with fragments expanded, and documents with more
// than lim.aliases aliases in their text. It runs in time linear in the
// document: each fragment is measured once, whatever the number of spreads.
// It runs before validation, so it tolerates unknown fragments and cycles
// (they count as empty; validation reports them).
// It also names the (last) limit that refused the document.
func checkLimits(doc *ast.QueryDocument, lim docLimits) (errs gqlerror.List, limit string) {
	m := newMeasurer(doc)
	for _, op := range doc.Operations {
		s := m.set(op.SelectionSet)
		if s.depth > lim.depth {
			errs, limit = append(errs, limitError(op, "Query depth %d exceeds the maximum of %d.", s.depth, lim.depth)), "depth"
		}
		if s.fields > lim.fields {
			errs, limit = append(errs, limitError(op, "Query selects %s fields once fragments are expanded, more than the maximum of %d.", countText(s.fields), lim.fields)), "fields"
		}
	}
	if n := documentAliases(doc); n > lim.aliases && len(doc.Operations) > 0 {
		errs, limit = append(errs, limitError(doc.Operations[0], "Document has %d aliases, more than the maximum of %d.", n, lim.aliases)), "aliases"
	}
	return errs, limit
}

// limitError is a validation error located at op.
func limitError(op *ast.OperationDefinition, format string, args ...any) *gqlerror.Error {
	return gqlerror.ErrorPosf(op.Position, format, args...)
}

// countText formats a saturating count.
func countText(n int) string {
	if n >= countCap {
		return "over " + strconv.Itoa(countCap)
	}
	return strconv.Itoa(n)
}

// measure is the size of a selection set with its spreads expanded.
type measure struct {
	depth  int // field nesting; introspection roots count 1
	fields int // fields selected, saturating at countCap
}

// add returns m and o side by side: deepest depth, summed fields.
func (m measure) add(o measure) measure {
	return measure{depth: max(m.depth, o.depth), fields: min(m.fields+o.fields, countCap)}
}

// measurer measures selection sets, memoising fragments.
type measurer struct {
	frags map[string]*ast.FragmentDefinition // first definition per name
	done  map[string]measure                 // measured fragments
	busy  map[string]bool                    // fragments being measured (cycle guard)
}

// newMeasurer indexes doc's fragments.
func newMeasurer(doc *ast.QueryDocument) *measurer {
	m := &measurer{
		frags: make(map[string]*ast.FragmentDefinition, len(doc.Fragments)),
		done:  make(map[string]measure, len(doc.Fragments)),
		busy:  map[string]bool{},
	}
	for _, f := range doc.Fragments {
		if _, dup := m.frags[f.Name]; !dup {
			m.frags[f.Name] = f
		}
	}
	return m
}

// set measures a selection set.
func (m *measurer) set(set ast.SelectionSet) measure {
	var total measure
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			total = total.add(m.field(s))
		case *ast.InlineFragment:
			total = total.add(m.set(s.SelectionSet))
		case *ast.FragmentSpread:
			total = total.add(m.fragment(s.Name))
		}
	}
	return total
}

// field measures one field and its sub-selection. Fields below __schema
// and __type add no depth: gqlparser's MaxIntrospectionDepth bounds those.
func (m *measurer) field(f *ast.Field) measure {
	sub := m.set(f.SelectionSet)
	if f.Name == "__schema" || f.Name == "__type" {
		sub.depth = 0
	}
	return measure{depth: 1 + sub.depth, fields: min(1+sub.fields, countCap)}
}

// fragment measures the named fragment once. Unknown fragments and a
// fragment reached again while being measured (a cycle) count as empty.
func (m *measurer) fragment(name string) measure {
	if r, ok := m.done[name]; ok {
		return r
	}
	f := m.frags[name]
	if f == nil || m.busy[name] {
		return measure{}
	}
	m.busy[name] = true
	r := m.set(f.SelectionSet)
	delete(m.busy, name)
	m.done[name] = r
	return r
}

// documentAliases counts the aliased fields in the document's text:
// every operation and fragment once, spreads not followed.
func documentAliases(doc *ast.QueryDocument) int {
	n := 0
	for _, o := range doc.Operations {
		n += countAliases(o.SelectionSet)
	}
	for _, f := range doc.Fragments {
		n += countAliases(f.SelectionSet)
	}
	return n
}

// countAliases counts aliased fields in set, not following spreads.
func countAliases(set ast.SelectionSet) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Alias != "" && s.Alias != s.Name {
				n++
			}
			n += countAliases(s.SelectionSet)
		case *ast.InlineFragment:
			n += countAliases(s.SelectionSet)
		}
	}
	return n
}

// noIntrospectionRule rejects __schema and __type when introspection is
// disabled. __typename stays allowed.
func noIntrospectionRule(ev *core.Events, addError core.AddErrFunc) {
	ev.OnField(func(_ *core.Walker, f *ast.Field) {
		if f.Name == "__schema" || f.Name == "__type" {
			addError(core.Message("GraphQL introspection is not allowed, but the query contained %s.", f.Name), core.At(f.Position))
		}
	})
}
