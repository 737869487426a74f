// Command edge serves the GraphQL API over HTTP and calls the services over
// NATS. Run as many as you like behind a load balancer: it holds no state.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/edge/server"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/logging"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/natsconn"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type settings struct {
	NATS     config.NATS
	HTTP     config.HTTP
	LogLevel string
}

func parse(args []string, getenv func(string) string) (settings, error) {
	var s settings
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	f := &config.Flags{FS: fs, Getenv: getenv}
	s.NATS.Register(f, nats.DefaultURL)
	s.HTTP.Register(f, "127.0.0.1:4000", "")
	f.String(&s.LogLevel, "log-level", "LOG_LEVEL", "info", "log level: debug, info, warn, error")
	f.Bool(&s.HTTP.InsecureNoAuth, "insecure-no-auth", "CB_INSECURE_NO_AUTH", false, "run without --auth-file: anyone who reaches the HTTP port may do anything")
	if err := f.Err(); err != nil {
		return s, err
	}
	return s, fs.Parse(args)
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	s, err := parse(args, getenv)
	if err != nil {
		return err
	}
	log := logging.New(stderr, s.LogLevel, "edge")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var authn *auth.Authenticator
	switch {
	case s.HTTP.AuthFile != "":
		if authn, err = auth.Open(ctx, s.HTTP.AuthFile, log); err != nil {
			return fmt.Errorf("edge: %w", err)
		}
	case !s.HTTP.InsecureNoAuth:
		return fmt.Errorf("edge: refusing to start without --auth-file (give --insecure-no-auth to run open, for local use only)")
	default:
		log.Warn().Msg("no authentication (--insecure-no-auth): local use only")
	}
	nc, err := natsconn.Connect(s.NATS, "edge", log)
	if err != nil {
		return fmt.Errorf("edge: connect to NATS at %s: %w", s.NATS.URL, err)
	}
	defer nc.Close()
	liveNC, err := natsconn.Connect(s.NATS, "edge-live", log) // subscription traffic apart from request replies
	if err != nil {
		return fmt.Errorf("edge: connect to NATS at %s: %w", s.NATS.URL, err)
	}
	defer liveNC.Close()
	o := server.OptionsFrom(s.HTTP, metrics.NewRegistry(), log)
	o.LiveConn, o.Auth = liveNC, authn
	srv, err := server.New(nc, o)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.HTTP.Addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "GraphQL at http://%s/graphql (GraphiQL in a browser)\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
