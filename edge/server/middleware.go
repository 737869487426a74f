package server

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/shared/metrics"
)

// cors answers preflights and sets the allow headers for allowed origins.
func cors(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	all := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && (all || slices.Contains(origins, origin)) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Accept, X-Request-Id, Authorization")
			h.Set("Access-Control-Expose-Headers", "X-Request-Id")
			h.Set("Access-Control-Max-Age", "600")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status code and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush sends buffered data (server-sent events need it).
func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Hijack hands the connection over (WebSocket upgrades need it).
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.status = http.StatusSwitchingProtocols
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// requestInfo carries what the handlers inside learn about a request out
// to the access log and the metrics around them: the identity that
// authenticated it (authenticate, wsConnect and adminOnly note it). The
// access log puts one into every request's context; it is written and read
// from different goroutines for graphql-ws, hence the atomic.
type requestInfo struct {
	identity atomic.Pointer[auth.Identity]
}

type requestInfoKey struct{}

// withRequestInfo returns ctx carrying a fresh requestInfo, or ctx itself
// when it carries one already.
func withRequestInfo(ctx context.Context) (context.Context, *requestInfo) {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return ctx, ri
	}
	ri := &requestInfo{}
	return context.WithValue(ctx, requestInfoKey{}, ri), ri
}

// noteIdentity records id as the identity of ctx's request, for the access
// log and the metrics; it does nothing outside a request.
func noteIdentity(ctx context.Context, id auth.Identity) {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		ri.identity.Store(&id)
	}
}

// tenantLabel is the tenant of a metric or access-log line: "-" without an
// identity (open mode, refused credentials) or when the identity names no
// tenant, "*" for an identity of every tenant, else the tenant.
func tenantLabel(id *auth.Identity) string {
	if id == nil || id.Tenant == "" {
		return "-"
	}
	return id.Tenant
}

// credentialLabel names the credential of a metric: the API key's name
// (the auth file bounds them), "jwt" for every JWT (their subjects are
// unbounded, so they stay out of metrics), "-" without an identity. API
// keys never expire and JWTs always do (exp is required), which tells the
// two apart.
func credentialLabel(id *auth.Identity) string {
	switch {
	case id == nil:
		return "-"
	case !id.Expires.IsZero():
		return "jwt"
	}
	return id.Name
}

// accessLog logs one structured line per request, with the authenticated
// identity's name, tenant and role when there is one (never the
// credential).
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		ctx, ri := withRequestInfo(r.Context())
		next.ServeHTTP(sw, r.WithContext(ctx))
		ev := zerolog.Ctx(r.Context()).Info().Str("method", r.Method).Str("path", r.URL.Path).
			Int("status", sw.status).Int("bytes", sw.bytes).Dur("took", time.Since(start))
		if id := ri.identity.Load(); id != nil {
			ev = ev.Str("identity", id.Name).Str("tenant", tenantLabel(id)).Str("role", id.Role.String())
		}
		ev.Msg("http")
	})
}

// httpMetrics records requests and latency by route and status.
type httpMetrics struct {
	requests metrics.Counter
	latency  metrics.Histogram
}

func newHTTPMetrics(r *metrics.Registry) httpMetrics {
	return httpMetrics{
		requests: r.Counter("cb_http_requests_total", "HTTP requests, by path, status, tenant (- for none, * for all) and credential (an API key's name, jwt, or - for none).",
			"path", "status", "tenant", "credential"),
		latency: r.Histogram("cb_http_request_duration_seconds", "HTTP request latency, by path.", "path"),
	}
}

func (m httpMetrics) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		ctx, ri := withRequestInfo(r.Context())
		if ctx != r.Context() { // not behind accessLog
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(sw, r)
		path := route(r.URL.Path)
		id := ri.identity.Load()
		m.requests.Inc(path, strconv.Itoa(max(sw.status, 200)), tenantLabel(id), credentialLabel(id))
		m.latency.Observe(time.Since(start), path)
	})
}

// route bounds the path label to the edge's routes.
func route(p string) string {
	switch p {
	case "/", "/graphql", "/health", "/ready", "/metrics":
		return p
	}
	if strings.HasPrefix(p, assetPrefix) {
		return assetPrefix
	}
	return "other"
}
