package server

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/edge/live"
	"github.com/cbnats/circuitbreaker/edge/transport"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/metrics"
)

// Options configure the edge. The zero value is useful: zero fields get
// the defaults below, which a public deployment can keep.
type Options struct {
	Limits      gql.Limits
	CORSOrigins []string // allowed origins; "*" allows any; empty disables CORS
	// MaxInFlight bounds the requests served at once; more get 503 with
	// Retry-After at once (default 1024). A request takes its slot only
	// once its body has been read, so slow senders cannot hold the slots.
	MaxInFlight int
	// MaxPerClient bounds the requests in progress from one client
	// address (an IPv4 address or an IPv6 /64), subscriptions and body
	// reads included; more get 429 with Retry-After (default 64; negative:
	// no limit).
	MaxPerClient int
	// MaxBodyReads bounds the request bodies being received at once; more
	// get 503 with Retry-After (default 1024; negative: no limit).
	MaxBodyReads int
	// ReadHeaderTimeout bounds reading a request's headers; a slower client
	// has its connection closed (default 5s).
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body, which is read whole
	// before the request is served; a slower client gets 408 and its
	// connection is closed (default 10s).
	BodyTimeout time.Duration
	// WriteTimeout bounds answering a plain request, counted from the end
	// of its headers; WebSocket and SSE subscriptions are exempt. It is
	// raised to BodyTimeout + Limits.Timeout + 1s when lower (default 30s).
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle that long (default 2m).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header block; more get 431
	// (default 64 KiB).
	MaxHeaderBytes int
	// Live bounds live subscriptions (edge/live); Transport's
	// MaxSubscriptions and MaxBufferedBytes bound each WebSocket and SSE
	// connection (its Limits and Log are set from these Options).
	Live      live.Options
	Transport transport.Options
	// LiveConn carries the streams read for live subscriptions, so that no
	// subscriber can starve request replies; the edge's own connection
	// when nil.
	LiveConn *nats.Conn
	// Auth, when set, requires credentials on GraphQL requests (and on
	// /metrics unless its file opens it) and checks roles; nil leaves the
	// edge open (local use only).
	Auth *auth.Authenticator
	// Metrics is where the edge records; /metrics serves it.
	Metrics *metrics.Registry
	Log     zerolog.Logger
}

// Option defaults.
const (
	DefaultMaxInFlight       = 1024
	DefaultMaxPerClient      = 64
	DefaultMaxBodyReads      = 1024
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultBodyTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
)

// withDefaults returns o with zero fields replaced by their defaults.
func (o Options) withDefaults() Options {
	if o.Metrics == nil {
		o.Metrics = metrics.NewRegistry()
	}
	setDefault(&o.MaxInFlight, DefaultMaxInFlight)
	orDefault(&o.MaxPerClient, DefaultMaxPerClient)
	orDefault(&o.MaxBodyReads, DefaultMaxBodyReads)
	setDefault(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&o.BodyTimeout, DefaultBodyTimeout)
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	setDefault(&o.IdleTimeout, DefaultIdleTimeout)
	setDefault(&o.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&o.Limits.MaxBodyBytes, gql.DefaultMaxBodyBytes)
	setDefault(&o.Limits.Timeout, gql.DefaultTimeout)
	// A plain request may take its whole body timeout and then its whole
	// execution deadline; its answer must still get out.
	o.WriteTimeout = max(o.WriteTimeout, o.BodyTimeout+o.Limits.Timeout+time.Second)
	return o
}

// setDefault sets *p to d when it is not positive.
func setDefault[T int | int64 | time.Duration](p *T, d T) {
	if *p <= 0 {
		*p = d
	}
}

// orDefault sets *p to d when it is zero; negative means no limit.
func orDefault(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

// OptionsFrom builds Options from the HTTP configuration. There, 0 means
// no limit for MaxPerClient and MaxBodyReads.
func OptionsFrom(h config.HTTP, reg *metrics.Registry, log zerolog.Logger) Options {
	return Options{
		MaxInFlight:       h.MaxInFlight,
		MaxPerClient:      noLimitIfZero(h.MaxPerClient),
		MaxBodyReads:      noLimitIfZero(h.MaxBodyReads),
		ReadHeaderTimeout: h.HeaderTimeout,
		BodyTimeout:       h.BodyTimeout,
		WriteTimeout:      h.WriteTimeout,
		IdleTimeout:       h.IdleTimeout,
		MaxHeaderBytes:    h.MaxHeaderBytes,
		Metrics:           reg,
		Limits: gql.Limits{MaxTokens: h.MaxTokens, MaxDepth: h.MaxDepth, MaxAliases: h.MaxAliases, MaxFields: h.MaxFields,
			MaxBodyBytes: h.MaxBodyBytes, Timeout: h.Timeout, DisableIntrospection: h.NoIntrospect},
		CORSOrigins: h.Origins(),
		Live:        live.Options{MaxPerWorkflow: h.MaxSubsPerWF, MaxQueuedBytes: h.SubQueueBytes},
		Transport:   transport.Options{MaxSubscriptions: h.MaxSubsPerConn, MaxBufferedBytes: h.ConnBufferBytes},
		Log:         log,
	}
}

// noLimitIfZero maps the configuration's "0: no limit" to Options' -1.
func noLimitIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
