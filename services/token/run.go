package token

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/services/token/store"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Options configure a running token service.
type Options struct {
	Store       config.Store
	Concurrency int // requests served at once
	Metrics     *metrics.Registry
	Log         zerolog.Logger
}

// Start opens the store and serves the endpoints on nc.
func Start(ctx context.Context, nc *nats.Conn, o Options) (*rpc.Instance, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	st, err := store.Open(ctx, js, o.Log, store.Options{Replicas: o.Store.Replicas, EventTTL: o.Store.EventMaxAge, Metrics: o.Metrics})
	if err != nil {
		return nil, fmt.Errorf("token: open store: %w", err)
	}
	srv := rpc.NewServer(o.Log, rpc.Options{Concurrency: o.Concurrency, Timeout: o.Store.RequestTimeout,
		Service: subjects.TokenService, Metrics: o.Metrics})
	ms, err := New(st).Start(nc, srv)
	if err != nil {
		st.Close()
		return nil, err
	}
	return rpc.NewInstance(ms, srv, st.Close), nil
}
