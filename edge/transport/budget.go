package transport

import (
	"context"
	"sync"
	"time"
)

// budget bounds the bytes buffered for one connection across all its
// operations: results encoded but not yet written to the client.
type budget struct {
	max  int
	mu   sync.Mutex
	used int           // guarded by mu
	free chan struct{} // signalled when bytes are released
}

func newBudget(max int) *budget { return &budget{max: max, free: make(chan struct{}, 1)} }

// take reserves n bytes, waiting until they fit, ctx ends (false) or wait
// passes (false). A message larger than the whole budget fits when nothing
// else is buffered, so one large result is slow, never stuck.
func (b *budget) take(ctx context.Context, n int, wait time.Duration) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return true
		}
		b.mu.Unlock()
		select {
		case <-b.free:
		case <-ctx.Done():
			return false
		case <-timer.C:
			return false
		}
	}
}

// give releases n bytes.
func (b *budget) give(n int) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	select {
	case b.free <- struct{}{}:
	default:
	}
}
