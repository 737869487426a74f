package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// history measures whether a token's cost grows with its past: fire and
// get on a token with 10 transitions, on one with --long-history, and on
// one fired 2,000 times with 10 KB of data each (issue 13's "flat in
// history" target: ≤ 1.2× the fresh token).
func (b *bench) history(ctx context.Context, c *client.Client) error {
	if !b.s.only.MatchString("history") {
		return nil
	}
	fresh, err := agedToken(ctx, c, 10, nil, b.progress)
	if err != nil {
		return err
	}
	long, err := agedToken(ctx, c, b.s.longHistory, nil, b.progress)
	if err != nil {
		return err
	}
	bulky, err := agedToken(ctx, c, 2000, json.RawMessage(`{"doc":"`+strings.Repeat("x", 10<<10)+`"}`), b.progress)
	if err != nil {
		return err
	}
	nc := b.t.nc
	fire := func(id string) op {
		return func(ctx context.Context, _, _ int) error {
			_, err := rpc.CallRaw(ctx, nc, subjects.TokenFire.In(subjects.AllTenants), &wire.FireRequest{TokenID: id, TransitionID: "flip"})
			return err
		}
	}
	get := func(id string) op {
		return func(ctx context.Context, _, _ int) error {
			_, err := rpc.CallRaw(ctx, nc, subjects.TokenGet.In(subjects.AllTenants), &wire.GetTokenRequest{ID: id})
			return err
		}
	}
	base := "history: fire, 10 transitions"
	b.run(base, 1, fire(fresh), "")
	b.run(fmt.Sprintf("history: fire, %d transitions", b.s.longHistory), 1, fire(long), base)
	b.run("history: fire, 2000 × 10 KB", 1, fire(bulky), base)
	base = "history: get, 10 transitions"
	b.run(base, 1, get(fresh), "")
	b.run(fmt.Sprintf("history: get, %d transitions", b.s.longHistory), 1, get(long), base)
	b.run("history: get, 2000 × 10 KB", 1, get(bulky), base)
	b.run("history: a page of 100 entries (long token)", 1, func(ctx context.Context, _, _ int) error {
		_, err := rpc.CallRaw(ctx, nc, subjects.TokenHistoryPage.In(subjects.AllTenants), &wire.TokenHistoryRequest{TokenID: long, First: 100,
			After: fmt.Sprint(0)})
		return err
	}, "")
	return nil
}

// agedToken creates a token and fires it n-1 times (with data, when
// given), so that it has n transition records.
func agedToken(ctx context.Context, c *client.Client, n int, data json.RawMessage, progress interface{ Write([]byte) (int, error) }) (string, error) {
	t, err := c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: benchWorkflow})
	if err != nil {
		return "", err
	}
	if n > 100 {
		fmt.Fprintf(progress, "aging a token: %d fires ...\n", n-1)
	}
	for range n - 1 {
		if _, err := c.Fire(ctx, &wire.FireRequest{TokenID: t.ID, TransitionID: "flip", Data: data}); err != nil {
			return "", fmt.Errorf("age token %s: %w", t.ID, err)
		}
	}
	return t.ID, nil
}
