package transport

import (
	"context"
	"fmt"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

// wsSub is one active operation on a WebSocket connection.
type wsSub struct {
	id     string
	cancel context.CancelFunc // cancels the operation's (and its source's) context
}

// handleSubscribe checks and starts an operation; false when the
// connection is closing.
func (c *wsConn) handleSubscribe(id string, req gql.Request) bool {
	c.mu.Lock()
	closed := c.subs == nil
	opCtx, exists, full := c.opCtx, c.subs[id] != nil, len(c.subs) >= c.o.MaxSubscriptions
	var sub *wsSub
	var ctx context.Context
	if !closed && opCtx != nil && !exists && !full {
		ctx, sub = c.newSub(opCtx, id)
	}
	c.mu.Unlock()
	switch {
	case closed:
		return false
	case opCtx == nil:
		c.closeWith(CloseUnauthorized, "Unauthorized")
		return false
	case exists:
		c.closeWith(CloseSubscriberAlreadyExists, closeReason("Subscriber for "+id+" already exists", "Subscriber already exists"))
		return false
	case full:
		c.write(context.WithoutCancel(opCtx), outMessage{ID: id, Type: msgError, Payload: []*gql.Error{{
			Message:    fmt.Sprintf("Too many active operations on this connection (at most %d).", c.o.MaxSubscriptions),
			Extensions: map[string]any{"code": CodeTooManySubscriptions},
		}}})
		return true
	}
	c.wg.Add(1)
	go c.run(ctx, sub, req)
	return true
}

// newSub registers an operation under id with a context derived from
// parent. c.mu must be held.
func (c *wsConn) newSub(parent context.Context, id string) (context.Context, *wsSub) {
	ctx, cancel := context.WithCancel(parent)
	sub := &wsSub{id: id, cancel: cancel}
	c.subs[id] = sub
	return ctx, sub
}

// remove unregisters sub and cancels it; false when it was already gone
// (completed by the client or the connection closing).
func (c *wsConn) remove(sub *wsSub) bool {
	c.mu.Lock()
	present := c.subs[sub.id] == sub
	if present {
		delete(c.subs, sub.id)
	}
	c.mu.Unlock()
	sub.cancel()
	return present
}

// stop ends the operation id at the client's request; unknown ids are
// ignored.
func (c *wsConn) stop(id string) {
	c.mu.Lock()
	sub := c.subs[id]
	delete(c.subs, id)
	c.mu.Unlock()
	if sub != nil {
		sub.cancel()
	}
}

// cancelAll ends every operation and refuses new ones; the connection is
// closing.
func (c *wsConn) cancelAll() {
	c.mu.Lock()
	subs := c.subs
	c.subs = nil // no operation starts after this
	c.mu.Unlock()
	for _, sub := range subs {
		sub.cancel()
	}
}

// run executes one operation: it sends each result as next through a
// bounded buffer, then complete; or one error message when the request
// fails. The client is not told about operations it completed itself.
func (c *wsConn) run(ctx context.Context, sub *wsSub, req gql.Request) {
	defer c.wg.Done()
	wctx := context.WithoutCancel(ctx)
	results, errResp := c.s.Subscribe(ctx, req, c.o.Limits)
	if errResp != nil {
		if c.remove(sub) {
			c.write(wctx, outMessage{ID: sub.id, Type: msgError, Payload: errResp.Errors})
		}
		return
	}
	ok := forward(ctx, results, c.o.SendBuffer, c.budget, c.o.WriteTimeout,
		func(r *gql.Response) []byte { return encodeNext(sub.id, r) },
		func(b []byte) bool { return c.writeRaw(wctx, b) },
		func() {
			c.log.Warn().Str("id", sub.id).Int("buffer", c.o.SendBuffer).Msg("client too slow; closing")
			c.closeWith(CloseTryAgainLater, "Client too slow")
			sub.cancel()
		})
	if c.remove(sub) && ok {
		c.write(wctx, outMessage{ID: sub.id, Type: msgComplete})
	}
}
