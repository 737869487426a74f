package live

import (
	"context"
	"sync"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// sub is one live subscription: the messages offered to it and not yet
// taken, bounded in bytes.
type sub struct {
	match func(*item) bool
	max   int           // bytes queued at most
	wake  chan struct{} // signalled when the queue or err changes

	mu      sync.Mutex
	queue   []*item // guarded by mu, and the fields below
	bytes   int
	holding bool // catching up: an overflow loses the queue (read again from the store), not the subscription
	lost    bool // the queue overflowed while holding
	err     error
}

func newSub(max int, holding bool, match func(*item) bool) *sub {
	return &sub{match: match, max: max, holding: holding, wake: make(chan struct{}, 1)}
}

// offer queues it if it matches. It never blocks: a subscription that
// would exceed its bound is ended (or, while catching up, loses its queue).
func (s *sub) offer(it *item) {
	if !s.match(it) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.err != nil:
		return
	case s.bytes+it.size() <= s.max:
		s.queue = append(s.queue, it)
		s.bytes += it.size()
	case s.holding:
		s.queue, s.bytes, s.lost = nil, 0, true
	default:
		s.queue, s.bytes = nil, 0
		s.err = fail.New(fail.ResourceExhausted, "subscription ended: it fell more than %d bytes behind the workflow's changes (a client must read its updates as fast as they come)", s.max)
	}
	s.notify()
}

// end ends the subscription with err once what is queued is taken.
func (s *sub) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	s.notify()
}

func (s *sub) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// caughtUp ends holding unless the queue overflowed since the last call,
// in which case the caller must read the store again.
func (s *sub) caughtUp() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost {
		s.lost = false
		return false
	}
	s.holding = false
	return true
}

// live emits each queued and later message after stream sequence last,
// until ctx ends or the subscription is ended.
func (s *sub) live(ctx context.Context, last uint64, emit func(any) bool) error {
	for {
		items, err := s.take(ctx)
		if err != nil {
			return err
		}
		for _, it := range items {
			if it.seq <= last {
				continue // already emitted while catching up
			}
			last = it.seq
			v, err := it.value()
			if err != nil {
				return err
			}
			if !emit(v) {
				return ctx.Err()
			}
		}
	}
}

// take waits for queued messages and takes them all; after the queue, the
// error that ended the subscription.
func (s *sub) take(ctx context.Context) ([]*item, error) {
	for {
		s.mu.Lock()
		q, err := s.queue, s.err
		s.queue, s.bytes = nil, 0
		s.mu.Unlock()
		if len(q) > 0 {
			return q, nil
		}
		if err != nil {
			return nil, err
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
