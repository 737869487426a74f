package transport

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

// WebSocket serves the graphql-transport-ws protocol: connection_init and
// connection_ack, ping and pong both ways, subscribe answered by next
// messages and complete (or one error message), complete from the client
// to stop an operation. Queries and mutations sent with subscribe get one
// next and a complete. Protocol violations close the socket with the
// protocol's codes (4400, 4401, 4403, 4406, 4408, 4409, 4429); a client
// too slow to read is closed with 1013.
func WebSocket(s *gql.Schema, o Options) http.Handler {
	o = o.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveWebSocket(w, r, s, &o)
	})
}

// serveWebSocket upgrades r and runs the connection until it ends.
func serveWebSocket(w http.ResponseWriter, r *http.Request, s *gql.Schema, o *Options) {
	ctx, log := o.requestContext(r, "ws")
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:   []string{Subprotocol},
		OriginPatterns: o.OriginPatterns,
	})
	if err != nil {
		log.Debug().Err(err).Msg("websocket upgrade failed")
		return
	}
	if ws.Subprotocol() != Subprotocol {
		_ = ws.Close(CloseSubprotocolNotAccepted, "Subprotocol not acceptable")
		return
	}
	ws.SetReadLimit(o.Limits.MaxBodyBytes)
	c := &wsConn{s: s, o: o, ws: ws, r: r, log: log, budget: newBudget(o.MaxBufferedBytes), closing: make(chan struct{}), subs: map[string]*wsSub{}}
	c.serve(ctx)
}

// wsConn is one graphql-transport-ws connection. The reader goroutine
// handles client messages; each operation runs in its own goroutines (see
// wsSub); serve waits for all of them before returning.
type wsConn struct {
	s      *gql.Schema
	o      *Options
	ws     *websocket.Conn
	r      *http.Request
	log    zerolog.Logger
	budget *budget // the bytes buffered for all operations

	wg        sync.WaitGroup // reader, pinger and operation goroutines
	closing   chan struct{}  // closed by closeWith
	closeOnce sync.Once
	closeCode websocket.StatusCode // set once, before closing is closed
	closeWhy  string

	mu      sync.Mutex        // guards the fields below
	initGot bool              // connection_init received
	opCtx   context.Context   // parent of operation contexts; nil until acknowledged
	subs    map[string]*wsSub // active operations by id; nil once closing
}

// serve runs the connection: it reads until the client goes away or a
// close is requested, then cancels every operation, closes the socket and
// waits for all goroutines.
func (c *wsConn) serve(ctx context.Context) {
	c.log.Debug().Msg("websocket connected")
	initTimer := time.AfterFunc(c.o.InitTimeout, func() {
		if !c.initReceived() {
			c.closeWith(CloseInitTimeout, "Connection initialisation timeout")
		}
	})
	defer initTimer.Stop()
	stopShutdown := context.AfterFunc(ctx, func() { c.closeWith(websocket.StatusGoingAway, "Server shutting down") })
	defer stopShutdown()
	c.wg.Add(1)
	go c.readLoop(context.WithoutCancel(ctx))
	<-c.closing
	c.cancelAll()
	_ = c.ws.Close(c.closeCode, c.closeWhy)
	c.wg.Wait()
	c.log.Debug().Int("code", int(c.closeCode)).Str("reason", c.closeWhy).Msg("websocket closed")
}

// closeWith asks serve to close the socket with code and reason; only the
// first call counts.
func (c *wsConn) closeWith(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeWhy = code, reason
		close(c.closing)
	})
}

// readLoop reads and handles client messages until the socket fails.
func (c *wsConn) readLoop(ctx context.Context) {
	defer c.wg.Done()
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			c.closeWith(closeStatusOf(err), "")
			return
		}
		if !c.handle(ctx, data) {
			return
		}
	}
}

// closeStatusOf is the code to echo when the read failed: the client's
// own close code, or normal closure.
func closeStatusOf(err error) websocket.StatusCode {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return websocket.StatusNormalClosure
}

// handle handles one client message; false when the connection is closing.
func (c *wsConn) handle(ctx context.Context, data []byte) bool {
	m, err := parseMessage(data)
	if err != nil {
		c.log.Debug().Err(err).Msg("invalid message")
		c.closeWith(CloseBadRequest, closeReason(err.Error(), "Invalid message received"))
		return false
	}
	switch m.Type {
	case msgConnectionInit:
		return c.handleInit(ctx, m.Payload)
	case msgPing:
		c.write(ctx, outMessage{Type: msgPong, Payload: nilIfEmpty(m.Payload)})
	case msgPong:
		// A heartbeat or the answer to our ping: nothing to do.
	case msgSubscribe:
		return c.handleSubscribe(m.ID, m.Request)
	case msgComplete:
		c.stop(m.ID)
	}
	return true
}

// nilIfEmpty returns nil for a nil map so the payload key is omitted.
func nilIfEmpty(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}

// handleInit admits the connection (OnConnect), acknowledges it and starts
// the pinger.
func (c *wsConn) handleInit(ctx context.Context, payload map[string]any) bool {
	c.mu.Lock()
	again := c.initGot
	c.initGot = true
	c.mu.Unlock()
	if again {
		c.closeWith(CloseTooManyInitRequests, "Too many initialisation requests")
		return false
	}
	opCtx, err := c.o.connect(ctx, c.r, payload)
	if err != nil {
		c.log.Info().Err(err).Msg("connection refused")
		c.closeWith(CloseForbidden, "Forbidden")
		return false
	}
	c.mu.Lock()
	c.opCtx = opCtx
	c.mu.Unlock()
	c.write(ctx, outMessage{Type: msgConnectionAck})
	c.wg.Add(1)
	go c.pinger(ctx)
	return true
}

// initReceived reports whether connection_init arrived.
func (c *wsConn) initReceived() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.initGot
}

// pinger sends a ping every PingInterval until the connection closes.
func (c *wsConn) pinger(ctx context.Context) {
	defer c.wg.Done()
	t := time.NewTicker(c.o.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-t.C:
			c.write(ctx, outMessage{Type: msgPing})
		}
	}
}

// write sends one message within WriteTimeout; a failed write closes the
// connection.
func (c *wsConn) write(ctx context.Context, m outMessage) bool {
	return c.writeRaw(ctx, encodeMessage(m))
}

// writeRaw sends one encoded message; see write.
func (c *wsConn) writeRaw(ctx context.Context, b []byte) bool {
	ctx, cancel := context.WithTimeout(ctx, c.o.WriteTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.closeWith(websocket.StatusGoingAway, "")
		return false
	}
	return true
}
