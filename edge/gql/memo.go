package gql

import (
	"context"
	"fmt"
	"sync"
)

// memoKey is the context key of the per-request memo.
type memoKey struct{}

// memo holds results for one request. Entries are never evicted: the memo
// lives as long as the request.
type memo struct {
	mu      sync.Mutex // guards entries
	entries map[string]*memoEntry
}

// memoEntry is one (possibly in-flight) call; done closes when val and err
// are set.
type memoEntry struct {
	done chan struct{}
	val  any
	err  error
}

// withMemo returns ctx carrying a fresh request memo.
func withMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &memo{entries: map[string]*memoEntry{}})
}

// Memo returns fn's result for key, calling fn at most once per request:
// concurrent callers with the same key wait for the first call and share its
// result (errors included). Outside Execute/Subscribe it just calls fn.
// A waiting caller returns ctx.Err() if its ctx ends first.
func Memo(ctx context.Context, key string, fn func() (any, error)) (any, error) {
	m, _ := ctx.Value(memoKey{}).(*memo)
	if m == nil {
		return fn()
	}
	m.mu.Lock()
	e, ok := m.entries[key]
	if !ok {
		e = &memoEntry{done: make(chan struct{})}
		m.entries[key] = e
	}
	m.mu.Unlock()
	if !ok {
		e.run(fn)
	}
	select {
	case <-e.done:
		return e.val, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run calls fn and publishes its result; a panic becomes an error for the
// waiters and is re-raised for the caller.
func (e *memoEntry) run(fn func() (any, error)) {
	defer close(e.done)
	defer func() {
		if r := recover(); r != nil {
			e.err = fmt.Errorf("gql: memo: panic: %v", r)
			panic(r)
		}
	}()
	e.val, e.err = fn()
}
