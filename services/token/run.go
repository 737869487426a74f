package token

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/services/token/store"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/quota"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Start opens the store and serves the endpoints on nc. Instances find
// each other and route each workflow's writes to one of them (writers).
func Start(ctx context.Context, nc *nats.Conn, o rpc.ServiceOptions) (*rpc.Instance, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewRegistry()
	}
	st, err := store.Open(ctx, js, o.Log, store.Options{Replicas: o.Store.Replicas, EventTTL: o.Store.EventMaxAge, Metrics: o.Metrics, Expr: o.Store.Expr})
	if err != nil {
		return nil, fmt.Errorf("token: open store: %w", err)
	}
	t, err := openTenants(ctx, js, o)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("token: %w", err)
	}
	srv := o.Server(nc, subjects.TokenService)
	var w *writers
	if o.Store.RouteWrites {
		w = newWriters(nc, o.Metrics)
	}
	svc := New(st, w, t)
	self := uuid.NewString()
	if w != nil {
		self = w.self
	}
	svc.indexer = newIndexer(svc, self, o.Log)
	// A deleted workflow's notice: drop what is cached of it (every
	// instance, no queue group), so an id created again starts afresh.
	notices, err := nc.Subscribe(subjects.WorkflowDeletedAll, func(m *nats.Msg) { st.Evict(subjects.WorkflowIDFromNotice(m.Subject)) })
	if err != nil {
		t.quotas.Close()
		st.Close()
		return nil, fmt.Errorf("token: subscribe %s: %w", subjects.WorkflowDeletedAll, err)
	}
	// A notice missed while disconnected: drop everything cached.
	reconnected := nc.Opts.ReconnectedCB
	nc.SetReconnectHandler(func(c *nats.Conn) {
		if reconnected != nil {
			reconnected(c)
		}
		st.EvictAll()
	})
	ms, err := svc.Start(nc, srv)
	if err != nil {
		_ = notices.Unsubscribe()
		t.quotas.Close()
		st.Close()
		return nil, err
	}
	sw := newSweeper(svc, js, o.Store.ArchiveSweepEvery, o.Log)
	go sw.run()
	timers := newTimerRunner(svc, o.Log, o.Metrics)
	timers.start()
	closers := []func(){svc.indexer.close, timers.close, sw.close, func() { _ = notices.Unsubscribe() }, t.quotas.Close, st.Close}
	if w != nil {
		go w.run()
		closers = append([]func(){w.close}, closers...)
	}
	return rpc.NewInstance(ms, srv, closers...), nil
}

func openTenants(ctx context.Context, js jetstream.JetStream, o rpc.ServiceOptions) (*tenants, error) {
	usage, err := quota.OpenUsage(ctx, js, o.Store.Replicas)
	if err != nil {
		return nil, err
	}
	book, err := quota.Watch(ctx, js, o.Store.Replicas)
	if err != nil {
		return nil, err
	}
	return &tenants{quotas: book, usage: usage, log: o.Log}, nil
}
