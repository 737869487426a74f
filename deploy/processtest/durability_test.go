package processtest

import (
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/client"
)

// TestKill9SyncAlways runs the one-process command with --sync-always, puts
// a write load on it over NATS (creates and fires from several goroutines,
// recording every acknowledged write), kills it with SIGKILL in the middle
// of the load, restarts it on the same data directory and checks that no
// acknowledged write was lost, that every token's events match its
// revision, and that no token is live in two places. Writes whose outcome
// the client did not learn (a timeout at the kill) are settled by reading.
// It kills and restarts three times on the same data.
//
// Known intermittent failure (rare on an idle machine, a few per cent of
// runs under CPU contention): after a kill a token is "live in two
// places". The dump shows a place subject holding both an old state and,
// after it, the tombstone whose Nats-Rollup: sub should have purged that
// state: the rollup's purge did not survive the kill, while the batch did.
// Reads by id (last message) are right; scans (list, tokens in a place)
// return the resurrected state.
func TestKill9SyncAlways(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	cb, url := circuitBreaker(t, dir, port, "--sync-always")
	const (
		wf      = "durable"
		rounds  = 3
		writers = 6
		perKill = 600 // acknowledged writes between restart and kill
	)
	led := newLedger(wf)
	unackedTotal := 0
	for round := range rounds {
		nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		c := client.New(nc)
		if round == 0 {
			testkit.Must(c.CreateWorkflow(ctxFor(t, 10*time.Second), cycle(wf)))
		} else {
			unackedTotal += settleAfterRestart(t, c, nc, led, round, writers)
		}
		load(t, c, cb, led, round, writers, perKill)
		// Drop the connection with anything it buffered while disconnected,
		// so no request of the old load reaches the restarted server.
		nc.Close()
		t0 := time.Now()
		cb, _ = circuitBreaker(t, dir, port, "--sync-always")
		t.Logf("round %d: restart after kill -9 took %v", round, time.Since(t0).Round(time.Millisecond))
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := client.New(nc)
	unackedTotal += settleAfterRestart(t, c, nc, led, rounds, writers)
	t.Logf("sync always, %d kills: %d writes acknowledged, %d tokens, %d writes committed but unacknowledged in all",
		rounds, led.acked.Load(), len(led.tokens), unackedTotal)

	// The restarted system takes writes.
	ctx := ctxFor(t, 30*time.Second)
	for _, id := range sortedKeys(led.tokens)[:5] {
		rec := led.tokens[id]
		nx := next[rec.place]
		tok, err := c.Fire(ctx, fireReq(id, nx.transition))
		if err != nil || tok.Revision != rec.rev+1 || tok.Place != nx.to {
			t.Fatalf("fire after restart on %s: %+v, %v", id, tok, err)
		}
	}
}

// load runs writers against the system until perKill more writes are
// acknowledged, kills the process with SIGKILL and waits until every writer
// has stopped at its first failed request.
func load(t *testing.T, c *client.Client, cb *proc, led *ledger, round, writers int, perKill int64) {
	t.Helper()
	var (
		stop   atomic.Bool
		killed atomic.Bool
		wg     sync.WaitGroup
	)
	// A writer stops at its first failure: after the kill every request
	// fails, and each writer then has exactly one write of unknown outcome.
	onErr := func(w *writer, op string, _ *tokenRec, err error) bool {
		if !killed.Load() {
			t.Errorf("writer %d: %s failed before the kill: %v", w.id, op, err)
		} else if !typed(err) {
			t.Errorf("writer %d: %s failed with an untyped error: %v", w.id, op, err)
		}
		return false
	}
	for i := range writers {
		id := round*100 + i
		w := &writer{id: id, c: c, led: led, timeout: 2 * time.Second, rnd: rand.New(rand.NewPCG(uint64(id), 1)), t: t}
		wg.Go(func() { w.run(&stop, onErr) })
	}
	defer func() { stop.Store(true); wg.Wait() }()
	// Kill mid-load, at whatever moment the count is reached.
	target := led.acked.Load() + perKill
	testkit.Poll(t, 30*time.Second, "acknowledged writes", func() bool { return led.acked.Load() >= target })
	killed.Store(true)
	cb.kill9(t)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("writers still running 15 s after the kill")
	}
}

// settleAfterRestart checks the restarted system against the ledger (see
// ledger.verify), settling the writes of unknown outcome, and reports them.
func settleAfterRestart(t *testing.T, c *client.Client, nc *nats.Conn, led *ledger, round, writers int) int {
	t.Helper()
	led.mu.Lock()
	failures, pendingCreates, pendingFires := len(led.failures), len(led.pendingCreates), 0
	for _, rec := range led.tokens {
		if rec.pendingRev != 0 {
			pendingFires++
		}
	}
	round0 := led.failures[:0:0]
	if failures >= writers {
		round0 = led.failures[failures-writers:]
	}
	led.mu.Unlock()
	if failures != round*writers {
		t.Errorf("after %d kills: %d failed requests, want one per writer per kill (%d)", round, failures, round*writers)
	}
	unacked := led.verify(ctxFor(t, 60*time.Second), t, c, testkit.Must(jetstream.New(nc)))
	t.Logf("kill %d: %d writes acknowledged so far, %d requests without an answer (%d creates, %d fires, errors %v): "+
		"%d committed but unacknowledged (settled by reading)",
		round, led.acked.Load(), writers, pendingCreates, pendingFires, kinds(round0), unacked)
	return unacked
}
