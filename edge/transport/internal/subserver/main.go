// Command subserver serves the transport test schema (tickschema) on
// 127.0.0.1 at a free port for the npm conformance checks: /graphql takes
// graphql-transport-ws upgrades, text/event-stream requests and plain
// GraphQL over HTTP. It prints the GraphQL URL on stdout and runs until
// interrupted. A connection_init payload {"reject": true} is refused with
// 4403, so clients can check that path.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/edge/transport"
	"github.com/cbnats/circuitbreaker/edge/transport/internal/tickschema"
)

// errRejected is OnConnect's answer to {"reject": true}.
var errRejected = errors.New("subserver: connection rejected on request")

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	verbose := flag.Bool("v", false, "log connection events to stderr")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := zerolog.Nop()
	if *verbose {
		log = zerolog.New(os.Stderr).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	}
	if err := run(ctx, *addr, os.Stdout, log); err != nil {
		fmt.Fprintln(os.Stderr, "subserver:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends.
func run(ctx context.Context, addr string, out io.Writer, log zerolog.Logger) error {
	fx, err := tickschema.New()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	o := transport.Options{Log: log, OnConnect: onConnect}
	mux := http.NewServeMux()
	mux.Handle("/graphql", transport.Dispatch(fx.Schema.Handler(gql.HandlerOptions{}),
		transport.WebSocket(fx.Schema, o), transport.SSE(fx.Schema, o)))
	// Cancelling the base context on shutdown ends WebSocket connections
	// (close 1001) and SSE streams, which Shutdown alone would not.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	srv.RegisterOnShutdown(cancelBase)
	fmt.Fprintf(out, "http://%s/graphql\n", ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// onConnect refuses connections whose payload asks for it.
func onConnect(ctx context.Context, _ *http.Request, payload map[string]any) (context.Context, error) {
	if payload["reject"] == true {
		return nil, errRejected
	}
	return ctx, nil
}
