// Package server is the edge's HTTP front: GraphQL over HTTP on /graphql
// (and POST / as the original did), subscriptions over WebSocket
// (graphql-transport-ws) and server-sent events on the same paths,
// GraphiQL for browsers, health and readiness, metrics, CORS, request ids
// and an access log. It guards itself against hostile and overloading
// clients (guard.go): header, body and write deadlines, bodies read whole
// before a request is served, and caps on requests per client address,
// bodies being received and requests in flight.
package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/cbnats/circuitbreaker/edge/api"
	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/edge/transport"
	"github.com/cbnats/circuitbreaker/schema"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Server is the edge's HTTP handler and its lifecycle.
type Server struct {
	nc      *nats.Conn
	opts    Options
	schema  *gql.Schema
	handler http.Handler
	http    *http.Server
	// closing ends when Shutdown starts; subscriptions end with it, while
	// plain requests in flight are left to finish.
	closing context.Context
	close   context.CancelFunc
}

// New builds the edge on a NATS connection.
func New(nc *nats.Conn, o Options) (*Server, error) {
	var sdl []*ast.Source
	for _, f := range schema.Files() {
		sdl = append(sdl, &ast.Source{Name: f.Name, Input: f.Text})
	}
	o = o.withDefaults()
	refused := o.Metrics.Counter("cb_graphql_refused_total", "GraphQL documents refused by a limit, by limit (tokens, depth, fields, aliases).", "limit")
	o.Limits.OnRefused = func(limit string) { refused.Inc(limit) }
	liveNC := o.LiveConn
	if liveNC == nil {
		liveNC = nc
	}
	hub, err := newHub(liveNC, o.Live, o.Metrics)
	if err != nil {
		return nil, err
	}
	sch, err := gql.NewSchema(sdl, api.New(client.New(nc), hub, o.Metrics, o.Auth).Resolvers())
	if err != nil {
		return nil, err
	}
	s := &Server{nc: nc, opts: o, schema: sch}
	s.closing, s.close = context.WithCancel(context.Background())
	if o.Auth != nil {
		if err := s.publishQuotas(nc); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes()
	s.http = &http.Server{Handler: s.handler, ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout: o.IdleTimeout, MaxHeaderBytes: o.MaxHeaderBytes}
	return s, nil
}

// Handler returns the edge's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	to := s.opts.Transport
	to.Limits, to.Log = s.opts.Limits, s.opts.Log
	if s.opts.Auth != nil {
		to.OnConnect = s.wsConnect
	}
	graphql := transport.Dispatch(s.schema.Handler(gql.HandlerOptions{Limits: s.opts.Limits}),
		s.untilShutdown(transport.WebSocket(s.schema, to)), s.untilShutdown(transport.SSE(s.schema, to)))
	page := graphiqlPage()
	graphql = s.authenticate(graphql)
	mux.Handle("/graphql", browser(page, graphql))
	mux.Handle("/{$}", browser(page, graphql))
	mux.Handle(assetPrefix, graphiqlAssets())
	mux.Handle("GET /console", consolePage())
	mux.Handle("GET /console/{$}", consolePage())
	mux.Handle("GET "+consoleAssets, consoleAssetFiles())
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("Circuit Breaker GraphQL Server is running!\n"))
	})
	mux.HandleFunc("GET /ready", s.ready)
	mux.Handle("GET /metrics", s.adminOnly(s.opts.Metrics.Handler()))
	s.transferRoutes(mux)
	g := newGuard(s.opts)
	guarded := g.deadlines(cors(s.opts.CORSOrigins, g.admit(g.limit(mux))))
	return s.requestID(s.accessLog(newHTTPMetrics(s.opts.Metrics).wrap(guarded)))
}

// browser sends GET requests from browsers (Accept: text/html) to the
// GraphiQL page and everything else to the GraphQL handler.
func browser(page, graphql http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
			page.ServeHTTP(w, r)
			return
		}
		graphql.ServeHTTP(w, r)
	})
}

// ready reports whether NATS is connected and every service answers.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	problem := ""
	if !s.nc.IsConnected() {
		problem = "NATS is not connected"
	}
	for _, svc := range []string{subjects.WorkflowService, subjects.TokenService} {
		if problem == "" {
			if _, err := s.nc.RequestWithContext(ctx, subjects.ServicePing(svc), nil); err != nil {
				problem = "service " + svc + " does not answer: " + err.Error()
			}
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if problem != "" {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(problem + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// requestID takes the client's X-Request-Id or makes one, returns it in
// the response and passes it to the services in a NATS header.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			id = uuid.NewString()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := rpc.WithRequestID(r.Context(), id)
		next.ServeHTTP(w, r.WithContext(s.opts.Log.With().Str("request_id", id).Logger().WithContext(ctx)))
	})
}

// Serve serves HTTP on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops taking requests, ends subscriptions (WebSocket and SSE)
// and waits for the plain requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.close()
	return s.http.Shutdown(ctx)
}

// untilShutdown ends a long-lived request when Shutdown starts.
func (s *Server) untilShutdown(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(s.closing, cancel)()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}
