package client

import (
	"context"

	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// History returns a page of a workflow's (or a token's) events.
func (c *Client) History(ctx context.Context, r *wire.HistoryRequest) (*wire.EventPage, error) {
	return rpc.Call[wire.HistoryRequest, wire.EventPage](ctx, c.nc, c.subject(subjects.EventHistory), r)
}

// Replay returns the events from r.AfterSequence or r.Since on.
func (c *Client) Replay(ctx context.Context, r *wire.HistoryRequest) (*wire.EventPage, error) {
	return rpc.Call[wire.HistoryRequest, wire.EventPage](ctx, c.nc, c.subject(subjects.EventReplay), r)
}

// Stats returns a workflow's statistics.
func (c *Client) Stats(ctx context.Context, r *wire.StatsRequest) (*wire.Stats, error) {
	return rpc.Call[wire.StatsRequest, wire.Stats](ctx, c.nc, c.subject(subjects.EventStats), r)
}

// CreateSubscription creates (or finds) a named durable subscription.
func (c *Client) CreateSubscription(ctx context.Context, r *wire.SubscribeRequest) (*wire.SubscriptionInfo, error) {
	return rpc.Call[wire.SubscribeRequest, wire.SubscriptionInfo](ctx, c.nc, c.subject(subjects.EventSubscribe), r)
}

// Subscriptions lists a workflow's durable subscriptions.
func (c *Client) Subscriptions(ctx context.Context, workflowID string) (*wire.SubscriptionList, error) {
	return rpc.Call[wire.ListSubscriptionsRequest, wire.SubscriptionList](ctx, c.nc, c.subject(subjects.EventSubscriptions),
		&wire.ListSubscriptionsRequest{WorkflowID: workflowID})
}

// DeleteSubscription deletes a durable subscription.
func (c *Client) DeleteSubscription(ctx context.Context, workflowID, name string) error {
	_, err := rpc.Call[wire.SubscriptionRef, wire.SubscriptionRef](ctx, c.nc, c.subject(subjects.EventUnsubscribe),
		&wire.SubscriptionRef{WorkflowID: workflowID, Name: name})
	return err
}
