package gql

import (
	"fmt"

	"github.com/vektah/gqlparser/v2/ast"
)

// prepared is a request that passed parsing, validation, operation
// selection and variable coercion, ready to execute.
type prepared struct {
	doc  *ast.QueryDocument
	op   *ast.OperationDefinition
	vars map[string]any
}

// prepare runs the request pipeline up to execution. On failure it returns
// a response holding request errors (no data).
func (s *Schema) prepare(req Request, l Limits) (*prepared, *Response) {
	if req.Query == "" {
		return nil, requestError(CodeBadRequest, "Must provide query string.")
	}
	d := s.loadDocument(req.Query, l)
	if d.refused != "" && l.OnRefused != nil {
		l.OnRefused(d.refused)
	}
	if d.errs != nil {
		return nil, &Response{Errors: d.errs}
	}
	op, err := selectOperation(d.doc, req.OperationName)
	if err != nil {
		return nil, &Response{Errors: []*Error{err}}
	}
	vars, errs := s.coerceVariables(op, req.Variables)
	if errs != nil {
		return nil, &Response{Errors: errs}
	}
	return &prepared{doc: d.doc, op: op, vars: vars}, nil
}

// selectOperation implements the spec's GetOperation.
func selectOperation(doc *ast.QueryDocument, name string) (*ast.OperationDefinition, *Error) {
	if name == "" {
		switch len(doc.Operations) {
		case 0:
			return nil, newError(CodeOperationFailed, "Must provide an operation.")
		case 1:
			return doc.Operations[0], nil
		default:
			return nil, newError(CodeOperationFailed, "Must provide operation name if query contains multiple operations.")
		}
	}
	op := doc.Operations.ForName(name)
	if op == nil {
		return nil, newError(CodeOperationFailed, fmt.Sprintf("Unknown operation named \"%s\".", name))
	}
	return op, nil
}

// rootType returns the schema's root type for op, or nil.
func (s *Schema) rootType(op ast.Operation) *ast.Definition {
	switch op {
	case ast.Mutation:
		return s.schema.Mutation
	case ast.Subscription:
		return s.schema.Subscription
	default:
		return s.schema.Query
	}
}

// location converts a gqlparser position into a Location list.
func location(p *ast.Position) []Location {
	if p == nil {
		return nil
	}
	return []Location{{Line: p.Line, Column: p.Column}}
}
