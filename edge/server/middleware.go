package server

import (
	"bufio"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

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

// accessLog logs one structured line per request.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		zerolog.Ctx(r.Context()).Info().Str("method", r.Method).Str("path", r.URL.Path).
			Int("status", sw.status).Int("bytes", sw.bytes).Dur("took", time.Since(start)).Msg("http")
	})
}

// httpMetrics records requests and latency by route and status.
type httpMetrics struct {
	requests metrics.Counter
	latency  metrics.Histogram
}

func newHTTPMetrics(r *metrics.Registry) httpMetrics {
	return httpMetrics{
		requests: r.Counter("cb_http_requests_total", "HTTP requests, by path and status.", "path", "status"),
		latency:  r.Histogram("cb_http_request_duration_seconds", "HTTP request latency, by path.", "path"),
	}
}

func (m httpMetrics) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		next.ServeHTTP(sw, r)
		path := route(r.URL.Path)
		m.requests.Inc(path, strconv.Itoa(max(sw.status, 200)))
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
