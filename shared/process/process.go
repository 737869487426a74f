// Package process is the main of a standalone service: it parses flags
// (with environment fallbacks), builds the logger, connects to NATS, starts
// the service and stops it in order on SIGINT or SIGTERM.
package process

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/logging"
	"github.com/cbnats/circuitbreaker/shared/natsconn"
)

// Settings are what every standalone service is configured with.
type Settings struct {
	NATS        config.NATS
	Store       config.Store
	Concurrency int
	LogLevel    string
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
	svc, err := start(ctx, nc, s, log)
	if err != nil {
		return err
	}
	log.Info().Str("nats", nc.ConnectedUrlRedacted()).Msg("serving")
	<-ctx.Done()
	log.Info().Msg("shutting down")
	svc.Stop()
	return nc.Drain()
}

func parse(name string, args []string, getenv func(string) string) (Settings, error) {
	var s Settings
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	f := &config.Flags{FS: fs, Getenv: getenv}
	s.NATS.Register(f, nats.DefaultURL)
	s.Store.Register(f)
	f.Int(&s.Concurrency, "concurrency", "CB_CONCURRENCY", 256, "requests served at once")
	f.String(&s.LogLevel, "log-level", "LOG_LEVEL", "info", "log level: debug, info, warn, error")
	if err := f.Err(); err != nil {
		return s, err
	}
	return s, fs.Parse(args)
}
