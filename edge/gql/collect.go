package gql

import (
	"github.com/vektah/gqlparser/v2/ast"
)

// fieldGroup is one response key and the fields merged under it.
type fieldGroup struct {
	key    string
	fields []*ast.Field
}

// collectFields implements the spec's CollectFields: it applies @skip and
// @include, follows fragments whose type condition applies to objType, and
// groups fields by response key in first-seen order.
func (e *execution) collectFields(objType *ast.Definition, sets ...ast.SelectionSet) []*fieldGroup {
	c := &collector{e: e, objType: objType, index: map[string]int{}, visited: map[string]bool{}}
	for _, set := range sets {
		c.collect(set)
	}
	return c.groups
}

// collector holds the state of one CollectFields call.
type collector struct {
	e       *execution
	objType *ast.Definition
	groups  []*fieldGroup
	index   map[string]int // response key → position in groups
	visited map[string]bool
}

// collect adds the selections of set.
func (c *collector) collect(set ast.SelectionSet) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if c.e.included(s.Directives) {
				c.add(s)
			}
		case *ast.InlineFragment:
			if c.e.included(s.Directives) && c.e.typeApplies(c.objType, s.TypeCondition) {
				c.collect(s.SelectionSet)
			}
		case *ast.FragmentSpread:
			c.spread(s)
		}
	}
}

// spread adds a named fragment's selections once.
func (c *collector) spread(s *ast.FragmentSpread) {
	if c.visited[s.Name] || !c.e.included(s.Directives) {
		return
	}
	c.visited[s.Name] = true
	frag := c.e.doc.Fragments.ForName(s.Name)
	if frag != nil && c.e.typeApplies(c.objType, frag.TypeCondition) {
		c.collect(frag.SelectionSet)
	}
}

// add appends f under its response key.
func (c *collector) add(f *ast.Field) {
	key := f.Alias
	if key == "" {
		key = f.Name
	}
	if i, ok := c.index[key]; ok {
		c.groups[i].fields = append(c.groups[i].fields, f)
		return
	}
	c.index[key] = len(c.groups)
	c.groups = append(c.groups, &fieldGroup{key: key, fields: []*ast.Field{f}})
}

// included evaluates @skip(if:) and @include(if:).
func (e *execution) included(dirs ast.DirectiveList) bool {
	if d := dirs.ForName("skip"); d != nil && e.directiveIf(d) {
		return false
	}
	if d := dirs.ForName("include"); d != nil && !e.directiveIf(d) {
		return false
	}
	return true
}

// directiveIf returns the value of a directive's "if" argument.
func (e *execution) directiveIf(d *ast.Directive) bool {
	arg := d.Arguments.ForName("if")
	if arg == nil {
		return false
	}
	if arg.Value.Kind == ast.Variable {
		b, _ := e.vars[arg.Value.Raw].(bool)
		return b
	}
	return arg.Value.Raw == "true"
}

// typeApplies implements DoesFragmentTypeApply.
func (e *execution) typeApplies(objType *ast.Definition, cond string) bool {
	if cond == "" || cond == objType.Name {
		return true
	}
	for _, pt := range e.s.schema.PossibleTypes[cond] {
		if pt.Name == objType.Name {
			return true
		}
	}
	return false
}
