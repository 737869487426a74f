package workflow

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Options configure a running workflow service.
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
		return nil, fmt.Errorf("workflow: %w", err)
	}
	svc, err := New(ctx, js, StoreOptions{Replicas: o.Store.Replicas, DedupeWindow: o.Store.DedupeWindow,
		EventTTL: o.Store.EventMaxAge, EventMaxMsgs: o.Store.EventMaxMsgs})
	if err != nil {
		return nil, fmt.Errorf("workflow: open store: %w", err)
	}
	srv := rpc.NewServer(o.Log, rpc.Options{Concurrency: o.Concurrency, Timeout: o.Store.RequestTimeout,
		Service: subjects.WorkflowService, Metrics: o.Metrics})
	ms, err := svc.Start(nc, srv)
	if err != nil {
		return nil, err
	}
	return rpc.NewInstance(ms, srv), nil
}
