package event

import (
	"context"
	"fmt"
	"sync"
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
	svc := New(js, Options{MaxDeliver: o.Store.MaxDeliver, MaxSubscriptions: o.Store.EventMaxSubs, Metrics: o.Metrics,
		Replicas: o.Store.Replicas})
	setup, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = ensureAnalyticsBucket(setup, js, o.Store.Replicas)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("event: analytics bucket %s: %w", subjects.AnalyticsBucket, err)
	}
	ms, err := svc.Start(nc, srv)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	background := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	keep := Retention{MaxBytes: o.Store.EventMaxBytes, MaxMsgs: o.Store.EventMaxMsgs}
	if keep.MaxBytes > 0 || keep.MaxMsgs > 0 {
		background(func() { svc.trimLoop(ctx, keep, max(o.Store.EventTrimEvery, time.Second), o.Log) })
	}
	background(func() { svc.analyticsLoop(ctx, analyticsEvery, o.Log) })
	background(func() { svc.sampleLoop(ctx, sampleEvery, o.Log) })
	return rpc.NewInstance(ms, srv, func() { stop(); wg.Wait() }), nil
}

// How often every workflow's analytics are caught up and the performance
// counters sampled, in the background (tests shorten them).
var (
	analyticsEvery = DefaultAnalyticsEvery
	sampleEvery    = DefaultSampleEvery
)
