package client

import (
	"context"

	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Analytics returns a workflow's analytics over r.Window.
func (c *Client) Analytics(ctx context.Context, r *wire.AnalyticsRequest) (*wire.Analytics, error) {
	return rpc.Call[wire.AnalyticsRequest, wire.Analytics](ctx, c.nc, c.subject(subjects.EventAnalytics), r)
}

// WorkflowHealth returns a workflow's stream, subscriptions and rates.
func (c *Client) WorkflowHealth(ctx context.Context, workflowID string) (*wire.WorkflowHealth, error) {
	return rpc.Call[wire.WorkflowHealthRequest, wire.WorkflowHealth](ctx, c.nc, c.subject(subjects.EventWorkflowHealth),
		&wire.WorkflowHealthRequest{WorkflowID: workflowID})
}

// SystemHealth returns JetStream's and the servers' state (every tenant's
// scope only).
func (c *Client) SystemHealth(ctx context.Context) (*wire.SystemHealth, error) {
	return rpc.Call[wire.SystemHealthRequest, wire.SystemHealth](ctx, c.nc, c.subject(subjects.EventSystemHealth), &wire.SystemHealthRequest{})
}

// Performance returns message and request rates over r.TimeRange (every
// tenant's scope only).
func (c *Client) Performance(ctx context.Context, r *wire.PerformanceRequest) (*wire.Performance, error) {
	return rpc.Call[wire.PerformanceRequest, wire.Performance](ctx, c.nc, c.subject(subjects.EventPerformance), r)
}
