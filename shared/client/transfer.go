package client

import (
	"context"

	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// ImportWorkflow stores a workflow's versions as an export file holds
// them (shared/transfer reads and writes the files).
func (c *Client) ImportWorkflow(ctx context.Context, r *wire.ImportWorkflowRequest) (*wire.ImportWorkflowReply, error) {
	return rpc.Call[wire.ImportWorkflowRequest, wire.ImportWorkflowReply](ctx, c.nc, c.subject(subjects.WorkflowImport), r)
}

// ImportTokens stores tokens with their histories as an export file holds them.
func (c *Client) ImportTokens(ctx context.Context, r *wire.ImportTokensRequest) (*wire.ImportTokensReply, error) {
	return rpc.Call[wire.ImportTokensRequest, wire.ImportTokensReply](ctx, c.nc, c.subject(subjects.TokenImport), r)
}

// ImportEvents stores the retained events an export file holds.
func (c *Client) ImportEvents(ctx context.Context, r *wire.ImportEventsRequest) (*wire.ImportEventsReply, error) {
	return rpc.Call[wire.ImportEventsRequest, wire.ImportEventsReply](ctx, c.nc, c.subject(subjects.TokenImportEvents), r)
}
