package gql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// executeField implements ExecuteField: resolve, then complete. ok=false
// means the field is non-null and its value is null (propagate).
func (e *execution) executeField(ctx context.Context, objType *ast.Definition, parent any, g *fieldGroup, p *path) (val any, ok bool) {
	f := g.fields[0]
	if f.Name == "__typename" {
		return quoteJSON(objType.Name), true
	}
	def := e.fieldDef(objType, f.Name)
	if def == nil {
		return nil, true // unreachable after validation
	}
	defer func() {
		if r := recover(); r != nil {
			e.addError(e.fieldError(errPanic, f, p))
			val, ok = nil, !def.Type.NonNull
		}
	}()
	v, err := e.resolveField(ctx, objType, parent, f, def, p)
	if err != nil {
		e.addError(e.fieldError(err, f, p))
		return nil, !def.Type.NonNull
	}
	return e.completeValue(ctx, def.Type, g, p, v)
}

// fieldDef returns the definition of objType.name, including the
// introspection root fields.
func (e *execution) fieldDef(objType *ast.Definition, name string) *ast.FieldDefinition {
	return objType.Fields.ForName(name)
}

// resolveField implements ResolveFieldValue: coerce arguments and call the
// resolver (custom, introspection or default).
func (e *execution) resolveField(ctx context.Context, objType *ast.Definition, parent any, f *ast.Field, def *ast.FieldDefinition, p *path) (any, error) {
	args, err := e.s.coerceArgs(def.Arguments, f.Arguments, e.vars)
	if err != nil {
		return nil, argumentError{err}
	}
	if strings.HasPrefix(def.Name, "__") || strings.HasPrefix(objType.Name, "__") {
		return e.s.introspect(objType.Name, def.Name, parent, args)
	}
	if fn := e.s.resolver(objType.Name, def.Name); fn != nil {
		return fn(ctx, Params{Parent: parent, Args: args, Field: f, Path: p.slice()})
	}
	return e.s.defaultResolve(parent, def.Name), nil
}

// fieldError converts a resolver error into a GraphQL field error.
func (e *execution) fieldError(err error, f *ast.Field, p *path) *Error {
	out := &Error{Message: err.Error(), Locations: location(f.Position), Path: p.slice()}
	var ge *Error
	if errors.As(err, &ge) {
		out.Message = ge.Message
		out.Extensions = ge.Extensions
	}
	if out.Extensions == nil {
		out.Extensions = map[string]any{"code": errorCode(err)}
	}
	return out
}

// errorCode returns the GraphQLCode of err, TIMEOUT for deadlines, or
// INTERNAL.
func errorCode(err error) string {
	var c interface{ GraphQLCode() string }
	if errors.As(err, &c) {
		return c.GraphQLCode()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return CodeTimeout
	}
	return CodeInternal
}

// completeValue implements CompleteValue for t. ok=false means t is
// non-null and the value is null, so the null propagates.
func (e *execution) completeValue(ctx context.Context, t *ast.Type, g *fieldGroup, p *path, v any) (any, bool) {
	if !t.NonNull {
		r, _ := e.completeNullable(ctx, t, g, p, v)
		return r, true
	}
	r, failed := e.completeNullable(ctx, t, g, p, v)
	if r == nil {
		if !failed {
			f := g.fields[0]
			msg := fmt.Sprintf("Cannot return null for non-nullable field %s.%s.", f.ObjectDefinition.Name, f.Name)
			e.addError(e.fieldError(errors.New(msg), f, p))
		}
		return nil, false
	}
	return r, true
}

// completeNullable completes v ignoring t's non-null flag. failed reports
// that an error was recorded and the result is null.
func (e *execution) completeNullable(ctx context.Context, t *ast.Type, g *fieldGroup, p *path, v any) (res any, failed bool) {
	if t.Elem != nil && isNilSlice(v) {
		return []any{}, false
	}
	if isNil(v) {
		return nil, false
	}
	if t.Elem != nil {
		return e.completeList(ctx, t.Elem, g, p, v)
	}
	def := e.s.schema.Types[t.NamedType]
	var err error
	switch def.Kind {
	case ast.Scalar, ast.Enum:
		if res, err = serializeLeaf(def, deref(v)); err == nil {
			return res, false
		}
	case ast.Object:
		return e.completeObject(ctx, def, g, p, v)
	case ast.Interface, ast.Union:
		var concrete *ast.Definition
		if concrete, err = e.s.resolveAbstract(def, g.fields[0], v); err == nil {
			return e.completeObject(ctx, concrete, g, p, v)
		}
	}
	e.addError(e.fieldError(err, g.fields[0], p))
	return nil, true
}

// completeList completes each item of a slice with its index in the path.
func (e *execution) completeList(ctx context.Context, elem *ast.Type, g *fieldGroup, p *path, v any) (any, bool) {
	items, ok := listItems(v)
	if !ok {
		err := fmt.Errorf("Expected Iterable, but did not find one for field \"%s.%s\".", g.fields[0].ObjectDefinition.Name, g.fields[0].Name)
		e.addError(e.fieldError(err, g.fields[0], p))
		return nil, true
	}
	out := make([]any, len(items))
	failed := false
	for i, it := range items {
		r, ok := e.completeValue(ctx, elem, g, p.with(i), it)
		failed = failed || !ok // keep going: report every item's errors
		out[i] = r
	}
	if failed {
		return nil, true
	}
	return out, false
}

// completeObject collects the sub-selections for objType and executes them.
func (e *execution) completeObject(ctx context.Context, objType *ast.Definition, g *fieldGroup, p *path, v any) (any, bool) {
	sets := make([]ast.SelectionSet, len(g.fields))
	for i, f := range g.fields {
		sets[i] = f.SelectionSet
	}
	obj, ok := e.executeFields(ctx, objType, v, e.collectFields(objType, sets...), p, modeAuto)
	if !ok {
		return nil, true
	}
	return obj, false
}

// argumentError is an argument that does not coerce to its type (an Int
// literal beyond 32 bits, say): the client's error, not the server's.
type argumentError struct{ error }

func (e argumentError) Unwrap() error     { return e.error }
func (argumentError) GraphQLCode() string { return CodeBadUserInput }
