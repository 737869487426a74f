package event

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

// Options configure a running event service.
type Options struct {
	Store       config.Store
	Concurrency int
	Metrics     *metrics.Registry
	Log         zerolog.Logger
}

// Start serves the endpoints on nc.
func Start(_ context.Context, nc *nats.Conn, o Options) (*rpc.Instance, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	srv := rpc.NewServer(o.Log, rpc.Options{Concurrency: o.Concurrency, Timeout: o.Store.RequestTimeout,
		Service: subjects.EventService, Metrics: o.Metrics})
	maxDeliver := o.Store.MaxDeliver
	if maxDeliver <= 0 {
		maxDeliver = 5 // the original's default
	}
	ms, err := New(js, maxDeliver).Start(nc, srv)
	if err != nil {
		return nil, err
	}
	return rpc.NewInstance(ms, srv), nil
}
