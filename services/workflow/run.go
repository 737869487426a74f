package workflow

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Start opens the store and serves the endpoints on nc.
func Start(ctx context.Context, nc *nats.Conn, o rpc.ServiceOptions) (*rpc.Instance, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("workflow: %w", err)
	}
	svc, err := New(ctx, js, StoreOptions{Replicas: o.Store.Replicas, DedupeWindow: o.Store.DedupeWindow,
		EventTTL: o.Store.EventMaxAge, Expr: o.Store.Expr})
	if err != nil {
		return nil, fmt.Errorf("workflow: open store: %w", err)
	}
	svc.log = o.Log
	srv := o.Server(nc, subjects.WorkflowService)
	ms, err := svc.Start(nc, srv)
	if err != nil {
		svc.Close()
		return nil, err
	}
	return rpc.NewInstance(ms, srv, svc.Close), nil
}
