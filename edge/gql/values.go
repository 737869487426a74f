package gql

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// isNil reports whether v is nil or a nil pointer, map, slice or interface.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Chan, reflect.Func:
		return rv.IsNil()
	}
	return false
}

// isNilSlice reports whether v is a typed nil slice, which completes as
// an empty list: Go code builds lists with append from a nil slice, and
// "no items" must not read as null (or break a non-null list).
func isNilSlice(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Slice && rv.IsNil()
}

// deref follows pointers to the value a leaf serialises: *string is its
// string. The caller has ruled out a nil pointer.
func deref(v any) any {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if !rv.IsValid() || rv.Kind() == reflect.Pointer {
		return nil
	}
	return rv.Interface()
}

// listItems returns the items of any slice or array.
func listItems(v any) ([]any, bool) {
	if items, ok := v.([]any); ok {
		return items, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

// defaultResolve reads field name from parent: a map key, or a struct field
// by its json tag name (encoding/json rules). Anything else yields nil.
func (s *Schema) defaultResolve(parent any, name string) any {
	if m, ok := parent.(map[string]any); ok {
		return m[name]
	}
	rv := reflect.ValueOf(parent)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil
		}
		v := rv.MapIndex(reflect.ValueOf(name).Convert(rv.Type().Key()))
		if !v.IsValid() {
			return nil
		}
		return v.Interface()
	case reflect.Struct:
		return s.structs.field(rv, name)
	}
	return nil
}

// field returns the struct field whose JSON name is name.
func (c *structCache) field(rv reflect.Value, name string) any {
	idx, ok := c.fields(rv.Type())[name]
	if !ok {
		return nil
	}
	f, err := rv.FieldByIndexErr(idx)
	if err != nil { // nil embedded pointer
		return nil
	}
	return f.Interface()
}

// fields returns (and caches) the JSON name → index map of struct type t.
func (c *structCache) fields(t reflect.Type) map[string][]int {
	if m, ok := c.m.Load(t); ok {
		return m.(map[string][]int)
	}
	m := map[string][]int{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || (f.Anonymous && f.Type.Kind() == reflect.Struct) {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := m[name]; !dup || len(f.Index) < len(m[name]) {
			m[name] = f.Index
		}
	}
	c.m.Store(t, m)
	return m
}

// typeNamer lets a Go value name its GraphQL object type.
type typeNamer interface{ GraphQLType() string }

// resolveAbstract finds the concrete object type of v for the interface or
// union def: a "__typename" map key, a GraphQLType method, or the only
// possible type.
func (s *Schema) resolveAbstract(def *ast.Definition, f *ast.Field, v any) (*ast.Definition, error) {
	name := ""
	switch x := v.(type) {
	case map[string]any:
		name, _ = x["__typename"].(string)
	case typeNamer:
		name = x.GraphQLType()
	}
	possible := s.schema.PossibleTypes[def.Name]
	if name == "" && len(possible) == 1 {
		return possible[0], nil
	}
	if name == "" {
		return nil, fmt.Errorf("Abstract type \"%s\" must resolve to an Object type at runtime for field \"%s.%s\"; return a map with \"__typename\" or a value with a GraphQLType() method.", def.Name, f.ObjectDefinition.Name, f.Name)
	}
	for _, pt := range possible {
		if pt.Name == name {
			return pt, nil
		}
	}
	return nil, fmt.Errorf("Runtime Object type \"%s\" is not a possible type for \"%s\".", name, def.Name)
}
