package systemtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/rules"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// bulkWorkflow: approve moves a token from queue to done if its amount
// is under 1000; tokens declare their region.
func bulkWorkflow(id string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{ID: id, Name: "bulk", Places: []string{"queue", "done", "held"}, InitialPlace: "queue",
		SearchAttributes: []flow.SearchAttribute{{Path: "data.region", Type: flow.Keyword}},
		Transitions: []flow.Transition{{ID: "approve", FromPlaces: []string{"queue"}, ToPlace: "done",
			Rules: []rules.Rule{{ID: "small", Condition: rules.Condition{Type: "FieldLessThan", Field: "amount", Value: json.RawMessage("1000")}}}}}}
}

// createBulk makes n tokens in queue with random amounts and regions and
// returns how many are east, and east and small.
func createBulk(t testing.TB, s *system, wf string, n int) (east, eligible int) {
	t.Helper()
	c := ctx(t)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 3))
			for range n / 16 {
				amount, region := r.IntN(1200), []string{"east", "west"}[r.IntN(2)]
				testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf, Data: json.RawMessage(fmt.Sprintf(`{"amount":%d,"region":%q}`, amount, region))}))
				mu.Lock()
				if region == "east" {
					east++
					if amount < 1000 {
						eligible++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return east, eligible
}

// TestBulkTransition: a dry run changes nothing; a bulk transition fires
// exactly the eligible tokens its filter selects, reports the others with
// their reason, and sent again fires nothing twice; bulk_progress events
// report it.
func TestBulkTransition(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	testkit.Must(s.c.CreateWorkflow(c, bulkWorkflow("bulk")))
	east, eligible := createBulk(t, s, "bulk", 2000)
	req := &wire.BulkTransitionRequest{WorkflowID: "bulk", FromPlace: "queue", TransitionID: "approve", IdempotencyKey: "approve-east",
		Filter: &wire.TokenFilter{Data: map[string]json.RawMessage{"region": json.RawMessage(`"east"`)}}}
	dry := *req
	dry.DryRun = true
	res := testkit.Must(s.c.BulkTransition(c, &dry))
	if res.ProcessedCount != east || res.FailedCount != east-eligible || !res.Complete {
		t.Fatalf("dry run: processed %d failed %d, want %d and %d", res.ProcessedCount, res.FailedCount, east, east-eligible)
	}
	if n := len(listAllIn(t, s, "bulk", "done")); n != 0 {
		t.Fatalf("a dry run moved %d tokens", n)
	}
	start := time.Now()
	res = testkit.Must(s.c.BulkTransition(c, req))
	took := time.Since(start)
	if res.ProcessedCount != east || res.FailedCount != east-eligible || res.Success || !res.Complete {
		t.Fatalf("bulk: %+v", summary(res))
	}
	if len(res.Errors) != 1 || res.Outcomes[0].TokenID == "" {
		t.Fatalf("reasons: %v", res.Errors)
	}
	done := listAllIn(t, s, "bulk", "done")
	if len(done) != eligible {
		t.Fatalf("%d tokens in done, want the %d eligible", len(done), eligible)
	}
	for _, tok := range done {
		var d struct {
			Amount int
			Region string
		}
		testkit.Must(0, json.Unmarshal(tok.Data, &d))
		if d.Region != "east" || d.Amount >= 1000 {
			t.Fatalf("moved an ineligible token: %s", tok.Data)
		}
	}
	again := testkit.Must(s.c.BulkTransition(c, req))
	if again.ProcessedCount != east-eligible || again.FailedCount != east-eligible {
		t.Fatalf("sent again: %+v", summary(again))
	}
	transitioned, progress, last := 0, 0, wire.BulkProgress{}
	for _, e := range events(t, s, "bulk") {
		switch e.EventType {
		case wire.EventTokenTransitioned:
			transitioned++
		case wire.EventBulkProgress:
			progress++
			last = *e.Progress
		}
	}
	if transitioned != eligible {
		t.Fatalf("%d token_transitioned events for %d eligible tokens", transitioned, eligible)
	}
	if progress == 0 || !last.Done || last.IdempotencyKey != "approve-east" {
		t.Fatalf("%d bulk_progress events, last %+v", progress, last)
	}
	t.Logf("bulk transition of %d tokens (%d fired): %v, %.0f tokens/s", east, eligible, took.Round(time.Millisecond), float64(east)/took.Seconds())
}

func summary(r *wire.BulkResult) string {
	return fmt.Sprintf("success %v processed %d failed %d complete %v errors %v", r.Success, r.ProcessedCount, r.FailedCount, r.Complete, r.Errors)
}

func listAllIn(t testing.TB, s *system, wf, place string) []*flow.Token {
	t.Helper()
	var out []*flow.Token
	for p := (wire.Page{First: 1000}); ; {
		page := testkit.Must(s.c.TokensInPlace(ctx(t), wf, place, p))
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		p.After = page.Next
	}
}
