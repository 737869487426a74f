// Package client is the Go API of Circuit Breaker over NATS: typed calls for
// every endpoint of the workflow and token services. Errors are *fail.Error
// values rebuilt from the services' replies, so errors.Is(err,
// fail.ErrNotFound) and friends work. The edge and the tests use it too.
package client

import (
	"context"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Client calls the services over one NATS connection, within one tenant
// scope (shared/tenant). It is safe for concurrent use.
type Client struct {
	nc    *nats.Conn
	scope string
}

// New returns a Client on nc acting for every tenant (tenant.All).
func New(nc *nats.Conn) *Client { return &Client{nc: nc, scope: string(tenant.All)} }

// As returns a Client on the same connection acting for scope: a tenant
// sees only its own workflows, and names them with or without its prefix.
func (c *Client) As(scope tenant.Scope) *Client { return &Client{nc: c.nc, scope: string(scope)} }

// subject is where r goes in the client's scope.
func (c *Client) subject(r subjects.Request) string { return r.In(c.scope) }

// CreateWorkflow validates and stores a workflow definition.
func (c *Client) CreateWorkflow(ctx context.Context, r *wire.CreateWorkflowRequest) (*flow.Definition, error) {
	return rpc.Call[wire.CreateWorkflowRequest, flow.Definition](ctx, c.nc, c.subject(subjects.WorkflowCreate), r)
}

// GetWorkflow returns the latest version of a definition by id.
func (c *Client) GetWorkflow(ctx context.Context, id string) (*flow.Definition, error) {
	return c.GetWorkflowVersion(ctx, id, 0)
}

// GetWorkflowVersion returns version v of a definition (0: the latest).
func (c *Client) GetWorkflowVersion(ctx context.Context, id string, v int) (*flow.Definition, error) {
	return rpc.Call[wire.GetWorkflowRequest, flow.Definition](ctx, c.nc, c.subject(subjects.WorkflowGet), &wire.GetWorkflowRequest{ID: id, Version: v})
}

// UpdateWorkflow stores the next version of a definition.
func (c *Client) UpdateWorkflow(ctx context.Context, r *wire.UpdateWorkflowRequest) (*flow.Definition, error) {
	return rpc.Call[wire.UpdateWorkflowRequest, flow.Definition](ctx, c.nc, c.subject(subjects.WorkflowUpdate), r)
}

// WorkflowVersions returns every version of a definition, oldest first.
func (c *Client) WorkflowVersions(ctx context.Context, id string) (*wire.WorkflowVersions, error) {
	return rpc.Call[wire.WorkflowVersionsRequest, wire.WorkflowVersions](ctx, c.nc, c.subject(subjects.WorkflowVersions), &wire.WorkflowVersionsRequest{ID: id})
}

// ListWorkflows returns a page of definitions ordered by id.
func (c *Client) ListWorkflows(ctx context.Context, p wire.Page) (*wire.WorkflowPage, error) {
	return rpc.Call[wire.ListWorkflowsRequest, wire.WorkflowPage](ctx, c.nc, c.subject(subjects.WorkflowList), &wire.ListWorkflowsRequest{Page: p})
}

// DeleteWorkflow deletes a workflow with its stream, catalogue entry and
// token index entries; refused (CONFLICT) while it has live tokens unless
// force. Deleted is false when there was no such workflow. The id can be
// created again afterwards.
func (c *Client) DeleteWorkflow(ctx context.Context, id string, force bool) (*wire.DeleteWorkflowReply, error) {
	return rpc.Call[wire.DeleteWorkflowRequest, wire.DeleteWorkflowReply](ctx, c.nc, c.subject(subjects.WorkflowDelete),
		&wire.DeleteWorkflowRequest{ID: id, Force: force})
}

// CreateToken creates a workflow instance.
func (c *Client) CreateToken(ctx context.Context, r *wire.CreateTokenRequest) (*flow.Token, error) {
	return rpc.Call[wire.CreateTokenRequest, flow.Token](ctx, c.nc, c.subject(subjects.TokenCreate), r)
}

// GetToken returns a token by id.
func (c *Client) GetToken(ctx context.Context, id string) (*flow.Token, error) {
	return rpc.Call[wire.GetTokenRequest, flow.Token](ctx, c.nc, c.subject(subjects.TokenGet), &wire.GetTokenRequest{ID: id})
}

// FindToken returns a token of a known workflow.
func (c *Client) FindToken(ctx context.Context, workflowID, tokenID string) (*flow.Token, error) {
	return rpc.Call[wire.FindTokenRequest, flow.Token](ctx, c.nc, c.subject(subjects.TokenFind),
		&wire.FindTokenRequest{WorkflowID: workflowID, TokenID: tokenID})
}

// ListTokens returns a page of a workflow's tokens.
func (c *Client) ListTokens(ctx context.Context, workflowID string, p wire.Page) (*wire.TokenPage, error) {
	return rpc.Call[wire.ListTokensRequest, wire.TokenPage](ctx, c.nc, c.subject(subjects.TokenList),
		&wire.ListTokensRequest{WorkflowID: workflowID, Page: p})
}

// ListArchivedTokens returns a page of a workflow's archived tokens.
func (c *Client) ListArchivedTokens(ctx context.Context, workflowID string, p wire.Page) (*wire.TokenPage, error) {
	return rpc.Call[wire.ListTokensRequest, wire.TokenPage](ctx, c.nc, c.subject(subjects.TokenList),
		&wire.ListTokensRequest{WorkflowID: workflowID, Archived: true, Page: p})
}

// TokensInPlace returns a page of the tokens currently in a place.
func (c *Client) TokensInPlace(ctx context.Context, workflowID, place string, p wire.Page) (*wire.TokenPage, error) {
	return rpc.Call[wire.TokensInPlaceRequest, wire.TokenPage](ctx, c.nc, c.subject(subjects.TokenInPlace),
		&wire.TokensInPlaceRequest{WorkflowID: workflowID, Place: place, Page: p})
}

// Available explains which transitions a token can fire now.
func (c *Client) Available(ctx context.Context, tokenID string) (*wire.AvailableReply, error) {
	return rpc.Call[wire.AvailableRequest, wire.AvailableReply](ctx, c.nc, c.subject(subjects.TokenAvailable),
		&wire.AvailableRequest{TokenID: tokenID})
}

// Fire fires a transition on a token.
func (c *Client) Fire(ctx context.Context, r *wire.FireRequest) (*flow.Token, error) {
	return rpc.Call[wire.FireRequest, flow.Token](ctx, c.nc, c.subject(subjects.TokenFire), r)
}

// UpdateToken changes a token's data or metadata without a transition.
func (c *Client) UpdateToken(ctx context.Context, r *wire.UpdateTokenRequest) (*flow.Token, error) {
	return rpc.Call[wire.UpdateTokenRequest, flow.Token](ctx, c.nc, c.subject(subjects.TokenUpdate), r)
}

// FindTokens returns a page of the tokens a filter matches.
func (c *Client) FindTokens(ctx context.Context, r *wire.FindTokensRequest) (*wire.TokenPage, error) {
	return rpc.Call[wire.FindTokensRequest, wire.TokenPage](ctx, c.nc, c.subject(subjects.TokenSearch), r)
}

// CountTokens returns how many tokens a filter matches.
// SearchIndex returns the state of a workflow's search index.
func (c *Client) SearchIndex(ctx context.Context, workflowID string) (*wire.SearchIndex, error) {
	return rpc.Call[wire.SearchIndexRequest, wire.SearchIndex](ctx, c.nc, c.subject(subjects.TokenSearchIndex), &wire.SearchIndexRequest{WorkflowID: workflowID})
}

// Reindex starts (or resumes) the build of a workflow's search index and
// returns its state as it was read.
func (c *Client) Reindex(ctx context.Context, workflowID string) (*wire.SearchIndex, error) {
	return rpc.Call[wire.SearchIndexRequest, wire.SearchIndex](ctx, c.nc, c.subject(subjects.TokenReindex), &wire.SearchIndexRequest{WorkflowID: workflowID})
}

func (c *Client) CountTokens(ctx context.Context, f wire.TokenFilter) (int, error) {
	r, err := rpc.Call[wire.FindTokensRequest, wire.CountTokensReply](ctx, c.nc, c.subject(subjects.TokenCount), &wire.FindTokensRequest{Filter: f})
	if err != nil {
		return 0, err
	}
	return r.Count, nil
}

// BulkTransition fires a transition on many tokens of a workflow.
func (c *Client) BulkTransition(ctx context.Context, r *wire.BulkTransitionRequest) (*wire.BulkResult, error) {
	return rpc.Call[wire.BulkTransitionRequest, wire.BulkResult](ctx, c.nc, c.subject(subjects.TokenBulk), r)
}

// MigrateTokens moves tokens to another version of their workflow.
func (c *Client) MigrateTokens(ctx context.Context, r *wire.MigrateRequest) (*wire.MigrationResult, error) {
	return rpc.Call[wire.MigrateRequest, wire.MigrationResult](ctx, c.nc, c.subject(subjects.TokenMigrate), r)
}

// ArchiveToken archives a token: it leaves its place and every list and
// count of live tokens, stays readable by id with its history, and can no
// longer change. Archiving an archived token returns it as it is.
func (c *Client) ArchiveToken(ctx context.Context, r *wire.ArchiveTokenRequest) (*flow.Token, error) {
	return rpc.Call[wire.ArchiveTokenRequest, flow.Token](ctx, c.nc, c.subject(subjects.TokenArchive), r)
}

// DeleteToken deletes a token (live or archived) with its history and
// index entry; its events keep a token_deleted record. Deleted is false
// when there was no such token.
func (c *Client) DeleteToken(ctx context.Context, r *wire.DeleteTokenRequest) (*wire.DeleteTokenReply, error) {
	return rpc.Call[wire.DeleteTokenRequest, wire.DeleteTokenReply](ctx, c.nc, c.subject(subjects.TokenDelete), r)
}

// TokenHistory returns a page of a token's history, oldest first.
func (c *Client) TokenHistory(ctx context.Context, r *wire.TokenHistoryRequest) (*wire.TokenHistoryPage, error) {
	return rpc.Call[wire.TokenHistoryRequest, wire.TokenHistoryPage](ctx, c.nc, c.subject(subjects.TokenHistoryPage), r)
}

// AllHistory returns a token's whole history, page by page.
func (c *Client) AllHistory(ctx context.Context, tokenID string) ([]wire.HistoryItem, error) {
	r := &wire.TokenHistoryRequest{TokenID: tokenID}
	var out []wire.HistoryItem
	for {
		p, err := c.TokenHistory(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Items...)
		if p.Next == 0 {
			return out, nil
		}
		r.After = strconv.FormatUint(p.Next, 10)
	}
}
