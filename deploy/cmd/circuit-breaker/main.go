// Command circuit-breaker runs the whole system in one process: an embedded
// NATS server with JetStream storing under a data directory, the workflow
// and token services, and the GraphQL edge. Data survives a restart.
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/rs/zerolog"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/cbnats/circuitbreaker/deploy/stack"
	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/embedded"
	"github.com/cbnats/circuitbreaker/shared/logging"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type settings struct {
	Server      embedded.Options
	Store       config.Store
	HTTP        config.HTTP
	Concurrency int
	LogLevel    string
}

func parse(args []string, getenv func(string) string) (settings, error) {
	var s settings
	fs := flag.NewFlagSet("circuit-breaker", flag.ContinueOnError)
	f := &config.Flags{FS: fs, Getenv: getenv}
	f.String(&s.Server.DataDir, "data-dir", "CB_DATA_DIR", "data", "JetStream data directory")
	f.String(&s.Server.Host, "nats-host", "CB_NATS_HOST", "127.0.0.1", "host the embedded NATS server listens on")
	f.Int(&s.Server.Port, "nats-port", "CB_NATS_PORT", 4222, "port of the embedded NATS server (-1: any free port)")
	f.Bool(&s.Server.SyncAlways, "sync-always", "CB_SYNC_ALWAYS", false, "fsync every write (slower; survives power loss)")
	f.Bool(&s.Server.Logs, "nats-logs", "CB_NATS_LOGS", false, "print the NATS server's own log")
	s.Store.Register(f)
	s.HTTP.Register(f, "127.0.0.1:4000", "*")
	f.Int(&s.Concurrency, "concurrency", "CB_CONCURRENCY", 256, "requests each service serves at once")
	f.String(&s.LogLevel, "log-level", "LOG_LEVEL", "info", "log level: debug, info, warn, error")
	if err := f.Err(); err != nil {
		return s, err
	}
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	abs, err := filepath.Abs(s.Server.DataDir)
	s.Server.DataDir = abs
	return s, err
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && transferCommands[args[0]] {
		return runTransfer(args[0], args[1:], getenv, os.Stdin, stdout, stderr)
	}
	s, err := parse(args, getenv)
	if err != nil {
		return err
	}
	log := logging.New(stderr, s.LogLevel, "circuit-breaker")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	authn, access, err := authFor(ctx, s.HTTP.AuthFile, log)
	if err != nil {
		return err
	}
	st, err := stack.Start(ctx, stack.Options{Server: s.Server, Store: s.Store, HTTP: s.HTTP, Auth: authn, Concurrency: s.Concurrency, Log: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Circuit Breaker is running.\n  GraphQL:  %s   (GraphiQL: open it in a browser)\n  NATS:     %s   (try: nats micro ls --server %s)\n  data dir: %s\n  access:   %s\nPress Ctrl-C to stop.\n",
		st.GraphQL, st.ClientURL(), st.ClientURL(), s.Server.DataDir, access)
	<-ctx.Done()
	log.Info().Msg("shutting down")
	st.Stop()
	return nil
}

// authFor loads the auth file, if any, and says how the edge is reached:
// without one, the one-process mode is open, for local use only.
func authFor(ctx context.Context, path string, log zerolog.Logger) (*auth.Authenticator, string, error) {
	if path == "" {
		log.Warn().Msg("no authentication: local use only (give --auth-file to require API keys or JWTs)")
		return nil, "no authentication: local use only (--auth-file to require it)", nil
	}
	a, err := auth.Open(ctx, path, log)
	if err != nil {
		return nil, "", err
	}
	return a, "Authorization: Bearer <API key or JWT> (auth file " + path + ", reloaded on SIGHUP)", nil
}
