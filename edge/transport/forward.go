package transport

import (
	"context"
	"time"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

// forward moves results to send through a buffer of size messages, whose
// bytes count against the connection's budget. The buffer absorbs bursts
// (a replayed backlog, say) while the client keeps reading; when it stays
// full (or the budget spent) for longer than wait the client is not
// keeping up: forward calls overflow (which must end the operation) and
// stops. So a slow client holds back only its own operation's source, for
// at most wait, and never other operations or clients; memory stays
// bounded by size messages and by the budget. forward returns once every
// buffered message was sent or dropped: false after an overflow, true when
// results closed or ctx ended. When send fails (the client is gone) the
// remaining messages are dropped.
func forward(ctx context.Context, results <-chan *gql.Response, size int, bud *budget, wait time.Duration,
	encode func(*gql.Response) []byte, send func([]byte) bool, overflow func()) bool {
	buf := make(chan []byte, size)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for b := range buf {
			ok := send(b)
			bud.give(len(b))
			if !ok {
				for b := range buf {
					bud.give(len(b))
				}
				return
			}
		}
	}()
	ok := fill(ctx, results, buf, bud, wait, encode)
	if !ok {
		overflow()
	}
	close(buf)
	<-sent
	return ok
}

// fill encodes results into buf until results closes or ctx ends (true),
// or buf stays full, or the budget spent, for wait (false).
func fill(ctx context.Context, results <-chan *gql.Response, buf chan<- []byte, bud *budget, wait time.Duration, encode func(*gql.Response) []byte) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for r := range results {
		b := encode(r)
		if !bud.take(ctx, len(b), wait) {
			return ctx.Err() != nil
		}
		select {
		case buf <- b:
			continue
		default:
		}
		timer.Reset(wait)
		select {
		case buf <- b:
		case <-ctx.Done():
			bud.give(len(b))
			return true
		case <-timer.C:
			bud.give(len(b))
			return false
		}
	}
	return true
}
