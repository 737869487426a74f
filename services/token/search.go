package token

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Search. For each workflow searched, one part of the filter drives: an
// equality on a declared search attribute (the index entries of that
// value), else a range on one (the attribute's index entries), else an
// and-branch that has a driver, else the union of the or-branches'
// drivers, else places (their token subjects), else — for workflowIds
// alone — every token. The driver yields token ids (or states); states
// are then read a batch at a time in id order and the whole filter is
// checked on each, so results are exact as of their read. A page stops
// when full; the cursor is "<workflowId>/<tokenId>".

func (s *Service) findTokens(ctx context.Context, r *wire.FindTokensRequest) (*wire.TokenPage, error) {
	out := &wire.TokenPage{Items: []*flow.Token{}}
	err := s.search(ctx, r, r.Page.Size(), func(t *flow.Token) bool {
		out.Items = append(out.Items, t)
		if len(out.Items) == r.Page.Size() {
			out.Next = t.WorkflowID + "/" + t.ID
			return false
		}
		return true
	})
	return out, err
}

func (s *Service) countTokens(ctx context.Context, r *wire.FindTokensRequest) (*wire.CountTokensReply, error) {
	n := 0
	err := s.search(ctx, r, 0, func(*flow.Token) bool { n++; return true })
	return &wire.CountTokensReply{Count: n}, err
}

// search calls yield with each matching token after the request's cursor,
// in order, until it returns false.
func (s *Service) search(ctx context.Context, r *wire.FindTokensRequest, pageSize int, yield func(*flow.Token) bool) error {
	afterWF, afterID, _ := strings.Cut(r.After, "/")
	scope := tenant.FromContext(ctx)
	started := afterWF == ""
	for _, id := range r.Filter.WorkflowIDs {
		wf, err := scope.Resolve(id)
		if err != nil {
			return err
		}
		if !started && wf != afterWF {
			continue
		}
		from := ""
		if !started {
			from, started = afterID, true
		}
		more, err := s.searchWorkflow(ctx, wf, &r.Filter, from, pageSize, yield)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// searchWorkflow yields the workflow's matching tokens with ids after
// from; false when yield asked to stop.
func (s *Service) searchWorkflow(ctx context.Context, wf string, f *wire.TokenFilter, from string, pageSize int, yield func(*flow.Token) bool) (bool, error) {
	q, err := s.newQuery(ctx, wf)
	if err != nil {
		return false, err
	}
	if err := q.check(f); err != nil {
		return false, err
	}
	found, err := q.candidates(ctx, f, true)
	if err != nil {
		return false, err
	}
	ids := make([]string, 0, len(found))
	for id := range found {
		if id > from {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	chunk := max(pageSize, 64)
	for len(ids) > 0 {
		batch := ids[:min(chunk, len(ids))]
		ids = ids[len(batch):]
		if err := q.fill(ctx, found, batch); err != nil {
			return false, err
		}
		for _, id := range batch {
			if t := found[id]; t != nil && q.matches(f, t) && !yield(t) {
				return false, nil
			}
		}
	}
	return true, nil
}

// query is one filter applied to one workflow.
type query struct {
	s     *Service
	wf    string
	def   *flow.Definition  // the latest version
	index *wire.SearchIndex // which attributes existing tokens may still lack entries of
}

// newQuery is a query on workflow wf's latest version.
func (s *Service) newQuery(ctx context.Context, wf string) (*query, error) {
	m, err := s.store.Machine(ctx, wf, 0)
	if err != nil {
		return nil, err
	}
	index, _, err := s.store.SearchIndex(ctx, wf)
	if err != nil {
		return nil, err
	}
	return &query{s: s, wf: wf, def: m.Def, index: index}, nil
}

// attribute returns the declared attribute at path, or an error naming
// the declared ones; an attribute whose entries are still being built is
// refused, since the answer would miss tokens.
func (q *query) attribute(path string) (flow.SearchAttribute, error) {
	if a, ok := q.def.SearchAttribute(path); ok {
		if q.index.State == wire.IndexBuilding && slices.Contains(q.index.Building, path) {
			return a, fail.New(fail.Unavailable, "the search index of '%s' in workflow %s is being built for the tokens that existed when version %d added it (%d indexed so far): search on it once the workflow's searchIndex is READY",
				path, q.wf, q.index.Version, q.index.Indexed)
		}
		return a, nil
	}
	declared := make([]string, 0, len(q.def.SearchAttributes))
	for _, a := range q.def.SearchAttributes {
		declared = append(declared, a.Path+" ("+a.Type+")")
	}
	return flow.SearchAttribute{}, fail.New(fail.BadInput, "'%s' is not a search attribute of workflow %s: declared are [%s]",
		path, q.wf, strings.Join(declared, ", "))
}

// check refuses a filter with undeclared keys or values of the wrong type.
func (q *query) check(f *wire.TokenFilter) error {
	for _, c := range equalities(f) {
		a, err := q.attribute(c.path)
		if err != nil {
			return err
		}
		if _, err := a.Encode(c.value); err != nil {
			return fail.New(fail.BadInput, "filter: %v", err)
		}
	}
	for _, r := range f.Ranges {
		a, err := q.attribute(r.Path)
		if err != nil {
			return err
		}
		if a.Type != flow.Number && a.Type != flow.Time {
			return fail.New(fail.BadInput, "filter: a range needs a NUMBER or TIME attribute; %s is %s", r.Path, a.Type)
		}
		for _, b := range [][]byte{r.Gt, r.Gte, r.Lt, r.Lte} {
			if b != nil {
				if _, err := a.Encode(b); err != nil {
					return fail.New(fail.BadInput, "filter: %v", err)
				}
			}
		}
	}
	for _, sub := range append(append([]wire.TokenFilter{}, f.And...), f.Or...) {
		if err := q.check(&sub); err != nil {
			return err
		}
	}
	return nil
}

// equality is one condition "the value at path equals value".
type equality struct {
	path  string
	value json.RawMessage
}

func equalities(f *wire.TokenFilter) []equality {
	var out []equality
	for _, root := range []struct {
		name string
		m    map[string]json.RawMessage
	}{{"data", f.Data}, {"metadata", f.Metadata}} {
		keys := make([]string, 0, len(root.m))
		for k := range root.m {
			keys = append(keys, k)
		}
		slices.Sort(keys) // the same driver every time
		for _, k := range keys {
			out = append(out, equality{root.name + "." + k, root.m[k]})
		}
	}
	return out
}

// candidates returns the ids of the tokens the filter's driver yields,
// with their states when the driver read them (nil otherwise).
func (q *query) candidates(ctx context.Context, f *wire.TokenFilter, top bool) (map[string]*flow.Token, error) {
	if eq := equalities(f); len(eq) > 0 {
		a, _ := q.attribute(eq[0].path)
		v, _ := a.Encode(eq[0].value)
		return q.ids(ctx, subjects.IndexValue(q.wf, a.Key(), v), nil)
	}
	if len(f.Ranges) > 0 {
		r := f.Ranges[0]
		a, _ := q.attribute(r.Path)
		return q.ids(ctx, subjects.IndexKey(q.wf, a.Key()), func(v string) bool { return inRange(a, r, v) })
	}
	for i := range f.And {
		if hasDriver(&f.And[i]) {
			return q.candidates(ctx, &f.And[i], false)
		}
	}
	if len(f.Or) > 0 {
		union := map[string]*flow.Token{}
		for i := range f.Or {
			if !hasDriver(&f.Or[i]) {
				return nil, fail.New(fail.BadInput, "filter: each or-branch needs an equality or range on a search attribute, or places")
			}
			part, err := q.candidates(ctx, &f.Or[i], false)
			if err != nil {
				return nil, err
			}
			for id, t := range part {
				union[id] = t
			}
		}
		return union, nil
	}
	if len(f.Places) > 0 {
		return q.states(ctx, f.Places)
	}
	if top {
		return q.states(ctx, nil)
	}
	return nil, fail.New(fail.BadInput, "filter: needs an equality or range on a search attribute, places, or only workflowIds")
}

func hasDriver(f *wire.TokenFilter) bool {
	if len(f.Data) > 0 || len(f.Metadata) > 0 || len(f.Ranges) > 0 || len(f.Places) > 0 {
		return true
	}
	if slices.ContainsFunc(f.And, func(g wire.TokenFilter) bool { return hasDriver(&g) }) {
		return true
	}
	return len(f.Or) > 0 && !slices.ContainsFunc(f.Or, func(g wire.TokenFilter) bool { return !hasDriver(&g) })
}

func (q *query) ids(ctx context.Context, filter string, keep func(string) bool) (map[string]*flow.Token, error) {
	ids, err := q.s.store.IndexedIDs(ctx, q.wf, filter, keep)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*flow.Token, len(ids))
	for _, id := range ids {
		out[id] = nil
	}
	return out, nil
}

// states reads the tokens in places (every token when none).
func (q *query) states(ctx context.Context, places []string) (map[string]*flow.Token, error) {
	out := map[string]*flow.Token{}
	list := func(p wire.Page) (*wire.TokenPage, error) { return q.s.store.List(ctx, q.wf, p) }
	for i := 0; i < max(len(places), 1); i++ {
		if len(places) > 0 {
			place := places[i]
			list = func(p wire.Page) (*wire.TokenPage, error) { return q.s.store.InPlace(ctx, q.wf, place, p) }
		}
		for p := (wire.Page{First: wire.MaxPageSize}); ; {
			page, err := list(p)
			if err != nil {
				return nil, err
			}
			for _, t := range page.Items {
				out[t.ID] = t
			}
			if page.Next == "" {
				break
			}
			p.After = page.Next
		}
	}
	return out, nil
}

// fill reads the states of ids that have none yet.
func (q *query) fill(ctx context.Context, found map[string]*flow.Token, ids []string) error {
	var missing []string
	for _, id := range ids {
		if found[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	states, err := q.s.store.States(ctx, q.wf, missing)
	for id, t := range states {
		found[id] = t
	}
	return err
}

// matches checks the whole filter on a token's state.
func (q *query) matches(f *wire.TokenFilter, t *flow.Token) bool {
	if len(f.Places) > 0 && !slices.Contains(f.Places, t.Place) {
		return false
	}
	for _, c := range equalities(f) {
		a, _ := q.attribute(c.path)
		want, _ := a.Encode(c.value)
		if got, ok := a.IndexValue(t); !ok || got != want {
			return false
		}
	}
	for _, r := range f.Ranges {
		a, _ := q.attribute(r.Path)
		v, ok := a.IndexValue(t)
		if !ok || !inRange(a, r, v) {
			return false
		}
	}
	if !within(t.CreatedAt, f.CreatedAfter, f.CreatedBefore) || !within(t.UpdatedAt, f.UpdatedAfter, f.UpdatedBefore) {
		return false
	}
	for i := range f.And {
		if !q.matches(&f.And[i], t) {
			return false
		}
	}
	return len(f.Or) == 0 || slices.ContainsFunc(f.Or, func(g wire.TokenFilter) bool { return q.matches(&g, t) })
}

// inRange compares an encoded value with a range's bounds (encodings of
// numbers and times sort as the values do).
func inRange(a flow.SearchAttribute, r wire.Range, v string) bool {
	bound := func(b json.RawMessage) string { s, _ := a.Encode(b); return s }
	return (r.Gt == nil || v > bound(r.Gt)) && (r.Gte == nil || v >= bound(r.Gte)) &&
		(r.Lt == nil || v < bound(r.Lt)) && (r.Lte == nil || v <= bound(r.Lte))
}

// within reports whether at is after after and before before (each unset: open).
func within(at time.Time, after, before *time.Time) bool {
	return (after == nil || at.After(*after)) && (before == nil || at.Before(*before))
}
