package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/cbnats/circuitbreaker/edge/transport"
	"github.com/cbnats/circuitbreaker/shared/metrics"
)

// guard protects the edge from clients that send slowly, send too much or
// send too many requests at once. Its middlewares, outermost first:
//
//	deadlines  every request: a read deadline of BodyTimeout when it has a
//	           body, a write deadline for a plain request, none for
//	           WebSocket and SSE subscriptions
//	admit      a slot among the client address's MaxPerClient, then the
//	           body read whole, holding one of MaxBodyReads slots while it
//	           arrives
//	limit      one of MaxInFlight slots while the request is served
//
// So a client that is not sending holds at most its own address's slots
// and a body-read slot, for at most BodyTimeout, never an in-flight slot.
type guard struct {
	clients      *clientSlots
	bodyReads    slots
	inFlight     slots
	maxBody      int64
	bodyTimeout  time.Duration
	writeTimeout time.Duration
	refused      metrics.Counter
}

// newGuard builds the guard for o, whose defaults are set.
func newGuard(o Options) *guard {
	return &guard{
		clients:      newClientSlots(o.MaxPerClient),
		bodyReads:    newSlots(o.MaxBodyReads),
		inFlight:     newSlots(o.MaxInFlight),
		maxBody:      o.Limits.MaxBodyBytes,
		bodyTimeout:  o.BodyTimeout,
		writeTimeout: o.WriteTimeout,
		refused: o.Metrics.Counter("cb_http_refused_total",
			"HTTP requests turned away, by reason: per_client (429), body_reads, in_flight (503), body_timeout (408), body_unreadable (400), body_too_large (413).", "reason"),
	}
}

// deadlines bounds every read of a request's body to BodyTimeout: admit's,
// and net/http's discarding of a body left unread (a CORS preflight's, or
// one whose request was refused), which would otherwise wait on a slow
// client for ever. It gives a plain request until WriteTimeout to be
// answered, as http.Server.WriteTimeout would, and clears the write
// deadline of WebSocket and SSE requests (a reused connection may carry
// one from its previous request), so subscriptions live as long as their
// client.
func (g *guard) deadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if hasBody(r) {
			_ = rc.SetReadDeadline(time.Now().Add(g.bodyTimeout))
		}
		if transport.IsWebSocket(r) || transport.IsSSE(r) {
			_ = rc.SetWriteDeadline(time.Time{})
		} else {
			_ = rc.SetWriteDeadline(time.Now().Add(g.writeTimeout))
		}
		next.ServeHTTP(w, r)
	})
}

// hasBody reports whether r comes with a body to read.
func hasBody(r *http.Request) bool { return r.Body != nil && r.Body != http.NoBody }

// admit takes a slot of the client's address for the whole request and
// reads the body before passing the request on.
func (g *guard) admit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := clientKey(r.RemoteAddr)
		if !g.clients.acquire(key) {
			g.refuse(w, refusedPerClient)
			return
		}
		defer g.clients.release(key)
		if hasBody(r) && !streamed(r) && !g.readBody(w, r) { // an import reads its body line by line (transfer.go)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readBody reads r's body whole, under the read deadline that deadlines
// set and up to one byte over the size limit, and puts it back in memory
// for the handler; false when it has answered the request instead. A body
// over the limit is left for the GraphQL handler to refuse with 413, the
// rest of it unread and the connection closed after the answer.
func (g *guard) readBody(w http.ResponseWriter, r *http.Request) bool {
	if !g.bodyReads.tryAcquire() {
		g.refuse(w, refusedBodyReads)
		return false
	}
	defer g.bodyReads.release()
	body, err := io.ReadAll(io.LimitReader(r.Body, g.maxBody+1))
	switch {
	case err != nil:
		g.refuse(w, readFailure(err))
		return false
	case int64(len(body)) > g.maxBody:
		g.refused.Inc(string(refusedBodyTooLarge))
		w.Header().Set("Connection", "close")
	default:
		// Lift the deadline, so that it cannot end a request that takes
		// longer to serve. (net/http lifts it too when the body hits EOF,
		// before its background read that notices a client going away.)
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return true
}

// readFailure names why a body could not be read: too slow, or the client
// went away or sent a malformed chunked body.
func readFailure(err error) reason {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return refusedBodyTimeout
	}
	return refusedBodyUnreadable
}

// limit serves at most MaxInFlight requests at once and refuses more with
// 503 and Retry-After at once, instead of queueing them. Long-lived
// subscriptions count too.
func (g *guard) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.inFlight.tryAcquire() {
			g.refuse(w, refusedInFlight)
			return
		}
		defer g.inFlight.release()
		next.ServeHTTP(w, r)
	})
}

// slots is a counting semaphore that never waits; nil has no limit.
type slots chan struct{}

// newSlots returns n slots, or no limit when n is negative.
func newSlots(n int) slots {
	if n < 0 {
		return nil
	}
	return make(slots, n)
}

// tryAcquire takes a slot if one is free.
func (s slots) tryAcquire() bool {
	if s == nil {
		return true
	}
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

// release frees a slot taken by tryAcquire.
func (s slots) release() {
	if s != nil {
		<-s
	}
}
