package processtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/services/workflow"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/natstest"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestBulkKill9: a bulk transition of 10,000 tokens; the token service is
// killed with SIGKILL mid-way; sent again (same idempotency key) to a new
// one, it finishes: every token transitioned exactly once.
func TestBulkKill9(t *testing.T) {
	url, first, c, js := killableTokenService(t)
	cx := ctxFor(t, 5*time.Minute)
	const wf = "kill9bulk"
	testkit.Must(c.CreateWorkflow(cx, cycle(wf)))
	total := createTokens(cx, c, &wire.CreateTokenRequest{WorkflowID: wf}, 10000, 32)
	req := &wire.BulkTransitionRequest{WorkflowID: wf, FromPlace: "a", TransitionID: "ab", IdempotencyKey: "move-all"}
	go func() { // its reply dies with the process
		short, cancel := context.WithTimeout(cx, 30*time.Second)
		defer cancel()
		_, _ = c.BulkTransition(short, req)
	}()
	testkit.Poll(t, time.Minute, "the bulk transition under way", func() bool { return countType(cx, t, js, wf, wire.EventTokenTransitioned) > 500 })
	first.kill9(t)
	before := countType(cx, t, js, wf, wire.EventTokenTransitioned)
	tokenService(t, url)
	start := time.Now()
	testkit.Poll(t, 2*time.Minute, "the bulk transition completed", func() bool {
		short, cancel := context.WithTimeout(cx, 30*time.Second)
		defer cancel()
		res, err := c.BulkTransition(short, req)
		return err == nil && res.Complete && res.FailedCount == 0
	})
	if got := countType(cx, t, js, wf, wire.EventTokenTransitioned); got != total {
		t.Fatalf("%d token_transitioned events for %d tokens (%d before the kill)", got, total, before)
	}
	for _, tok := range listAll(cx, t, c, wf, "") {
		if tok.Place != "b" || tok.Revision != 2 {
			t.Fatalf("token %s in %s at revision %d", tok.ID, tok.Place, tok.Revision)
		}
	}
	t.Logf("killed with %d of %d tokens moved; the rest moved in %v, each once", before, total, time.Since(start).Round(time.Millisecond))
}

func countType(ctx context.Context, t testing.TB, js jetstream.JetStream, wf, typ string) int {
	n := 0
	for _, e := range streamEvents(ctx, t, js, wf) {
		if e.EventType == typ {
			n++
		}
	}
	return n
}

// killableTokenService runs a nats-server and the workflow service in the
// test process and one token-service process (to kill), and returns the
// server's URL, that process and a client.
func killableTokenService(t *testing.T) (string, *proc, *client.Client, jetstream.JetStream) {
	t.Helper()
	ns := natstest.Server(t)
	wi := testkit.Must(workflow.Start(context.Background(), natstest.Connect(t, ns), rpc.ServiceOptions{Store: storeSettings(), Concurrency: 64, Log: zerolog.Nop()}))
	t.Cleanup(wi.Stop)
	first := tokenService(t, ns.ClientURL())
	nc := natstest.Connect(t, ns)
	return ns.ClientURL(), first, client.New(nc), testkit.Must(jetstream.New(nc))
}

// createTokens creates n/workers*workers tokens with r from workers
// clients at once and returns how many.
func createTokens(ctx context.Context, c *client.Client, r *wire.CreateTokenRequest, n, workers int) int {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range n / workers {
				testkit.Must(c.CreateToken(ctx, r))
			}
		})
	}
	wg.Wait()
	return n / workers * workers
}
