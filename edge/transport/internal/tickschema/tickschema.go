// Package tickschema is the executable test schema shared by the transport
// tests and the subserver command: its subscriptions tick numbers from a
// channel and count how each source ended, so tests can check that closing
// a subscription cancels its source.
package tickschema

import (
	"context"
	_ "embed"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

// SDL is the schema text.
//
//go:embed schema.graphql
var SDL string

// ErrFailing is the error of Subscription.failing.
var ErrFailing = errors.New("tickschema: source unavailable")

// Fixture is one executable schema with its own counters.
type Fixture struct {
	Schema *gql.Schema

	started   atomic.Int64 // sources created
	cancelled atomic.Int64 // sources whose ctx ended before they finished
	finished  atomic.Int64 // sources that ran to their end
	bumps     atomic.Int64 // Mutation.bump calls
	states    sync.Map     // tag → *atomic.Value holding a State
}

// State is how a tagged source ended, as Query.source reports it.
type State string

// Source states.
const (
	Running   State = "RUNNING"
	Cancelled State = "CANCELLED"
	Finished  State = "FINISHED"
)

// New builds a fresh fixture.
func New() (*Fixture, error) {
	f := &Fixture{}
	s, err := gql.NewSchema([]*ast.Source{{Name: "schema.graphql", Input: SDL}}, gql.Resolvers{
		"Query.hello":          func(context.Context, gql.Params) (any, error) { return "world", nil },
		"Query.user":           func(ctx context.Context, _ gql.Params) (any, error) { return User(ctx), nil },
		"Query.source":         f.source,
		"Mutation.bump":        func(context.Context, gql.Params) (any, error) { return f.bumps.Add(1), nil },
		"Subscription.ticks":   f.ticks,
		"Subscription.blobs":   f.blobs,
		"Subscription.failing": func(context.Context, gql.Params) (any, error) { return nil, ErrFailing },
	})
	if err != nil {
		return nil, err
	}
	f.Schema = s
	return f, nil
}

// Started is the number of sources created.
func (f *Fixture) Started() int64 { return f.started.Load() }

// Cancelled is the number of sources stopped by their ctx.
func (f *Fixture) Cancelled() int64 { return f.cancelled.Load() }

// Finished is the number of sources that ran to their end.
func (f *Fixture) Finished() int64 { return f.finished.Load() }

// Active is the number of sources still running.
func (f *Fixture) Active() int64 { return f.Started() - f.Cancelled() - f.Finished() }

type userKey struct{}

// WithUser returns ctx carrying a user name for Query.user.
func WithUser(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, userKey{}, name)
}

// User returns the user name carried by ctx, or nil.
func User(ctx context.Context) any {
	return ctx.Value(userKey{})
}

// ticks is the source of Subscription.ticks.
func (f *Fixture) ticks(ctx context.Context, p gql.Params) (any, error) {
	n, _ := p.Args["n"].(int64)
	every, _ := p.Args["everyMs"].(int64)
	tag, _ := p.Args["tag"].(string)
	return f.start(ctx, tag, n, time.Duration(every)*time.Millisecond, func(i int64) any { return i }), nil
}

// blobs is the source of Subscription.blobs.
func (f *Fixture) blobs(ctx context.Context, p gql.Params) (any, error) {
	size, _ := p.Args["size"].(int64)
	if size < 0 || size > 1<<20 {
		return nil, errors.New("size must be in 0..1048576")
	}
	blob := strings.Repeat("x", int(size))
	return f.start(ctx, "", -1, 0, func(int64) any { return blob }), nil
}

// start starts a goroutine sending value(1..n) (forever when n < 0) and
// records how it ended, under tag too when tag is not empty.
func (f *Fixture) start(ctx context.Context, tag string, n int64, every time.Duration, value func(int64) any) <-chan any {
	f.started.Add(1)
	state := &atomic.Value{}
	state.Store(Running)
	if tag != "" {
		f.states.Store(tag, state)
	}
	ch := make(chan any)
	go func() {
		defer close(ch)
		for i := int64(1); n < 0 || i <= n; i++ {
			if !wait(ctx, every) || !send(ctx, ch, value(i)) {
				state.Store(Cancelled)
				f.cancelled.Add(1)
				return
			}
		}
		state.Store(Finished)
		f.finished.Add(1)
	}()
	return ch
}

// source resolves Query.source.
func (f *Fixture) source(_ context.Context, p gql.Params) (any, error) {
	tag, _ := p.Args["tag"].(string)
	if v, ok := f.states.Load(tag); ok {
		return string(v.(*atomic.Value).Load().(State)), nil
	}
	return nil, nil
}

// wait sleeps for d; false when ctx ended first.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// send sends v on ch; false when ctx ended first.
func send(ctx context.Context, ch chan<- any, v any) bool {
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	}
}
