package gql

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// introType is a __Type: a named definition, or a LIST/NON_NULL wrapper t.
type introType struct {
	def *ast.Definition // named types
	t   *ast.Type       // wrappers
}

// introInput is a __InputValue: an argument or an input field.
type introInput struct {
	name, desc string
	typ        *ast.Type
	defVal     *ast.Value
	dirs       ast.DirectiveList
}

// introspect resolves the fields of the introspection types and the
// __schema/__type root fields.
func (s *Schema) introspect(typeName, field string, parent any, args map[string]any) (any, error) {
	switch {
	case field == "__schema":
		return s.schema, nil
	case field == "__type":
		name, _ := args["name"].(string)
		if def := s.schema.Types[name]; def != nil {
			return &introType{def: def}, nil
		}
		return nil, nil
	}
	switch p := parent.(type) {
	case *ast.Schema:
		return s.introSchema(field), nil
	case *introType:
		return s.introTypeField(p, field, includeDeprecated(args)), nil
	case *ast.FieldDefinition:
		return s.introField(p, field, includeDeprecated(args)), nil
	case *introInput:
		return s.introInputField(p, field), nil
	case *ast.EnumValueDefinition:
		return introEnumValue(p, field), nil
	case *ast.DirectiveDefinition:
		return s.introDirective(p, field, includeDeprecated(args)), nil
	}
	return nil, fmt.Errorf("introspection: unexpected parent %T for %s.%s", parent, typeName, field)
}

// includeDeprecated reads the includeDeprecated argument.
func includeDeprecated(args map[string]any) bool {
	b, _ := args["includeDeprecated"].(bool)
	return b
}

// introSchema resolves __Schema fields.
func (s *Schema) introSchema(field string) any {
	switch field {
	case "description":
		return nilIfEmpty(s.schema.Description)
	case "types":
		out := make([]*introType, 0, len(s.schema.Types))
		for _, d := range sortedDefs(s.schema.Types, s.srcOrder) {
			out = append(out, &introType{def: d})
		}
		return out
	case "queryType":
		return namedType(s.schema.Query)
	case "mutationType":
		return namedType(s.schema.Mutation)
	case "subscriptionType":
		return namedType(s.schema.Subscription)
	case "directives":
		return sortedDefs(s.schema.Directives, s.srcOrder)
	}
	return nil
}

// namedType wraps def, or returns nil.
func namedType(def *ast.Definition) any {
	if def == nil {
		return nil
	}
	return &introType{def: def}
}

// positioned is a definition with a source position and built-in flag.
type positioned interface {
	*ast.Definition | *ast.DirectiveDefinition
}

// sortedDefs orders definitions as written in the SDL (user definitions
// first, by source and offset), then built-ins by name. The order matters
// for clients that print the schema (graphql-js printSchema).
func sortedDefs[T positioned](m map[string]T, srcOrder map[*ast.Source]int) []T {
	out := make([]T, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b T) int {
		pa, ba, na := defMeta(a)
		pb, bb, nb := defMeta(b)
		if ba != bb {
			if ba {
				return 1
			}
			return -1
		}
		if ba || pa == nil || pb == nil {
			return strings.Compare(na, nb)
		}
		if c := cmp.Compare(srcOrder[pa.Src], srcOrder[pb.Src]); c != 0 {
			return c
		}
		return cmp.Compare(pa.Start, pb.Start)
	})
	return out
}

// defMeta returns position, built-in flag and name of a definition.
func defMeta[T positioned](d T) (*ast.Position, bool, string) {
	switch x := any(d).(type) {
	case *ast.Definition:
		return x.Position, x.BuiltIn, x.Name
	case *ast.DirectiveDefinition:
		return x.Position, x.Position == nil || x.Position.Src == nil || x.Position.Src.BuiltIn, x.Name
	}
	return nil, true, ""
}

// typeRef returns the __Type for a type reference.
func typeRef(s *ast.Schema, t *ast.Type) *introType {
	if t.NonNull || t.Elem != nil {
		return &introType{t: t}
	}
	return &introType{def: s.Types[t.NamedType]}
}

// nilIfEmpty maps "" to null.
func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// deprecation returns whether dirs carry @deprecated, and its reason.
func deprecation(dirs ast.DirectiveList) (bool, any) {
	d := dirs.ForName("deprecated")
	if d == nil {
		return false, nil
	}
	if a := d.Arguments.ForName("reason"); a != nil && a.Value.Kind != ast.NullValue {
		return true, a.Value.Raw
	}
	return true, "No longer supported"
}
