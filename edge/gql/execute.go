package gql

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/vektah/gqlparser/v2/ast"
)

// execution is the state of executing one operation.
type execution struct {
	s    *Schema
	doc  *ast.QueryDocument
	vars map[string]any

	stopped atomic.Bool // the request's context ended and a field said so

	mu          sync.Mutex // guards errs and collections
	errs        []*Error
	collections map[collectKey][]*fieldGroup // CollectFields results; nil until the first
}

// fieldMode says how the fields of one selection set are scheduled.
type fieldMode int

const (
	modeAuto     fieldMode = iota // concurrent only for custom resolvers
	modeParallel                  // every field in its own goroutine (query root)
	modeSerial                    // document order (mutation root)
)

// Execute runs a query or mutation (a subscription is a request error: use
// Subscribe). Limits.Timeout bounds the request.
func (s *Schema) Execute(ctx context.Context, req Request, l Limits) *Response {
	l = l.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	p, resp := s.prepare(req, l)
	if resp != nil {
		return resp
	}
	if p.op.Operation == ast.Subscription {
		return requestError(CodeOperationFailed, "Subscriptions must be run with Subscribe.")
	}
	return s.execute(withMemo(ctx), p, nil)
}

// execute runs a prepared operation's root selection set on root.
func (s *Schema) execute(ctx context.Context, p *prepared, root any) *Response {
	rootType := s.rootType(p.op.Operation)
	if rootType == nil {
		return requestError(CodeValidationFailed, "Schema is not configured for "+string(p.op.Operation)+"s.")
	}
	e := &execution{s: s, doc: p.doc, vars: p.vars}
	mode := modeParallel
	if p.op.Operation == ast.Mutation {
		mode = modeSerial
	}
	groups := e.collectFields(rootType, p.op.SelectionSet)
	obj, _ := e.executeFields(ctx, rootType, root, groups, nil, mode)
	return e.response(obj)
}

// response builds the final response from the root object (nil when a
// null propagated to the root).
func (e *execution) response(obj *object) *Response {
	sortErrors(e.errs)
	if obj == nil {
		return &Response{Data: []byte("null"), Errors: e.errs, HasData: true}
	}
	return &Response{Data: writeJSON(obj), Errors: e.errs, HasData: true}
}

// executeFields implements ExecuteSelectionSet for groups on objType. It
// returns ok=false when a non-null field is null, so the object is null.
func (e *execution) executeFields(ctx context.Context, objType *ast.Definition, parent any, groups []*fieldGroup, p *path, mode fieldMode) (*object, bool) {
	obj := &object{keys: make([]string, len(groups)), vals: make([]any, len(groups))}
	oks := make([]bool, len(groups))
	concurrent := e.concurrentFields(objType, groups, mode)
	var wg sync.WaitGroup
	for i, g := range groups {
		obj.keys[i] = g.key
		fp := p.with(g.key)
		if concurrent[i] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				obj.vals[i], oks[i] = e.runField(ctx, objType, parent, g, fp)
			}()
			continue
		}
		obj.vals[i], oks[i] = e.runField(ctx, objType, parent, g, fp)
	}
	wg.Wait()
	for _, ok := range oks {
		if !ok {
			return nil, false
		}
	}
	return obj, true
}

// runField executes one field while ctx lasts. Once ctx has ended (the
// request's deadline passed, or the client left) no more resolvers are
// called: every field not yet started is null, and the first one carries
// the error (TIMEOUT for a deadline), so a long list stops within an item.
func (e *execution) runField(ctx context.Context, objType *ast.Definition, parent any, g *fieldGroup, p *path) (any, bool) {
	err := ctx.Err()
	if err == nil {
		return e.executeField(ctx, objType, parent, g, p)
	}
	f := g.fields[0]
	if !e.stopped.Swap(true) {
		err = fmt.Errorf("Request stopped (%w): this field and those not yet started were not resolved.", err)
		e.addError(e.fieldError(err, f, p))
	}
	def := e.fieldDef(objType, f.Name)
	nonNull := f.Name == "__typename" || (def != nil && def.Type.NonNull)
	return nil, !nonNull
}

// concurrentFields decides which fields get their own goroutine: all of
// them at the query root; those with custom resolvers elsewhere, when
// there are at least two; none for mutations.
func (e *execution) concurrentFields(objType *ast.Definition, groups []*fieldGroup, mode fieldMode) []bool {
	out := make([]bool, len(groups))
	if mode == modeSerial || len(groups) < 2 {
		return out
	}
	n := 0
	for i, g := range groups {
		out[i] = mode == modeParallel || e.s.resolver(objType.Name, g.fields[0].Name) != nil
		if out[i] {
			n++
		}
	}
	if n < 2 {
		clear(out)
	}
	return out
}

// maxFieldErrors caps the field errors in one response; later ones are
// dropped (their fields are still null).
const maxFieldErrors = 100

// addError records a field error. Safe for concurrent use.
func (e *execution) addError(err *Error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.errs) < maxFieldErrors {
		e.errs = append(e.errs, err)
	}
}

// path is a response path as a linked list (cheap to extend).
type path struct {
	parent *path
	key    any // string or int
}

// with returns p extended by key.
func (p *path) with(key any) *path { return &path{parent: p, key: key} }

// slice materializes the path, root first.
func (p *path) slice() []any {
	n := 0
	for q := p; q != nil; q = q.parent {
		n++
	}
	out := make([]any, n)
	for q := p; q != nil; q = q.parent {
		n--
		out[n] = q.key
	}
	return out
}
