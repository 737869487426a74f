// Package process is the main of a standalone service: it parses flags
// (with environment fallbacks), builds the logger, connects to NATS, starts
// the service and stops it in order on SIGINT or SIGTERM.
package process

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/logging"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/natsconn"
)

// Settings are what every standalone service is configured with.
type Settings struct {
	NATS        config.NATS
	Store       config.Store
	Concurrency int
	LogLevel    string
	// HealthAddr, when set, serves /health, /ready and /metrics over HTTP.
	HealthAddr string
	// Metrics is the process's registry, made by Serve.
	Metrics *metrics.Registry
}

// Stopper is a running service.
type Stopper interface{ Stop() }

// StartFunc starts a service on nc.
type StartFunc func(ctx context.Context, nc *nats.Conn, s Settings, log zerolog.Logger) (Stopper, error)

// Serve runs the service named name until a signal arrives.
func Serve(name string, args []string, getenv func(string) string, stderr io.Writer, start StartFunc) error {
	s, err := parse(name, args, getenv)
	if err != nil {
		return err
	}
	log := logging.New(stderr, s.LogLevel, name)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	nc, err := natsconn.Connect(s.NATS, name, log)
	if err != nil {
		return fmt.Errorf("%s: connect to NATS at %s: %w", name, s.NATS.URL, err)
	}
	defer nc.Close()
	s.Metrics = metrics.NewRegistry()
	svc, err := start(ctx, nc, s, log)
	if err != nil {
		return err
	}
	if s.HealthAddr != "" {
		stopHealth, err := serveHealth(s.HealthAddr, nc, s.Metrics, log)
		if err != nil {
			svc.Stop()
			return err
		}
		defer stopHealth()
	}
	log.Info().Str("nats", nc.ConnectedUrlRedacted()).Msg("serving")
	<-ctx.Done()
	log.Info().Msg("shutting down")
	svc.Stop()
	return nc.Drain()
}

// serveHealth serves liveness (/health: the process runs), readiness
// (/ready: NATS is connected) and /metrics.
func serveHealth(addr string, nc *nats.Conn, reg *metrics.Registry, log zerolog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !nc.IsConnected() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "NATS is not connected", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", reg.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Msg("health and metrics")
	return func() { _ = srv.Close() }, nil
}

func parse(name string, args []string, getenv func(string) string) (Settings, error) {
	var s Settings
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	f := &config.Flags{FS: fs, Getenv: getenv}
	s.NATS.Register(f, nats.DefaultURL)
	s.Store.Register(f)
	f.Int(&s.Concurrency, "concurrency", "CB_CONCURRENCY", 256, "requests served at once")
	f.String(&s.LogLevel, "log-level", "LOG_LEVEL", "info", "log level: debug, info, warn, error")
	f.String(&s.HealthAddr, "health", "CB_HEALTH_ADDR", "", "address for /health, /ready and /metrics (off when empty)")
	if err := f.Err(); err != nil {
		return s, err
	}
	return s, fs.Parse(args)
}
