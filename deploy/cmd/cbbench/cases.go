package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// bench runs the cases and remembers what it measured for ratios.
type bench struct {
	s        settings
	t        *system
	progress io.Writer
	results  []Result
	notes    []string
}

// benchWorkflow has two places and a transition "flip" from each to the
// other, so every fire moves a token (a four-message change: tombstone,
// history entry, state, event) and needs no client-side state.
const benchWorkflow = "cbbench"

func (b *bench) all() ([]Result, error) {
	c := client.New(b.t.nc)
	ctx := context.Background()
	_, err := c.CreateWorkflow(ctx, &wire.CreateWorkflowRequest{ID: benchWorkflow, Name: "cbbench", Places: []string{"a", "b"},
		InitialPlace: "a", Transitions: []flow.Transition{
			{ID: "flip", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "flip", FromPlaces: []string{"b"}, ToPlace: "a"}}})
	if err != nil && !isConflict(err) {
		return nil, fmt.Errorf("create the benchmark workflow: %w", err)
	}
	base, err := newBaselines(ctx, b.t)
	if err != nil {
		return nil, err
	}
	defer base.close()
	for _, n := range b.s.clients {
		if err := b.paths(ctx, c, base, n); err != nil {
			return nil, err
		}
	}
	if err := b.places(ctx, c); err != nil {
		return nil, err
	}
	if err := b.fanout(ctx, c, base); err != nil {
		return nil, err
	}
	if err := b.history(ctx, c); err != nil {
		return nil, err
	}
	if err := b.search(ctx, c); err != nil {
		return nil, err
	}
	if err := b.reindex(ctx, c); err != nil {
		return nil, err
	}
	if err := b.bulk(ctx, c); err != nil {
		return nil, err
	}
	if err := b.timers(ctx, c); err != nil {
		return nil, err
	}
	return b.results, nil
}

// paths measures the baselines and our paths at n clients.
func (b *bench) paths(ctx context.Context, c *client.Client, base *baselines, n int) error {
	// Each case gets fresh tokens, and each worker cycles through its own
	// few (the history cases measure long-lived tokens).
	fresh := func() ([][]string, error) { return tokensFor(ctx, c, n, tokensPerWorker) }
	toks, err := fresh()
	if err != nil {
		return err
	}
	pick := func(toks [][]string, w, i int) string { return toks[w][i%tokensPerWorker] }

	for _, bc := range base.cases(n) {
		b.run(bc.name, n, bc.f, "")
	}
	if err := b.groupedBaseline(ctx, c, base, n); err != nil {
		return err
	}
	// Like the raw rows, our NATS rows send a request and check the reply's
	// status without decoding its JSON (a user would decode either).
	nc := b.t.nc
	b.run("create (NATS)", n, func(ctx context.Context, _, _ int) error {
		_, err := rpc.CallRaw(ctx, nc, subjects.TokenCreate.In(subjects.AllTenants), &wire.CreateTokenRequest{WorkflowID: benchWorkflow})
		return err
	}, "raw: KV CAS update + event publish")
	b.run("transition (NATS)", n, func(ctx context.Context, w, i int) error {
		_, err := rpc.CallRaw(ctx, nc, subjects.TokenFire.In(subjects.AllTenants), &wire.FireRequest{TokenID: pick(toks, w, i), TransitionID: "flip"})
		return err
	}, "raw: KV CAS update + event publish")
	b.ratio("transition (NATS)", n, "raw: atomic batch, 3 msgs", n)
	for _, g := range []string{groupedName, groupedLingerName} {
		b.ratio("create (NATS)", n, g, n)
		b.ratio("transition (NATS)", n, g, n)
	}
	if toks, err = fresh(); err != nil {
		return err
	}
	b.run("get token (NATS)", n, func(ctx context.Context, w, i int) error {
		_, err := rpc.CallRaw(ctx, nc, subjects.TokenGet.In(subjects.AllTenants), &wire.GetTokenRequest{ID: pick(toks, w, i)})
		return err
	}, "raw: direct get")
	b.ratio("get token (NATS)", n, "raw: micro echo, then direct get", n)
	if b.t.graphql == "" {
		return nil
	}
	g := newGraphQL(b.t.graphql)
	b.run("create (GraphQL)", n, func(ctx context.Context, _, _ int) error {
		return g.do(ctx, `mutation($wf:String!){createToken(input:{workflowId:$wf}){id}}`, map[string]any{"wf": benchWorkflow})
	}, "create (NATS)")
	if toks, err = fresh(); err != nil {
		return err
	}
	b.run("transition (GraphQL)", n, func(ctx context.Context, w, i int) error {
		return g.do(ctx, `mutation($id:String!){fireTransition(input:{tokenId:$id,transitionId:"flip"}){place}}`, map[string]any{"id": pick(toks, w, i)})
	}, "transition (NATS)")
	b.run("get token (GraphQL)", n, func(ctx context.Context, w, i int) error {
		return g.do(ctx, `query($id:String!){token(id:$id){id place revision}}`, map[string]any{"id": pick(toks, w, i)})
	}, "get token (NATS)")
	return nil
}

func isConflict(err error) bool { return errors.Is(err, fail.ErrConflict) }

// tokensPerWorker is how many tokens each worker cycles through: enough
// that writers of one worker rarely wait on each other's token.
const tokensPerWorker = 64

// tokensFor creates k tokens for each of n workers, the workers in parallel.
func tokensFor(ctx context.Context, c *client.Client, n, k int) ([][]string, error) {
	out := make([][]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range k {
				t, err := c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: benchWorkflow})
				if err != nil {
					errs[w] = err
					return
				}
				out[w] = append(out[w], t.ID)
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// run measures one case and adds its row, with its ratio to baseline.
func (b *bench) run(name string, n int, f op, baseline string) {
	if !b.s.only.MatchString(name) {
		return
	}
	fmt.Fprintf(b.progress, "%-60s %3d clients ...", name, n)
	r := measure(name, n, b.s.duration, b.s.maxOps, f)
	fmt.Fprintf(b.progress, " %9.0f ops/s\n", r.PerSecond)
	b.results = append(b.results, r)
	if baseline != "" {
		b.ratio(name, n, baseline, n)
	}
}

// ratio compares a measured case to a baseline measured at baseN
// clients: on the case's row, or on a copy when the row has a ratio already.
func (b *bench) ratio(name string, n int, baseline string, baseN int) {
	i, okR := b.find(name, n)
	j, okB := b.find(baseline, baseN)
	if !okR || !okB || b.results[j].PerSecond == 0 {
		return
	}
	r, base := b.results[i], b.results[j]
	r.Baseline, r.Ratio = baseline, r.PerSecond/base.PerSecond
	r.Note = fmt.Sprintf("p50 %+.0f µs", r.P50-base.P50)
	if b.results[i].Baseline == "" {
		b.results[i] = r
		return
	}
	b.results = append(b.results, r)
}

// find returns the index of the first row of a case at n clients.
func (b *bench) find(name string, n int) (int, bool) {
	for i, r := range b.results {
		if r.Operation == name && r.Clients == n {
			return i, true
		}
	}
	return 0, false
}
