package gql

import (
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator/core"
)

// maxDepthRule rejects operations whose field nesting exceeds max.
// Fields below __schema and __type are not counted: gqlparser's
// MaxIntrospectionDepth rule bounds those.
func maxDepthRule(max int) core.RuleFunc {
	return func(ev *core.Events, addError core.AddErrFunc) {
		ev.OnOperation(func(w *core.Walker, op *ast.OperationDefinition) {
			d := selectionDepth(w.Document, op.SelectionSet, map[string]bool{})
			if d > max {
				addError(core.Message("Query depth %d exceeds the maximum of %d.", d, max), core.At(op.Position))
			}
		})
	}
}

// selectionDepth returns the field depth of set, following fragment spreads.
// onStack guards against fragment cycles (reported by another rule).
func selectionDepth(doc *ast.QueryDocument, set ast.SelectionSet, onStack map[string]bool) int {
	best := 0
	for _, sel := range set {
		d := 0
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				d = 1
			} else {
				d = 1 + selectionDepth(doc, s.SelectionSet, onStack)
			}
		case *ast.InlineFragment:
			d = selectionDepth(doc, s.SelectionSet, onStack)
		case *ast.FragmentSpread:
			d = spreadDepth(doc, s.Name, onStack)
		}
		best = max(best, d)
	}
	return best
}

// spreadDepth returns the depth of the named fragment's selection set.
func spreadDepth(doc *ast.QueryDocument, name string, onStack map[string]bool) int {
	frag := doc.Fragments.ForName(name)
	if frag == nil || onStack[name] {
		return 0
	}
	onStack[name] = true
	defer delete(onStack, name)
	return selectionDepth(doc, frag.SelectionSet, onStack)
}

// maxAliasesRule rejects documents with more than max aliased fields,
// counting each field in the document text once.
func maxAliasesRule(max int) core.RuleFunc {
	return func(ev *core.Events, addError core.AddErrFunc) {
		ev.OnOperation(func(w *core.Walker, op *ast.OperationDefinition) {
			if op != w.Document.Operations[0] {
				return // count the whole document once
			}
			n := 0
			for _, o := range w.Document.Operations {
				n += countAliases(o.SelectionSet)
			}
			for _, f := range w.Document.Fragments {
				n += countAliases(f.SelectionSet)
			}
			if n > max {
				addError(core.Message("Document has %d aliases, more than the maximum of %d.", n, max), core.At(op.Position))
			}
		})
	}
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
