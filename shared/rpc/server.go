// Package rpc is the one way requests cross NATS: Endpoint adapts a typed
// handler to a micro endpoint, and Call is its client twin.
//
// Endpoint decodes and validates the request, derives a context with the
// caller's deadline, runs the handler on a bounded pool of warm workers (a
// micro endpoint delivers one message at a time, so work is handed off),
// turns panics into 500s and errors into micro error headers.
//
// Every request is served within the tenant scope its subject names
// (cb.<scope>.…, see shared/tenant): the handler's context carries it, and
// a request naming a workflow (wire.WorkflowScoped) has that workflow
// resolved in the scope before the handler runs, so no endpoint can
// forget to.
package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Handler is a typed endpoint implementation.
type Handler[Req, Resp any] func(ctx context.Context, req *Req) (*Resp, error)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Concurrency bounds the requests handled at once (default 256).
	Concurrency int
	// MaxQueue bounds the requests waiting for a slot (default
	// 4×Concurrency); above it a request is refused at once with
	// UNAVAILABLE instead of queueing without bound.
	MaxQueue int
	// Timeout bounds a request whose caller sent no deadline (default 10s).
	Timeout time.Duration
	// Metrics, when set, records requests, errors and latency per subject.
	Metrics *metrics.Registry
	// Service names the service in metrics.
	Service string
}

// A reply is published on the server's own connection, not through the
// micro.Request: micro reads its request's state when the handler returns,
// and ours returns at once (the work runs on the pool), so touching the
// request later would race. micro's STATS therefore count hand-offs; the
// endpoint's STATS data (WorkStats) counts the real work and errors.

// Server runs endpoint handlers on a bounded pool.
type Server struct {
	nc       *nats.Conn
	log      zerolog.Logger
	timeout  time.Duration
	sem      chan struct{}
	idle     chan func()  // unbuffered: a send succeeds when a worker waits
	limit    int64        // Concurrency + MaxQueue
	admitted atomic.Int64 // requests running or waiting for a slot
	mu       sync.RWMutex // admission (read) against Close (write)
	closed   bool         // refuses new requests; guarded by mu
	wg       sync.WaitGroup
	service  string
	requests metrics.Counter
	latency  metrics.Histogram
	work     sync.Map // subject → *workStats
}

// workStats is the real work done per subject, for micro's STATS (whose
// own processing time only counts the hand-off to the pool).
type workStats struct {
	requests, errors, nanos atomic.Int64
	// Appended for issue 16 (natsPerformanceMetrics): the work time in
	// metrics.DefaultBuckets (+Inf last), and the errors of code 5xx.
	buckets      [16 + 1]atomic.Int64
	serverErrors atomic.Int64
}

// WorkStats is an endpoint's "data" in `nats micro stats|info`.
type WorkStats struct {
	Requests       int64   `json:"requests"`
	Errors         int64   `json:"errors"`
	AverageMicros  float64 `json:"average_work_micros"`
	TotalWorkNanos int64   `json:"total_work_nanos"`
	// LatencyBuckets counts requests by work time: LatencyBounds are the
	// buckets' upper bounds in seconds (metrics.DefaultBuckets), the last
	// count is above them all. Not cumulative.
	LatencyBuckets []int64   `json:"latency_buckets,omitempty"`
	LatencyBounds  []float64 `json:"latency_bounds_seconds,omitempty"`
	// ServerErrors counts the errors of code 500 and above (unavailable,
	// timeout, internal); Errors counts every error.
	ServerErrors int64 `json:"server_errors"`
}

// Stats returns the work done on subject; it is the micro StatsHandler.
func (s *Server) Stats(subject string) WorkStats {
	v, ok := s.work.Load(subject)
	if !ok {
		return WorkStats{}
	}
	w := v.(*workStats)
	st := WorkStats{Requests: w.requests.Load(), Errors: w.errors.Load(), TotalWorkNanos: w.nanos.Load(),
		ServerErrors: w.serverErrors.Load(), LatencyBounds: metrics.DefaultBuckets, LatencyBuckets: make([]int64, len(w.buckets))}
	for i := range w.buckets {
		st.LatencyBuckets[i] = w.buckets[i].Load()
	}
	st.LatencyBounds = st.LatencyBounds[:min(len(st.LatencyBounds), len(w.buckets)-1)]
	if st.Requests > 0 {
		st.AverageMicros = float64(st.TotalWorkNanos) / float64(st.Requests) / 1000
	}
	return st
}

func (s *Server) record(subject string, d time.Duration, err error) {
	v, _ := s.work.LoadOrStore(subject, &workStats{})
	w := v.(*workStats)
	w.requests.Add(1)
	w.nanos.Add(int64(d))
	w.buckets[min(sort.SearchFloat64s(metrics.DefaultBuckets, d.Seconds()), len(w.buckets)-1)].Add(1)
	if err != nil {
		w.errors.Add(1)
		if Code(err) >= 500 {
			w.serverErrors.Add(1)
		}
	}
}

// NewServer returns a Server that replies on nc and logs to log.
func NewServer(nc *nats.Conn, log zerolog.Logger, o Options) *Server {
	if o.Concurrency <= 0 {
		o.Concurrency = 256
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 4 * o.Concurrency
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewRegistry()
	}
	return &Server{nc: nc, log: log, timeout: o.Timeout, sem: make(chan struct{}, o.Concurrency), idle: make(chan func()),
		limit: int64(o.Concurrency + o.MaxQueue), service: o.Service,
		requests: o.Metrics.Counter("cb_service_requests_total", "Requests served, by service, endpoint subject, tenant scope and reply code.", "service", "subject", "tenant", "code"),
		latency:  o.Metrics.Histogram("cb_service_request_duration_seconds", "Time from receipt to reply, by service and subject.", "service", "subject"),
	}
}

// Close refuses the requests that arrive from now on with ErrStopping (a
// draining subscription still delivers the ones it holds), so that after
// Wait no handler starts on what is being shut down. It flushes the
// connection first: once it returns, the NATS server has seen any
// unsubscribe sent before (micro's Stop) and delivers no more.
func (s *Server) Close() {
	_ = s.nc.Flush()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// Wait blocks until every request admitted has been answered.
func (s *Server) Wait() { s.wg.Wait() }

// admit counts a request in, unless the server is closed or full.
func (s *Server) admit() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrStopping
	}
	if s.admitted.Add(1) > s.limit {
		s.admitted.Add(-1)
		return ErrOverloaded
	}
	s.wg.Add(1)
	return nil
}

// validator is implemented by requests that check themselves.
type validator interface{ Validate() error }

// Endpoint adapts h to a micro handler served by s.
func Endpoint[Req, Resp any](s *Server, h Handler[Req, Resp]) micro.Handler {
	return micro.HandlerFunc(func(r micro.Request) {
		start := time.Now()
		if err := s.admit(); err != nil {
			s.reply(r, start, nil, err)
			return
		}
		s.run(func() {
			defer func() { s.admitted.Add(-1); s.wg.Done() }()
			ctx, cancel := s.context(r)
			defer cancel()
			select {
			case s.sem <- struct{}{}:
			case <-ctx.Done():
				s.reply(r, start, nil, ErrOverloaded)
				return
			}
			defer func() { <-s.sem }()
			resp, err := serve(ctx, r, h)
			s.reply(r, start, resp, err)
		})
	})
}

// workerIdle is how long a worker waits for another job before it exits.
const workerIdle = 5 * time.Second

// run hands job to an idle worker, or starts a new one. Workers live on
// while jobs keep coming, so under load handlers run on goroutines whose
// stacks have already grown (a fresh goroutine per request spent ~5 % of
// the CPU of a get copying its stack as it grew). The number of workers is
// bounded by the requests admitted.
func (s *Server) run(job func()) {
	select {
	case s.idle <- job:
	default:
		go s.worker(job)
	}
}

func (s *Server) worker(job func()) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		job()
		t.Reset(workerIdle)
		select {
		case job = <-s.idle:
		case <-t.C:
			return
		}
	}
}

// Requests refused before any work: safe to send again, to any instance.
var (
	ErrOverloaded = fail.New(fail.Unavailable, "service overloaded, retry later")
	ErrStopping   = fail.New(fail.Unavailable, "service instance stopping, retry")
)

// NotServed reports whether err says the request was never worked on: no
// instance listened, or the one that got it refused it at once.
func NotServed(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, ErrOverloaded) || errors.Is(err, ErrStopping)
}

// context derives the request's context: the caller's deadline (or the
// default timeout) and request id.
func (s *Server) context(r micro.Request) (context.Context, context.CancelFunc) {
	dl := time.Now().Add(s.timeout)
	if v := r.Headers().Get(subjects.HeaderDeadline); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil && t.Before(dl) {
			dl = t
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), dl)
	return WithRequestID(ctx, r.Headers().Get(subjects.HeaderRequestID)), cancel
}

func serve[Req, Resp any](ctx context.Context, r micro.Request, h Handler[Req, Resp]) (resp *Resp, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	req := new(Req)
	if len(r.Data()) > 0 {
		if err := wire.Unmarshal(r.Data(), req); err != nil {
			return nil, err
		}
	}
	if v, ok := any(req).(validator); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	scope, err := tenant.Parse(subjects.ScopeOf(r.Subject()))
	if err != nil {
		return nil, err
	}
	if w, ok := any(req).(wire.WorkflowScoped); ok && *w.WorkflowRef() != "" {
		if *w.WorkflowRef(), err = scope.Resolve(*w.WorkflowRef()); err != nil {
			return nil, err
		}
	}
	return h(tenant.WithScope(ctx, scope), req)
}

func (s *Server) reply(r micro.Request, start time.Time, resp any, err error) {
	endpoint, scope := subjects.PatternOf(r.Subject()), subjects.ScopeOf(r.Subject())
	defer func() {
		d := time.Since(start)
		s.latency.Observe(d, s.service, endpoint)
		s.record(endpoint, d, err)
	}()
	if err == nil {
		if err = s.publish(r.Reply(), resp, nil); err == nil {
			s.requests.Inc(s.service, endpoint, scope, "200")
			return
		}
		if errors.Is(err, nats.ErrMaxPayload) {
			err = fail.Wrap(fail.BadInput, err, "reply too large: ask for a smaller page")
		}
	}
	if fail.KindOf(err) == fail.Internal && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		err = fail.Wrap(fail.Timeout, err, "deadline passed before the request was done")
	}
	code := strconv.Itoa(Code(err))
	s.requests.Inc(s.service, endpoint, scope, code)
	msg, kind := err.Error(), fail.KindOf(err)
	if kind == fail.Internal {
		s.log.Error().Err(err).Str("subject", r.Subject()).Str("request_id", r.Headers().Get(subjects.HeaderRequestID)).Msg("internal error")
		msg = "internal error"
	}
	h := nats.Header{micro.ErrorHeader: {msg}, micro.ErrorCodeHeader: {code}, subjects.HeaderErrorKind: {kind.String()}}
	if e := s.publish(r.Reply(), nil, h); e != nil {
		s.log.Warn().Err(e).Msg("reply failed")
	}
}

// publish sends a reply: resp as JSON, or an empty body with headers. A
// json.RawMessage or a json.Marshaler is sent as it writes itself (our
// stored JSON needs no second validating pass through encoding/json).
func (s *Server) publish(subject string, resp any, h nats.Header) error {
	m := &nats.Msg{Subject: subject, Header: h}
	var err error
	switch r := resp.(type) {
	case nil:
	case *json.RawMessage:
		m.Data = *r
	case json.Marshaler:
		m.Data, err = r.MarshalJSON()
	default:
		m.Data, err = json.Marshal(resp)
	}
	if err != nil {
		return fail.Wrap(fail.Internal, err, "encode reply")
	}
	return s.nc.PublishMsg(m)
}
