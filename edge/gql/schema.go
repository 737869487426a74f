package gql

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// ResolveFunc resolves one field. It returns the field's value (see the
// package docs for the accepted shapes) or an error, which becomes a field
// error in the response.
type ResolveFunc func(ctx context.Context, p Params) (any, error)

// Resolvers maps "Type.field" (for example "Query.workflow") to a resolver.
// Fields without an entry use the default resolver.
type Resolvers map[string]ResolveFunc

// Params is what a resolver receives.
type Params struct {
	// Parent is the value of the enclosing object (nil for root fields,
	// unless a subscription event is being executed).
	Parent any
	// Args holds the coerced arguments as JSON-like values: string, bool,
	// int64, float64, json.Number (custom scalars), map[string]any, []any, nil.
	Args map[string]any
	// Field is the (validated) field in the document.
	Field *ast.Field
	// Path is the response path: names (aliases) and int list indices.
	Path []any
}

// Schema is an executable schema: the SDL plus resolvers. It is safe for
// concurrent use.
type Schema struct {
	schema    *ast.Schema
	resolvers Resolvers
	docs      *docCache           // parsed+validated documents, bounded LRU
	structs   *structCache        // json-tag field indices per struct type
	srcOrder  map[*ast.Source]int // SDL source → index, for introspection order
}

// NewSchema loads sdl with gqlparser.LoadSchema and checks that every
// resolver key names an existing "Type.field".
func NewSchema(sdl []*ast.Source, resolvers Resolvers) (*Schema, error) {
	as, err := gqlparser.LoadSchema(sdl...)
	if err != nil {
		return nil, fmt.Errorf("gql: load schema: %w", err)
	}
	// @defer is in gqlparser's prelude but this executor does not implement
	// it: drop it so validation rejects it and introspection omits it.
	delete(as.Directives, "defer")
	for key := range resolvers {
		if err := checkResolverKey(as, key); err != nil {
			return nil, err
		}
	}
	rs := make(Resolvers, len(resolvers))
	for k, v := range resolvers {
		rs[k] = v
	}
	return &Schema{
		schema:    as,
		resolvers: rs,
		docs:      newDocCache(512),
		structs:   &structCache{},
		srcOrder:  sourceOrder(sdl),
	}, nil
}

// checkResolverKey reports an error unless key is "Type.field" for a field
// of an object or interface type in s.
func checkResolverKey(s *ast.Schema, key string) error {
	typ, field, ok := strings.Cut(key, ".")
	if !ok {
		return fmt.Errorf("gql: resolver key %q: want \"Type.field\"", key)
	}
	def := s.Types[typ]
	if def == nil || (def.Kind != ast.Object && def.Kind != ast.Interface) {
		return fmt.Errorf("gql: resolver %q: unknown object type %q", key, typ)
	}
	if def.Fields.ForName(field) == nil {
		return fmt.Errorf("gql: resolver %q: type %q has no field %q", key, typ, field)
	}
	return nil
}

// AST returns the loaded schema. Callers must not modify it.
func (s *Schema) AST() *ast.Schema { return s.schema }

// resolver returns the resolver for typ.field, or nil for the default one.
func (s *Schema) resolver(typ, field string) ResolveFunc {
	if len(s.resolvers) == 0 {
		return nil
	}
	return s.resolvers[typ+"."+field]
}

// structCache caches, per struct type, the index path of each json field.
type structCache struct {
	m sync.Map // reflect.Type → map[string][]int
}

// sourceOrder indexes the SDL sources in the order given.
func sourceOrder(sdl []*ast.Source) map[*ast.Source]int {
	m := make(map[*ast.Source]int, len(sdl))
	for i, src := range sdl {
		m[src] = i
	}
	return m
}
