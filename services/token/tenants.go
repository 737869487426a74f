package token

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/quota"
	"github.com/cbnats/circuitbreaker/shared/tenant"
)

// tenants keeps each tenant's live tokens within its maxLiveTokens quota:
// a create is refused once the tenant's count has reached it, and counted
// once committed (see shared/quota: a soft limit).
type tenants struct {
	quotas *quota.Book
	usage  *quota.Usage
	log    zerolog.Logger
}

// admit refuses a token of a workflow whose tenant has no room left.
func (t *tenants) admit(ctx context.Context, workflowID string) error {
	name := tenant.OfWorkflow(workflowID)
	limit := t.quotas.Of(name).MaxLiveTokens
	if name == "" || limit == 0 {
		return nil
	}
	n, err := t.usage.LiveTokens(ctx, name)
	if err != nil {
		return err
	}
	return quota.Check(name, "maxLiveTokens", n, limit)
}

// created counts a committed token of a tenant's workflow, whether or not
// the tenant has a quota now (it may get one later). The token stands
// either way: a failed count is logged, not returned.
func (t *tenants) created(ctx context.Context, workflowID string) {
	name := tenant.OfWorkflow(workflowID)
	if name == "" {
		return
	}
	if err := t.usage.AddLiveTokens(ctx, name, 1); err != nil {
		t.log.Warn().Err(err).Str("tenant", name).Str("workflow", workflowID).Msg("count live token")
	}
}

// removed uncounts a live token of a tenant's workflow that was archived
// or deleted. Like created, a failed count is logged, not returned.
func (t *tenants) removed(ctx context.Context, workflowID string) {
	name := tenant.OfWorkflow(workflowID)
	if name == "" {
		return
	}
	if err := t.usage.AddLiveTokens(ctx, name, -1); err != nil {
		t.log.Warn().Err(err).Str("tenant", name).Str("workflow", workflowID).Msg("uncount live token")
	}
}
