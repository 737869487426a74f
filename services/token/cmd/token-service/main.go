// Command token-service runs the token service against a NATS server.
// Run many for more throughput: they share the queue group.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/services/token"
	"github.com/cbnats/circuitbreaker/shared/process"
	"github.com/cbnats/circuitbreaker/shared/rpc"
)

func main() {
	if err := process.Serve("token-service", os.Args[1:], os.Getenv, os.Stderr, start); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func start(ctx context.Context, nc *nats.Conn, s process.Settings, log zerolog.Logger) (process.Stopper, error) {
	return token.Start(ctx, nc, rpc.ServiceOptions{Store: s.Store, Concurrency: s.Concurrency, Metrics: s.Metrics, Log: log})
}
