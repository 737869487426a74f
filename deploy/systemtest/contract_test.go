package systemtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/cbnats/circuitbreaker/schema"
)

// The schema contract test: documents are generated from schema/ (every
// field of every type reachable from a root field, to contractDepth
// levels of objects), run through the real edge and services, and every
// value of every answer is checked against its declared type. A field added
// to the schema later is selected, and checked, without editing the test.

// contractDepth is how many levels of objects below a root field are
// selected (Token.workflow.transitions.rules is 4; RuleResult.subResults
// nests further).
const contractDepth = 6

// selection is one generated field with its sub-selection.
type selection struct {
	def      *ast.FieldDefinition
	children []*selection
}

// contract generates selections from the schema and checks answers.
type contract struct {
	schema  *ast.Schema
	skipped map[string]string // "Type.field" → why it is never selected
	seen    map[string]bool   // "Type.field" answered with a non-null value
}

func newContract(t *testing.T) *contract {
	t.Helper()
	var src []*ast.Source
	for _, f := range schema.Files() {
		src = append(src, &ast.Source{Name: f.Name, Input: f.Text})
	}
	s, err := gqlparser.LoadSchema(src...)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{schema: s, skipped: map[string]string{}, seen: map[string]bool{}}
}

// selectAll selects every field of typ, objects to depth more levels.
// Fields with a required argument are skipped and recorded.
func (c *contract) selectAll(typ *ast.Definition, depth int) []*selection {
	var out []*selection
	for _, f := range typ.Fields {
		if strings.HasPrefix(f.Name, "__") {
			continue
		}
		if a := requiredArg(f); a != "" {
			c.skipped[typ.Name+"."+f.Name] = "required argument " + a
			continue
		}
		named := c.schema.Types[f.Type.Name()]
		switch named.Kind {
		case ast.Scalar, ast.Enum:
			out = append(out, &selection{def: f})
		case ast.Object:
			if depth == 0 {
				continue
			}
			if kids := c.selectAll(named, depth-1); len(kids) > 0 {
				out = append(out, &selection{def: f, children: kids})
			}
		default:
			c.skipped[typ.Name+"."+f.Name] = "abstract type " + named.Name + " (not generated)"
		}
	}
	return out
}

// requiredArg names an argument of f that has no default and may not be
// null, or returns "".
func requiredArg(f *ast.FieldDefinition) string {
	for _, a := range f.Arguments {
		if a.Type.NonNull && a.DefaultValue == nil {
			return a.Name
		}
	}
	return ""
}

// document renders operation op (query, mutation, subscription) of root
// field f with the given argument values as variables, selecting every
// field of its type.
func (c *contract) document(op string, f *ast.FieldDefinition, args map[string]any) (string, *selection) {
	root := &selection{def: f}
	if named := c.schema.Types[f.Type.Name()]; named.Kind == ast.Object {
		root.children = c.selectAll(named, contractDepth)
	}
	var vars, pass []string
	for _, a := range f.Arguments {
		if _, ok := args[a.Name]; ok {
			vars = append(vars, fmt.Sprintf("$%s: %s", a.Name, a.Type.String()))
			pass = append(pass, fmt.Sprintf("%s: $%s", a.Name, a.Name))
		}
	}
	var b strings.Builder
	b.WriteString(op)
	if len(vars) > 0 {
		fmt.Fprintf(&b, "(%s)", strings.Join(vars, ", "))
	}
	b.WriteString(" { ")
	b.WriteString(f.Name)
	if len(pass) > 0 {
		fmt.Fprintf(&b, "(%s)", strings.Join(pass, ", "))
	}
	writeSelection(&b, root.children)
	b.WriteString(" }")
	return b.String(), root
}

func writeSelection(b *strings.Builder, sels []*selection) {
	if len(sels) == 0 {
		return
	}
	b.WriteString(" {")
	for _, s := range sels {
		b.WriteString(" ")
		b.WriteString(s.def.Name)
		writeSelection(b, s.children)
	}
	b.WriteString(" }")
}

// response is a GraphQL answer decoded with numbers kept exact.
type response struct {
	Data   map[string]any   `json:"data"`
	Errors []map[string]any `json:"errors"`
}

func decodeResponse(raw []byte) (*response, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var r response
	if err := d.Decode(&r); err != nil {
		return nil, fmt.Errorf("undecodable answer %.300s: %w", raw, err)
	}
	return &r, nil
}

// check returns every way r's answer for root breaks the schema: errors,
// a null where the type is non-null, a list that is not a list, an Int
// outside 32 bits, a JSON value that does not round-trip, missing or
// extra keys.
func (c *contract) check(r *response, root *selection) []string {
	var bad []string
	for _, e := range r.Errors {
		bad = append(bad, fmt.Sprintf("error %v at %v: %v", e["extensions"], e["path"], e["message"]))
	}
	v, ok := r.Data[root.def.Name]
	if !ok {
		return append(bad, "data has no "+root.def.Name)
	}
	return append(bad, c.value(root.def.Name, root, root.def.Type, v)...)
}

// value checks v against type t selected by sel.
func (c *contract) value(path string, sel *selection, t *ast.Type, v any) []string {
	if v == nil {
		if t.NonNull {
			return []string{path + ": null for non-null " + t.String()}
		}
		return nil
	}
	if t.Elem != nil {
		items, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T for list %s", path, v, t)}
		}
		var bad []string
		for i, it := range items {
			bad = append(bad, c.value(fmt.Sprintf("%s[%d]", path, i), sel, t.Elem, it)...)
		}
		return bad
	}
	named := c.schema.Types[t.NamedType]
	switch named.Kind {
	case ast.Object:
		return c.object(path, sel, named, v)
	case ast.Enum:
		if s, ok := v.(string); !ok || named.EnumValues.ForName(s) == nil {
			return []string{fmt.Sprintf("%s: %v is not a value of %s", path, v, named.Name)}
		}
		return nil
	}
	if err := scalarFits(named.Name, v); err != nil {
		return []string{path + ": " + err.Error()}
	}
	return nil
}

// object checks that v is an object with exactly the selected keys, each
// conforming, and records which fields were answered with a value.
func (c *contract) object(path string, sel *selection, typ *ast.Definition, v any) []string {
	m, ok := v.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: %T for object %s", path, v, typ.Name)}
	}
	var bad []string
	if len(m) != len(sel.children) {
		bad = append(bad, fmt.Sprintf("%s: %d keys for %d selected fields", path, len(m), len(sel.children)))
	}
	for _, ch := range sel.children {
		fv, ok := m[ch.def.Name]
		if !ok {
			bad = append(bad, path+"."+ch.def.Name+": missing")
			continue
		}
		if fv != nil && !isEmptyList(fv) {
			c.seen[typ.Name+"."+ch.def.Name] = true
		}
		bad = append(bad, c.value(path+"."+ch.def.Name, ch, ch.def.Type, fv)...)
	}
	return bad
}

func isEmptyList(v any) bool {
	l, ok := v.([]any)
	return ok && len(l) == 0
}

// scalarFits checks a built-in or custom scalar's value as JSON carries it.
func scalarFits(name string, v any) error {
	switch name {
	case "Int":
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil || i > math.MaxInt32 || i < math.MinInt32 {
			return fmt.Errorf("%v is not a 32-bit Int", v)
		}
	case "Float":
		if _, ok := v.(json.Number); !ok {
			return fmt.Errorf("%v is not a Float", v)
		}
	case "String", "ID":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%v (%T) is not a %s", v, v, name)
		}
	case "Boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%v is not a Boolean", v)
		}
	default: // JSON and any other custom scalar: must round-trip
		b, err := json.Marshal(v)
		var back any
		if err == nil {
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			err = d.Decode(&back)
		}
		if err != nil || !reflect.DeepEqual(back, v) {
			return fmt.Errorf("%s value %v does not round-trip", name, v)
		}
	}
	return nil
}

// reachable lists "Type.field" of every output field reachable from the
// root types' fields within contractDepth, for the coverage report.
// Introspection (__schema, __type) is left to the graphql-http audits and
// the introspection round trip in .ci/conformance.sh.
func (c *contract) reachable() []string {
	var out []string
	seen := map[string]bool{}
	var walk func(typ *ast.Definition, depth int)
	walk = func(typ *ast.Definition, depth int) {
		for _, f := range typ.Fields {
			key := typ.Name + "." + f.Name
			if strings.HasPrefix(f.Name, "__") || seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, key)
			if named := c.schema.Types[f.Type.Name()]; named.Kind == ast.Object && depth > 0 {
				walk(named, depth-1)
			}
		}
	}
	for _, root := range []*ast.Definition{c.schema.Query, c.schema.Mutation, c.schema.Subscription} {
		for _, f := range root.Fields {
			if named := c.schema.Types[f.Type.Name()]; named.Kind == ast.Object && !strings.HasPrefix(f.Name, "__") {
				walk(named, contractDepth)
			}
		}
	}
	sort.Strings(out)
	return out
}
