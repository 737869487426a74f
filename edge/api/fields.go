package api

import (
	"context"
	"encoding/json"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

func (a *API) workflow(ctx context.Context, p gql.Params) (any, error) {
	return orNull(a.c.GetWorkflow(ctx, str(p.Args, "id")))
}

func (a *API) workflows(ctx context.Context, p gql.Params) (any, error) {
	pg, err := a.c.ListWorkflows(ctx, page(p.Args))
	if err != nil {
		return nil, err
	}
	return pg.Items, nil
}

func (a *API) token(ctx context.Context, p gql.Params) (any, error) {
	return orNull(a.c.GetToken(ctx, str(p.Args, "id")))
}

func (a *API) findToken(ctx context.Context, p gql.Params) (any, error) {
	return orNull(a.c.FindToken(ctx, str(p.Args, "workflowId"), str(p.Args, "tokenId")))
}

// tokens lists a workflow's tokens, or, without a workflow, the tokens of
// every workflow in id order up to one page.
func (a *API) tokens(ctx context.Context, p gql.Params) (any, error) {
	pg := page(p.Args)
	if wf := str(p.Args, "workflowId"); wf != "" {
		r, err := a.c.ListTokens(ctx, wf, pg)
		if err != nil {
			return nil, err
		}
		return r.Items, nil
	}
	return a.allTokens(ctx, pg.Size())
}

func (a *API) allTokens(ctx context.Context, limit int) ([]*flow.Token, error) {
	out := []*flow.Token{}
	for wfs := (wire.Page{}); len(out) < limit; {
		ws, err := a.c.ListWorkflows(ctx, wfs)
		if err != nil {
			return nil, err
		}
		for _, w := range ws.Items {
			r, err := a.c.ListTokens(ctx, w.ID, wire.Page{First: limit - len(out)})
			if err != nil {
				return nil, err
			}
			out = append(out, r.Items...)
			if len(out) >= limit {
				break
			}
		}
		if ws.Next == "" {
			break
		}
		wfs.After = ws.Next
	}
	return out, nil
}

func (a *API) tokensInPlace(ctx context.Context, p gql.Params) (any, error) {
	r, err := a.c.TokensInPlace(ctx, str(p.Args, "workflowId"), str(p.Args, "placeId"), page(p.Args))
	if err != nil {
		return nil, err
	}
	return r.Items, nil
}

func (a *API) availableTransitions(ctx context.Context, p gql.Params) (any, error) {
	r, err := a.c.Available(ctx, str(p.Args, "tokenId"))
	if err != nil {
		return nil, err
	}
	return r.Transitions, nil
}

func (a *API) transitionEvaluations(ctx context.Context, p gql.Params) (any, error) {
	r, err := a.c.Available(ctx, str(p.Args, "tokenId"))
	if err != nil {
		return nil, err
	}
	return r.Evaluations, nil
}

// tokenWorkflow fetches a token's workflow once per request per workflow.
func (a *API) tokenWorkflow(ctx context.Context, p gql.Params) (any, error) {
	id := p.Parent.(*flow.Token).WorkflowID
	return gql.Memo(ctx, "workflow:"+id, func() (any, error) { return orNull(a.c.GetWorkflow(ctx, id)) })
}

func (a *API) createWorkflow(ctx context.Context, p gql.Params) (any, error) {
	r, err := decode[wire.CreateWorkflowRequest](p.Args["input"])
	if err != nil {
		return nil, err
	}
	return a.c.CreateWorkflow(ctx, r)
}

func (a *API) createToken(ctx context.Context, p gql.Params) (any, error) {
	r, err := decode[wire.CreateTokenRequest](p.Args["input"])
	if err != nil {
		return nil, err
	}
	if r.TriggeredBy == "" {
		r.TriggeredBy = "api" // as the original's createToken recorded
	}
	return a.c.CreateToken(ctx, r)
}

func (a *API) createWorkflowInstance(ctx context.Context, p gql.Params) (any, error) {
	in, err := decode[struct {
		wire.CreateTokenRequest
		InitialData json.RawMessage `json:"initialData"`
	}](p.Args["input"])
	if err != nil {
		return nil, err
	}
	r := in.CreateTokenRequest
	r.Data = in.InitialData
	return a.c.CreateToken(ctx, &r)
}

func (a *API) fire(ctx context.Context, p gql.Params) (any, error) {
	r, err := decode[wire.FireRequest](p.Args["input"])
	if err != nil {
		return nil, err
	}
	return a.c.Fire(ctx, r)
}

func (a *API) updateToken(ctx context.Context, p gql.Params) (any, error) {
	r, err := decode[wire.UpdateTokenRequest](p.Args["input"])
	if err != nil {
		return nil, err
	}
	return a.c.UpdateToken(ctx, r)
}
