package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

const (
	reindexWorkflow = "cbbench_reindex"
	reindexTokens   = 10000
	searchWorkflow  = "cbbench_search"
	needles         = 100
	bulkWorkflow    = "cbbench_bulk"
	bulkTokens      = 2000
)

// search measures findTokens of the 100 tokens with one value of a search
// attribute while the workflow grows to each size: its cost should follow
// the answer, not the workflow.
func (b *bench) search(ctx context.Context, c *client.Client) error {
	if !b.s.only.MatchString("findTokens") {
		return nil
	}
	_, err := c.CreateWorkflow(ctx, &wire.CreateWorkflowRequest{ID: searchWorkflow, Name: "cbbench search", Places: []string{"a"}, InitialPlace: "a",
		SearchAttributes: []flow.SearchAttribute{{Path: "metadata.team", Type: flow.Keyword}}, Transitions: []flow.Transition{}})
	if err != nil && !isConflict(err) {
		return err
	}
	create := func(team string) func() error {
		return func() error {
			_, err := c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: searchWorkflow, Metadata: json.RawMessage(`{"team":"` + team + `"}`)})
			return err
		}
	}
	if err := seedWith(ctx, needles, create("needle")); err != nil {
		return err
	}
	have := needles
	filter := wire.TokenFilter{WorkflowIDs: []string{searchWorkflow}, Metadata: map[string]json.RawMessage{"team": json.RawMessage(`"needle"`)}}
	for _, size := range b.s.placeSizes {
		if size > have {
			fmt.Fprintf(b.progress, "seeding %d tokens ...\n", size-have)
			if err := seedWith(ctx, size-have, create("hay")); err != nil {
				return err
			}
			have = size
		}
		b.run(fmt.Sprintf("findTokens: %d of %d by a keyword", needles, have), 1, func(ctx context.Context, _, _ int) error {
			p, err := c.FindTokens(ctx, &wire.FindTokensRequest{Filter: filter, Page: wire.Page{First: needles}})
			if err == nil && len(p.Items) != needles {
				err = fmt.Errorf("found %d, want %d", len(p.Items), needles)
			}
			return err
		}, "")
	}
	return nil
}

// reindex measures the background build of a search attribute that a
// later version adds to a workflow with reindexTokens tokens: from the
// update to a READY search index.
func (b *bench) reindex(ctx context.Context, c *client.Client) error {
	if !b.s.only.MatchString("reindex") {
		return nil
	}
	def := &wire.CreateWorkflowRequest{ID: reindexWorkflow, Name: "cbbench reindex", Places: []string{"a"}, InitialPlace: "a", Transitions: []flow.Transition{}}
	d, err := c.CreateWorkflow(ctx, def)
	if isConflict(err) {
		if d, err = c.GetWorkflow(ctx, reindexWorkflow); err == nil && d.Version > 1 {
			return fmt.Errorf("reindex: workflow %s exists at version %d: use a fresh --data-dir", reindexWorkflow, d.Version)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(b.progress, "seeding %d tokens ...\n", reindexTokens)
	if err := seedWith(ctx, reindexTokens, func() error {
		_, err := c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: reindexWorkflow, Metadata: json.RawMessage(`{"team":"a"}`)})
		return err
	}); err != nil {
		return err
	}
	def.SearchAttributes = []flow.SearchAttribute{{Path: "metadata.team", Type: flow.Keyword}}
	start := time.Now()
	if _, err := c.UpdateWorkflow(ctx, &wire.UpdateWorkflowRequest{CreateWorkflowRequest: *def, ExpectedVersion: 1}); err != nil {
		return err
	}
	for {
		idx, err := c.SearchIndex(ctx, reindexWorkflow)
		if err != nil {
			return err
		}
		if idx.State == wire.IndexReady {
			took := time.Since(start)
			b.notes = append(b.notes, fmt.Sprintf("search index build of an attribute added to %d tokens: %v (%.0f tokens/s; %d indexed)",
				reindexTokens, took.Round(time.Millisecond), float64(reindexTokens)/took.Seconds(), idx.Indexed))
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bulk compares a bulk transition of 2,000 tokens with the same fires
// sent one by one from 16 clients.
func (b *bench) bulk(ctx context.Context, c *client.Client) error {
	if !b.s.only.MatchString("bulk") {
		return nil
	}
	_, err := c.CreateWorkflow(ctx, &wire.CreateWorkflowRequest{ID: bulkWorkflow, Name: "cbbench bulk", Places: []string{"a", "b"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "ab", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "ba", FromPlaces: []string{"b"}, ToPlace: "a"}}})
	if err != nil && !isConflict(err) {
		return err
	}
	var ids []string
	for range bulkTokens {
		t, err := c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: bulkWorkflow})
		if err != nil {
			return err
		}
		ids = append(ids, t.ID)
	}
	start := time.Now()
	res, err := c.BulkTransition(ctx, &wire.BulkTransitionRequest{WorkflowID: bulkWorkflow, FromPlace: "a", TransitionID: "ab",
		IdempotencyKey: fmt.Sprint("bench-", start.UnixNano())})
	if err != nil {
		return err
	}
	bulkTook := time.Since(start)
	start = time.Now()
	next := make(chan string, len(ids))
	for _, id := range ids {
		next <- id
	}
	close(next)
	if err := seedWith(ctx, len(ids), func() error {
		_, err := c.Fire(ctx, &wire.FireRequest{TokenID: <-next, TransitionID: "ba"})
		return err
	}); err != nil {
		return err
	}
	singleTook := time.Since(start)
	b.notes = append(b.notes, fmt.Sprintf("bulk transition of %d tokens: %v (%.0f/s; %d fired, complete %v); the same %d fires one by one from 64 clients: %v (%.0f/s); ratio %.2f",
		bulkTokens, bulkTook.Round(time.Millisecond), float64(bulkTokens)/bulkTook.Seconds(), res.ProcessedCount-res.FailedCount, res.Complete,
		bulkTokens, singleTook.Round(time.Millisecond), float64(bulkTokens)/singleTook.Seconds(), singleTook.Seconds()/bulkTook.Seconds()))
	return nil
}
