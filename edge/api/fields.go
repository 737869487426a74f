package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

func (a *API) workflow(ctx context.Context, p gql.Params) (any, error) {
	v := int(toInt(p.Args["version"])) // absent: 0, the latest
	return orNull(a.client(ctx).GetWorkflowVersion(ctx, str(p.Args, "id"), v))
}

// workflowVersions lists every version of a definition.
func (a *API) workflowVersions(ctx context.Context, p gql.Params) (any, error) {
	list, err := a.client(ctx).WorkflowVersions(ctx, p.Parent.(*flow.Definition).ID)
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// workflowSearchIndex reads the state of a workflow's search index.
func (a *API) workflowSearchIndex(ctx context.Context, p gql.Params) (any, error) {
	return a.client(ctx).SearchIndex(ctx, p.Parent.(*flow.Definition).ID)
}

// optionalTime is t in RFC 3339, or null.
func optionalTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.Format(time.RFC3339Nano)
}

func (a *API) migrateTokens(ctx context.Context, p gql.Params) (any, error) {
	r, err := input[wire.MigrateRequest](p.Args["input"])
	if err != nil {
		return nil, err
	}
	var claim string
	attribute(ctx, &r.TriggeredBy, &claim)
	return a.client(ctx).MigrateTokens(ctx, r)
}

func (a *API) updateWorkflow(ctx context.Context, p gql.Params) (any, error) {
	r, err := input[wire.UpdateWorkflowRequest](p.Args["input"])
	if err != nil {
		return nil, err
	}
	return a.client(ctx).UpdateWorkflow(ctx, r)
}

func (a *API) workflows(ctx context.Context, p gql.Params) (any, error) {
	in, err := pageArgs(p.Args)
	if err != nil {
		return nil, err
	}
	pg, err := a.client(ctx).ListWorkflows(ctx, in)
	if err != nil {
		return nil, err
	}
	return pg.Items, nil
}

func (a *API) token(ctx context.Context, p gql.Params) (any, error) {
	return orNull(a.client(ctx).GetToken(ctx, str(p.Args, "id")))
}

func (a *API) findToken(ctx context.Context, p gql.Params) (any, error) {
	return orNull(a.client(ctx).FindToken(ctx, str(p.Args, "workflowId"), str(p.Args, "tokenId")))
}

// tokens lists a workflow's tokens, or, without a workflow, the tokens of
// every workflow: workflows in id order, each one's tokens oldest change
// first. Any token list accepts a Token.cursor as after; a plain
// natsSequence only names a position within one workflow.
func (a *API) tokens(ctx context.Context, p gql.Params) (any, error) {
	pg, err := pageArgs(p.Args)
	if err != nil {
		return nil, err
	}
	wf := str(p.Args, "workflowId")
	cwf, seq, err := splitCursor(pg.After)
	if err != nil {
		return nil, err
	}
	if wf == "" {
		if pg.After != "" && cwf == "" {
			return nil, fail.New(fail.BadInput, "without workflowId, after must be a token's cursor (Token.cursor: workflowId/natsSequence)")
		}
		return a.allTokens(ctx, cwf, seq, pg.Size())
	}
	if cwf != "" && cwf != wf {
		return nil, fail.New(fail.BadInput, "after is a cursor of workflow %q, not of %q", cwf, wf)
	}
	r, err := a.client(ctx).ListTokens(ctx, wf, wire.Page{First: pg.First, After: seq})
	if err != nil {
		return nil, err
	}
	return r.Items, nil
}

// allTokens returns up to limit tokens of every workflow, starting after
// natsSequence seq of workflow wf (from the very first when wf is "").
func (a *API) allTokens(ctx context.Context, wf, seq string, limit int) ([]*flow.Token, error) {
	out := []*flow.Token{}
	if wf != "" {
		more, err := a.workflowTokens(ctx, wf, seq, limit)
		if err != nil && !errors.Is(err, fail.ErrNotFound) { // a workflow gone since: go on after it
			return nil, err
		}
		out = append(out, more...)
	}
	for wfs := (wire.Page{After: wf}); len(out) < limit; {
		ws, err := a.client(ctx).ListWorkflows(ctx, wfs)
		if err != nil {
			return nil, err
		}
		for _, w := range ws.Items {
			more, err := a.workflowTokens(ctx, w.ID, "", limit-len(out))
			if err != nil && !errors.Is(err, fail.ErrNotFound) { // a workflow deleted since it was listed: go on
				return nil, err
			}
			out = append(out, more...)
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

// workflowTokens returns up to limit tokens of workflow wf after
// natsSequence seq, following the workflow's own pages (a page of large
// tokens may hold fewer than asked).
func (a *API) workflowTokens(ctx context.Context, wf, seq string, limit int) ([]*flow.Token, error) {
	var out []*flow.Token
	for p := (wire.Page{First: limit, After: seq}); ; {
		r, err := a.client(ctx).ListTokens(ctx, wf, p)
		if err != nil {
			return out, err
		}
		out = append(out, r.Items...)
		if r.Next == "" || len(out) >= limit {
			return out, nil
		}
		p = wire.Page{First: limit - len(out), After: r.Next}
	}
}

// tokenCursor is a token's position in any token list: its workflow and
// the sequence of its current state, "workflowId/natsSequence" ('/' is
// never part of an id).
func tokenCursor(t *flow.Token) string {
	return t.WorkflowID + "/" + strconv.FormatUint(t.NatsSequence, 10)
}

// splitCursor splits a token cursor; a plain natsSequence has no workflow.
func splitCursor(after string) (wf, seq string, err error) {
	wf, seq, ok := strings.Cut(after, "/")
	if !ok {
		return "", after, nil
	}
	if wf == "" || seq == "" {
		return "", "", fail.New(fail.BadInput, "after %q is not a token cursor (workflowId/natsSequence)", after)
	}
	return wf, seq, nil
}

func (a *API) tokensInPlace(ctx context.Context, p gql.Params) (any, error) {
	wf := str(p.Args, "workflowId")
	pg, err := pageArgs(p.Args)
	if err != nil {
		return nil, err
	}
	cwf, seq, err := splitCursor(pg.After)
	if err != nil {
		return nil, err
	}
	if cwf != "" && cwf != wf {
		return nil, fail.New(fail.BadInput, "after is a cursor of workflow %q, not of %q", cwf, wf)
	}
	r, err := a.client(ctx).TokensInPlace(ctx, wf, str(p.Args, "placeId"), wire.Page{First: pg.First, After: seq})
	if err != nil {
		return nil, err
	}
	return r.Items, nil
}

func (a *API) availableTransitions(ctx context.Context, p gql.Params) (any, error) {
	r, err := a.client(ctx).Available(ctx, str(p.Args, "tokenId"))
	if err != nil {
		return nil, err
	}
	return r.Transitions, nil
}

func (a *API) transitionEvaluations(ctx context.Context, p gql.Params) (any, error) {
	r, err := a.client(ctx).Available(ctx, str(p.Args, "tokenId"))
	if err != nil {
		return nil, err
	}
	return r.Evaluations, nil
}

// tokenWorkflow fetches a token's workflow at its version once per
// request per workflow and version.
func (a *API) tokenWorkflow(ctx context.Context, p gql.Params) (any, error) {
	t := p.Parent.(*flow.Token)
	return gql.Memo(ctx, "workflow:"+t.WorkflowID+"@"+strconv.Itoa(t.WorkflowVersion), func() (any, error) {
		return orNull(a.client(ctx).GetWorkflowVersion(ctx, t.WorkflowID, t.WorkflowVersion))
	})
}

func (a *API) createWorkflow(ctx context.Context, p gql.Params) (any, error) {
	r, err := input[wire.CreateWorkflowRequest](p.Args["input"])
	if err != nil {
		return nil, err
	}
	return a.client(ctx).CreateWorkflow(ctx, r)
}

func (a *API) createToken(ctx context.Context, p gql.Params) (any, error) {
	r, err := input[wire.CreateTokenRequest](p.Args["input"])
	if err != nil {
		return nil, err
	}
	attribute(ctx, &r.TriggeredBy, &r.TriggeredByClaim)
	if r.TriggeredBy == "" {
		r.TriggeredBy = "api" // as the original's createToken recorded
	}
	return a.client(ctx).CreateToken(ctx, r)
}

func (a *API) createWorkflowInstance(ctx context.Context, p gql.Params) (any, error) {
	in, err := input[struct {
		wire.CreateTokenRequest
		InitialData json.RawMessage `json:"initialData"`
	}](p.Args["input"])
	if err != nil {
		return nil, err
	}
	r := in.CreateTokenRequest
	r.Data = in.InitialData
	attribute(ctx, &r.TriggeredBy, &r.TriggeredByClaim)
	return a.client(ctx).CreateToken(ctx, &r)
}

// fire serves fireTransition and transitionTokenWithNats. The request is
// validated here too: a newPlace given as "" is refused (sent on, it would
// read as absent and fire without the place check).
func (a *API) fire(ctx context.Context, p gql.Params) (any, error) {
	r, err := input[wire.FireRequest](p.Args["input"])
	if err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	attribute(ctx, &r.TriggeredBy, &r.TriggeredByClaim)
	return a.client(ctx).Fire(ctx, r)
}

func (a *API) updateToken(ctx context.Context, p gql.Params) (any, error) {
	r, err := input[wire.UpdateTokenRequest](p.Args["input"])
	if err != nil {
		return nil, err
	}
	attribute(ctx, &r.TriggeredBy, &r.TriggeredByClaim)
	return a.client(ctx).UpdateToken(ctx, r)
}

func (a *API) archiveToken(ctx context.Context, p gql.Params) (any, error) {
	r := &wire.ArchiveTokenRequest{TokenID: str(p.Args, "id")}
	attribute(ctx, &r.TriggeredBy, &r.TriggeredByClaim)
	return a.client(ctx).ArchiveToken(ctx, r)
}

func (a *API) deleteToken(ctx context.Context, p gql.Params) (any, error) {
	r := &wire.DeleteTokenRequest{TokenID: str(p.Args, "id")}
	attribute(ctx, &r.TriggeredBy, &r.TriggeredByClaim)
	rep, err := a.client(ctx).DeleteToken(ctx, r)
	if err != nil {
		return nil, err
	}
	return rep.Deleted, nil
}

func (a *API) deleteWorkflow(ctx context.Context, p gql.Params) (any, error) {
	force, _ := p.Args["force"].(bool)
	rep, err := a.client(ctx).DeleteWorkflow(ctx, str(p.Args, "id"), force)
	if err != nil {
		return nil, err
	}
	return rep.Deleted, nil
}

// input converts a GraphQL input object into a wire request (decode); one
// that does not fit gets a message in the client's terms, without Go types.
func input[T any](in any) (*T, error) {
	v, err := decode[T](in)
	var fe *fail.Error
	if errors.As(err, &fe) && fe.Err != nil {
		return nil, fail.Wrap(fail.BadInput, fe.Err, "invalid input: "+wire.DescribeJSONError(fe.Err))
	}
	return v, err
}

// pageArgs reads and checks the pagination arguments.
func pageArgs(args map[string]any) (wire.Page, error) {
	p := page(args)
	return p, p.Validate()
}

// tokenHistory resolves a token's history (fires: only fired transitions)
// or transition records: a page when first is given, else every entry.
// The same page is read once per request.
func (a *API) tokenHistory(fires bool) gql.ResolveFunc {
	return func(ctx context.Context, p gql.Params) (any, error) {
		t := p.Parent.(*flow.Token)
		r := &wire.TokenHistoryRequest{TokenID: t.ID, First: page(p.Args).First, After: str(p.Args, "after"), Fires: fires}
		if r.First < 0 {
			return nil, fail.New(fail.BadInput, "first must not be negative")
		}
		key := fmt.Sprintf("history:%s:%t:%d:%s", r.TokenID, fires, r.First, r.After)
		items, err := gql.Memo(ctx, key, func() (any, error) { return a.historyItems(ctx, r) })
		if err != nil {
			return nil, err
		}
		shape := historyEvent
		if !fires {
			shape = transitionRecord
		}
		list := items.([]wire.HistoryItem)
		out := make([]any, len(list))
		for i, it := range list {
			out[i] = shape(it)
		}
		return out, nil
	}
}

// historyItems reads one page of r, or every page when r.First is 0.
func (a *API) historyItems(ctx context.Context, r *wire.TokenHistoryRequest) (any, error) {
	var out []wire.HistoryItem
	for {
		pg, err := a.client(ctx).TokenHistory(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, pg.Items...)
		if r.First > 0 || pg.Next == 0 {
			return out, nil
		}
		r.After = strconv.FormatUint(pg.Next, 10)
	}
}

func historyEvent(it wire.HistoryItem) any {
	e := it.Event
	return map[string]any{"timestamp": e.Timestamp, "transition": e.Transition, "fromPlace": e.From, "toPlace": e.To,
		"data": raw(e.Data), "cursor": strconv.FormatUint(it.Sequence, 10)}
}

func transitionRecord(it wire.HistoryItem) any {
	r := it.Record
	return map[string]any{"fromPlace": r.FromPlace, "toPlace": r.ToPlace, "transitionId": r.TransitionID,
		"timestamp": r.Timestamp, "triggeredBy": optional(r.TriggeredBy), "triggeredByClaim": optional(r.TriggeredByClaim), "natsSequence": seq(r.NatsSequence),
		"metadata": raw(r.Metadata), "cursor": strconv.FormatUint(it.Sequence, 10)}
}

// bulkOutcomes pages a bulk result's outcomes by their index.
func bulkOutcomes(_ context.Context, p gql.Params) (any, error) {
	all := p.Parent.(*wire.BulkResult).Outcomes
	pg, err := pageArgs(p.Args)
	if err != nil {
		return nil, err
	}
	from := 0
	if pg.After != "" {
		if from, err = strconv.Atoi(pg.After); err != nil || from < 0 {
			return nil, fail.New(fail.BadInput, "after must be an outcome's index")
		}
		from++
	}
	from = min(from, len(all))
	return all[from:min(len(all), from+pg.Size())], nil
}

func (a *API) bulkTransitionTokens(ctx context.Context, p gql.Params) (any, error) {
	r, err := input[wire.BulkTransitionRequest](p.Args["input"])
	if err != nil {
		return nil, err
	}
	var claim string
	attribute(ctx, &r.TriggeredBy, &claim)
	return a.client(ctx).BulkTransition(ctx, r)
}
