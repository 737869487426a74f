package processtest

import (
	"context"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/services/event"
	"github.com/cbnats/circuitbreaker/services/workflow"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/natstest"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

func storeSettings() config.Store {
	return config.Store{Replicas: 1, DedupeWindow: 2 * time.Minute, EventMaxAge: time.Hour, MaxDeliver: 5, RequestTimeout: 10 * time.Second, RouteWrites: true}
}

// TestTokenServiceCrash runs a nats-server and the workflow and event
// services in the test process and two token-service processes in the
// queue group, puts a load of creates and fires on them, and kills one
// token-service with SIGKILL mid-load. Clients must get success or a typed
// error (UNAVAILABLE or TIMEOUT); a timed-out fire, settled by reading the
// token, either happened whole or not at all; only requests in flight at
// the kill fail; the survivor keeps serving; and a restarted token-service
// serves its first request at once. At the end, every token's state and
// events agree.
func TestTokenServiceCrash(t *testing.T) {
	ns := natstest.Server(t)
	url := ns.ClientURL()
	bg := context.Background()
	wi := testkit.Must(workflow.Start(bg, natstest.Connect(t, ns), rpc.ServiceOptions{Store: storeSettings(), Concurrency: 64, Log: zerolog.Nop()}))
	t.Cleanup(wi.Stop)
	ei := testkit.Must(event.Start(bg, natstest.Connect(t, ns), rpc.ServiceOptions{Store: storeSettings(), Concurrency: 64, Log: zerolog.Nop()}))
	t.Cleanup(ei.Stop)
	a, b := tokenService(t, url), tokenService(t, url)

	nc := natstest.Connect(t, ns)
	c, js := client.New(nc), testkit.Must(jetstream.New(nc))
	const wf = "crash"
	testkit.Must(c.CreateWorkflow(ctxFor(t, 10*time.Second), cycle(wf)))

	led := newLedger(wf)
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	// A writer settles a failed fire at once by reading the token, then
	// goes on; failed creates are settled at the end by listing.
	onErr := func(w *writer, op string, rec *tokenRec, err error) bool {
		if !typed(err) {
			t.Errorf("writer %d: %s failed with an untyped error: %v", w.id, op, err)
		}
		if rec == nil {
			return true
		}
		var tok *flow.Token
		testkit.Poll(t, 10*time.Second, "reading back "+rec.id, func() bool {
			ctx, cancel := context.WithTimeout(bg, time.Second)
			defer cancel()
			got, err := c.GetToken(ctx, rec.id)
			tok = got
			return err == nil
		})
		led.settle(t, tok, rec)
		return true
	}
	const writers = 8
	for i := range writers {
		w := &writer{id: i, c: c, led: led, timeout: 2 * time.Second, rnd: rand.New(rand.NewPCG(uint64(i), 2)), t: t}
		wg.Go(func() { w.run(&stop, onErr) })
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() })

	testkit.Poll(t, 30*time.Second, "300 acknowledged writes", func() bool { return led.acked.Load() >= 300 })
	killAt := time.Now()
	a.kill9(t)
	killed := time.Now()
	ackedAtKill := led.acked.Load()
	// The survivor carries the load.
	testkit.Poll(t, 30*time.Second, "400 writes acknowledged after the kill", func() bool { return led.acked.Load() >= ackedAtKill+400 })
	stop.Store(true)
	wg.Wait()

	// Only requests in flight at the kill failed: each writer has one
	// request in flight at a time, and none sent after the kill failed.
	const grace = 200 * time.Millisecond
	led.mu.Lock()
	failures := append([]failure(nil), led.failures...)
	settled := led.settledFires
	led.mu.Unlock()
	if len(failures) > writers {
		t.Errorf("%d failed requests; at most %d (one per writer) can be in flight at the kill", len(failures), writers)
	}
	for _, f := range failures {
		if f.start.After(killed.Add(grace)) {
			t.Errorf("%s sent %v after the kill failed: %v", f.op, f.start.Sub(killed), f.err)
		}
	}
	t.Logf("token-service kill -9: %d writes acknowledged (%d after the kill), %d requests failed %v (kill took %v); "+
		"%d timed-out fires had committed (settled by reading)",
		led.acked.Load(), led.acked.Load()-ackedAtKill, len(failures), kinds(failures), killed.Sub(killAt).Round(time.Millisecond), settled)

	// Restart the killed instance, then stop the survivor so that the
	// restarted one is the only responder: its first request must succeed.
	a2 := startProc(t, "token-service", "--nats", url, "--log-level", "info")
	a2.waitLine(t, `"serving"`, 30*time.Second)
	serving := time.Since(a2.started)
	b.terminate(t, 30*time.Second)
	probeStart := time.Now()
	ctx, cancel := context.WithTimeout(bg, 2*time.Second)
	defer cancel()
	led.mu.Lock()
	id := sortedKeys(led.tokens)[0]
	rec := led.tokens[id]
	led.mu.Unlock()
	nx := next[rec.place]
	tok, err := c.Fire(ctx, fireReq(id, nx.transition))
	if err != nil || tok.Revision != rec.rev+1 || tok.Place != nx.to {
		t.Fatalf("first request to the restarted token-service: %+v, %v", tok, err)
	}
	firstOK := time.Since(probeStart)
	created, err := c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: wf, Data: keyData("after-restart")})
	if err != nil {
		t.Fatalf("create on the restarted token-service: %v", err)
	}
	led.mu.Lock()
	rec.rev, rec.place = tok.Revision, tok.Place
	led.tokens[created.ID] = &tokenRec{id: created.ID, key: "after-restart", rev: 1, place: "a"}
	led.mu.Unlock()
	t.Logf("restarted token-service: serving %v after exec, first request (a fire) answered in %v, %v after exec",
		serving.Round(time.Millisecond), firstOK.Round(time.Millisecond), time.Since(a2.started).Round(time.Millisecond))

	unacked := led.verify(ctxFor(t, 60*time.Second), t, c, js)
	t.Logf("token-service kill -9: %d writes committed without an acknowledgement (%d fires settled by the writers, %d creates settled by listing)",
		settled+unacked, settled, unacked)
}
