package gql

import (
	"context"
	"errors"
	"fmt"

	"github.com/vektah/gqlparser/v2/ast"
)

// Subscribe runs a subscription. The root field's resolver returns the
// source stream as a `<-chan any` (or `chan any`); each event becomes the
// value of the root field and is completed against the selection set. The
// returned channel closes when ctx ends or the source closes. On a request
// error (or a resolver error when creating the stream) the channel is nil
// and the second result holds the errors. Queries and mutations are
// accepted too: they yield one response. Limits.Timeout applies to those,
// not to subscriptions.
func (s *Schema) Subscribe(ctx context.Context, req Request, l Limits) (<-chan *Response, *Response) {
	l = l.withDefaults()
	p, resp := s.prepare(req, l)
	if resp != nil {
		return nil, resp
	}
	if p.op.Operation != ast.Subscription {
		out := make(chan *Response, 1)
		tctx, cancel := context.WithTimeout(ctx, l.Timeout)
		defer cancel()
		out <- s.execute(withMemo(tctx), p, nil)
		close(out)
		return out, nil
	}
	e := &execution{s: s, doc: p.doc, vars: p.vars}
	root := s.schema.Subscription
	groups := e.collectFields(root, p.op.SelectionSet)
	if len(groups) != 1 {
		return nil, requestError(CodeValidationFailed, "Subscription must select exactly one top level field.")
	}
	stream, errResp := e.sourceStream(ctx, root, groups[0])
	if errResp != nil {
		return nil, errResp
	}
	out := make(chan *Response)
	go s.pump(ctx, p, root, groups[0], stream, out)
	return out, nil
}

// sourceStream implements CreateSourceEventStream: it calls the root
// field's resolver and checks it returned a channel.
func (e *execution) sourceStream(ctx context.Context, root *ast.Definition, g *fieldGroup) (stream <-chan any, resp *Response) {
	f := g.fields[0]
	p := (*path)(nil).with(g.key)
	fail := func(err error) (<-chan any, *Response) {
		return nil, &Response{Errors: []*Error{e.fieldError(err, f, p)}}
	}
	defer func() {
		if r := recover(); r != nil {
			stream, resp = fail(errPanic)
		}
	}()
	def := root.Fields.ForName(f.Name)
	fn := e.s.resolver(root.Name, f.Name)
	if def == nil || fn == nil {
		return fail(fmt.Errorf("Subscription field \"%s\" has no resolver.", f.Name))
	}
	args, err := e.s.coerceArgs(def.Arguments, f.Arguments, e.vars)
	if err != nil {
		return fail(err)
	}
	src, err := fn(ctx, Params{Args: args, Field: f, Path: p.slice()})
	if err != nil {
		return fail(err)
	}
	switch ch := src.(type) {
	case <-chan any:
		return ch, nil
	case chan any:
		return ch, nil
	}
	return fail(errors.New("Subscription field must return a <-chan any."))
}

// pump executes each source event and sends the response until ctx ends or
// the source closes.
func (s *Schema) pump(ctx context.Context, p *prepared, root *ast.Definition, g *fieldGroup, stream <-chan any, out chan<- *Response) {
	defer close(out)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-stream:
			if !ok {
				return
			}
			select {
			case out <- s.executeEvent(withMemo(ctx), p, root, g, ev):
			case <-ctx.Done():
				return
			}
		}
	}
}

// executeEvent implements MapSourceToResponseEvent for one event: the
// event is the root field's value.
func (s *Schema) executeEvent(ctx context.Context, p *prepared, root *ast.Definition, g *fieldGroup, ev any) *Response {
	e := &execution{s: s, doc: p.doc, vars: p.vars}
	def := root.Fields.ForName(g.fields[0].Name)
	val, ok := e.completeEvent(ctx, def, g, ev)
	if !ok {
		return e.response(nil)
	}
	return e.response(&object{keys: []string{g.key}, vals: []any{val}})
}

// completeEvent completes one event, recovering panics into field errors.
func (e *execution) completeEvent(ctx context.Context, def *ast.FieldDefinition, g *fieldGroup, ev any) (val any, ok bool) {
	p := (*path)(nil).with(g.key)
	defer func() {
		if r := recover(); r != nil {
			e.addError(e.fieldError(errPanic, g.fields[0], p))
			val, ok = nil, !def.Type.NonNull
		}
	}()
	if err, isErr := ev.(error); isErr {
		e.addError(e.fieldError(err, g.fields[0], p))
		return nil, !def.Type.NonNull
	}
	return e.completeValue(ctx, def.Type, g, p, ev)
}
