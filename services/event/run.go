package event

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Start serves the endpoints on nc.
func Start(_ context.Context, nc *nats.Conn, o rpc.ServiceOptions) (*rpc.Instance, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	srv := o.Server(nc, subjects.EventService)
	svc := New(js, Options{MaxDeliver: o.Store.MaxDeliver, MaxSubscriptions: o.Store.EventMaxSubs, Metrics: o.Metrics})
	ms, err := svc.Start(nc, srv)
	if err != nil {
		return nil, err
	}
	keep := Retention{MaxBytes: o.Store.EventMaxBytes, MaxMsgs: o.Store.EventMaxMsgs}
	if keep.MaxBytes <= 0 && keep.MaxMsgs <= 0 {
		return rpc.NewInstance(ms, srv), nil
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.trimLoop(ctx, keep, max(o.Store.EventTrimEvery, time.Second), o.Log)
	}()
	return rpc.NewInstance(ms, srv, func() { stop(); <-done }), nil
}
