package transport

import (
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/shared/rpc"
)

// Options configures WebSocket and SSE. The zero value is useful.
type Options struct {
	// Limits bounds each operation; Limits.MaxBodyBytes also bounds one
	// WebSocket message and one SSE request body.
	Limits gql.Limits
	// InitTimeout is how long a WebSocket client may take to send
	// connection_init before it is closed with 4408. Default 10s.
	InitTimeout time.Duration
	// PingInterval is how often the server sends a graphql-transport-ws
	// ping. Default 30s.
	PingInterval time.Duration
	// KeepAlive is how often an SSE stream gets a ":" comment so proxies
	// keep it open. Default 15s.
	KeepAlive time.Duration
	// MaxSubscriptions bounds the operations active at once on one
	// WebSocket connection; more are refused with an error message.
	// Default 100.
	MaxSubscriptions int
	// SendBuffer is the number of messages buffered per operation; it
	// absorbs bursts such as a replayed backlog. A client that leaves the
	// buffer full for WriteTimeout is disconnected (WebSocket close 1013,
	// or the SSE stream ends); meanwhile only that operation's source
	// waits, never other operations or clients. Default 64.
	SendBuffer int
	// MaxBufferedBytes bounds the results encoded and not yet written, over
	// all the operations of one connection (a paused client's memory); an
	// operation that cannot buffer its next result within WriteTimeout ends
	// as SendBuffer's does. Default 8 MiB.
	MaxBufferedBytes int
	// WriteTimeout bounds one write to a client and how long an operation
	// waits for room in its buffer; a client that takes no message for
	// that long is disconnected. Default 10s.
	WriteTimeout time.Duration
	// OriginPatterns lists the extra origins (host patterns, see
	// websocket.AcceptOptions) allowed to open a WebSocket; same-origin
	// requests and clients that send no Origin are always allowed.
	OriginPatterns []string
	// OnConnect, when set, admits a connection: it gets the request and,
	// for WebSocket, the connection_init payload (nil for SSE) and returns
	// the context the connection's operations run under, which must derive
	// from ctx. An error closes the WebSocket with 4403 or answers SSE with
	// 403.
	OnConnect func(ctx context.Context, r *http.Request, payload map[string]any) (context.Context, error)
	// Log receives connection events. The zero value logs nothing; a logger
	// in the request context (zerolog.Ctx) takes precedence.
	Log zerolog.Logger
}

// Option defaults.
const (
	DefaultInitTimeout      = 10 * time.Second
	DefaultPingInterval     = 30 * time.Second
	DefaultKeepAlive        = 15 * time.Second
	DefaultMaxSubscriptions = 100
	DefaultSendBuffer       = 64
	DefaultMaxBufferedBytes = 8 << 20
	DefaultWriteTimeout     = 10 * time.Second
)

// HeaderRequestID is the request id header honoured by both transports.
const HeaderRequestID = "X-Request-Id"

// withDefaults returns o with zero fields replaced by defaults.
func (o Options) withDefaults() Options {
	setDefault(&o.InitTimeout, DefaultInitTimeout)
	setDefault(&o.PingInterval, DefaultPingInterval)
	setDefault(&o.KeepAlive, DefaultKeepAlive)
	setDefault(&o.MaxSubscriptions, DefaultMaxSubscriptions)
	setDefault(&o.SendBuffer, DefaultSendBuffer)
	setDefault(&o.MaxBufferedBytes, DefaultMaxBufferedBytes)
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	setDefault(&o.Limits.MaxBodyBytes, gql.DefaultMaxBodyBytes)
	return o
}

// setDefault sets *p to d when it is not positive.
func setDefault[T int | int64 | time.Duration](p *T, d T) {
	if *p <= 0 {
		*p = d
	}
}

// requestContext returns the request's context carrying its request id and
// a logger, and that logger.
func (o *Options) requestContext(r *http.Request, transport string) (context.Context, zerolog.Logger) {
	ctx := r.Context()
	id := rpc.RequestID(ctx)
	if id == "" {
		if id = r.Header.Get(HeaderRequestID); id != "" {
			ctx = rpc.WithRequestID(ctx, id)
		}
	}
	log := o.Log
	if l := zerolog.Ctx(ctx); l.GetLevel() != zerolog.Disabled {
		log = *l
	} else if id != "" {
		log = log.With().Str("request_id", id).Logger()
	}
	log = log.With().Str("transport", transport).Logger()
	return log.WithContext(ctx), log
}

// connect runs OnConnect, if set.
func (o *Options) connect(ctx context.Context, r *http.Request, payload map[string]any) (context.Context, error) {
	if o.OnConnect == nil {
		return ctx, nil
	}
	cctx, err := o.OnConnect(ctx, r, payload)
	if err != nil {
		return nil, err
	}
	if cctx == nil {
		cctx = ctx
	}
	return cctx, nil
}
