package api

import (
	"context"
	"slices"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

func (a *API) findTokens(ctx context.Context, p gql.Params) (any, error) {
	pg, err := pageArgs(p.Args)
	if err != nil {
		return nil, err
	}
	c := a.client(ctx)
	r, err := searchRequest(ctx, c, p.Args["filter"])
	if err != nil || r == nil {
		return []*flow.Token{}, err
	}
	r.Page = pg
	page, err := c.FindTokens(ctx, r)
	if err != nil {
		return nil, err
	}
	return page.Items, nil
}

func (a *API) countTokens(ctx context.Context, p gql.Params) (any, error) {
	c := a.client(ctx)
	r, err := searchRequest(ctx, c, p.Args["filter"])
	if err != nil || r == nil {
		return 0, err
	}
	return c.CountTokens(ctx, r.Filter)
}

// searchRequest reads a filter argument; without workflowIds it searches
// every workflow of the caller's that declares the filter's keys (nil
// when none does).
func searchRequest(ctx context.Context, c *client.Client, arg any) (*wire.FindTokensRequest, error) {
	f, err := decode[wire.TokenFilter](arg)
	if err != nil {
		return nil, err
	}
	if len(f.WorkflowIDs) == 0 {
		if f.WorkflowIDs, err = declaring(ctx, c, paths(f)); err != nil || len(f.WorkflowIDs) == 0 {
			return nil, err
		}
	}
	return &wire.FindTokensRequest{Filter: *f}, nil
}

// declaring lists the caller's workflows whose latest version declares
// every path.
func declaring(ctx context.Context, c *client.Client, want []string) ([]string, error) {
	var ids []string
	for p := (wire.Page{First: wire.MaxPageSize}); ; {
		page, err := c.ListWorkflows(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, d := range page.Items {
			if !slices.ContainsFunc(want, func(path string) bool { _, ok := d.SearchAttribute(path); return !ok }) {
				ids = append(ids, d.ID)
			}
		}
		if page.Next == "" {
			break
		}
		p.After = page.Next
	}
	if len(ids) > wire.MaxSearchWorkflows {
		return nil, fail.New(fail.BadInput, "%d workflows declare these keys: give filter.workflowIds (at most %d)", len(ids), wire.MaxSearchWorkflows)
	}
	return ids, nil
}

// paths are the search attribute paths a filter uses.
func paths(f *wire.TokenFilter) []string {
	var out []string
	for k := range f.Data {
		out = append(out, "data."+k)
	}
	for k := range f.Metadata {
		out = append(out, "metadata."+k)
	}
	for _, r := range f.Ranges {
		out = append(out, r.Path)
	}
	for _, sub := range append(append([]wire.TokenFilter{}, f.And...), f.Or...) {
		out = append(out, paths(&sub)...)
	}
	return out
}
