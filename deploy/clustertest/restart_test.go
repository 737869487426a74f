package clustertest

import (
	"context"
	"fmt"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/embedded"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestNATSRestart: the single NATS server under a running stack goes away
// and comes back on the same port and store. While it is down /ready says
// 503; once it is back the same service instances serve again, without a
// restart, and what was written before is still there.
func TestNATSRestart(t *testing.T) {
	dir := t.TempDir()
	port := freePorts(t, 1)[0]
	startNATS := func() *server.Server {
		t.Helper()
		ns, err := embedded.Start(embedded.Options{DataDir: dir, Port: port})
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	ns := startNATS()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() }) // whichever ns is current
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	st, _ := startStack(t, url, 1)
	nc, err := dial(url, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c := client.New(nc)
	ready := readyURL(st)

	// Some state before the outage.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.CreateWorkflow(ctx, cycle("restart")); err != nil {
		t.Fatal(err)
	}
	var before []*flow.Token
	for range 5 {
		tok, err := c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: "restart", Data: []byte(`{"n":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		if tok, err = c.Fire(ctx, &wire.FireRequest{TokenID: tok.ID, TransitionID: "ab"}); err != nil {
			t.Fatal(err)
		}
		before = append(before, tok)
	}
	if s := httpStatus(ready); s != 200 {
		t.Fatalf("/ready = %d before the outage, want 200", s)
	}

	// The server goes away: /ready must say so.
	ns.Shutdown()
	ns.WaitForShutdown()
	down := time.Now()
	testkit.Poll(t, 15*time.Second, "/ready 503 while NATS is down", func() bool { return httpStatus(ready) == 503 })
	t.Logf("/ready said 503 %v after the server went down", time.Since(down).Round(time.Millisecond))
	if nc.IsConnected() {
		t.Fatal("test client still connected to a stopped server")
	}
	// A call meanwhile fails by its deadline with a retryable kind.
	short, cancelShort := context.WithTimeout(context.Background(), time.Second)
	_, err = c.GetToken(short, before[0].ID)
	cancelShort()
	if k := fail.KindOf(err); err == nil || (k != fail.Unavailable && k != fail.Timeout) {
		t.Fatalf("read while NATS is down: %v (kind %v), want UNAVAILABLE or TIMEOUT", err, k)
	}

	// The server comes back on the same port and store.
	ns = startNATS()
	back := time.Now()
	testkit.Poll(t, 30*time.Second, "/ready 200 after NATS is back", func() bool { return httpStatus(ready) == 200 })
	t.Logf("/ready said 200 %v after the server came back", time.Since(back).Round(time.Millisecond))

	// The same services serve again: the first write may race the
	// reconnection, so give it a few tries with a per-attempt deadline.
	var fresh *flow.Token
	eventually(t, 20*time.Second, "create a token after the restart", func(ctx context.Context) error {
		var err error
		fresh, err = c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: "restart", IdempotencyKey: "after-restart"})
		return err
	})
	t.Logf("first write served %v after the server came back", time.Since(back).Round(time.Millisecond))
	for _, tok := range append(before, fresh) {
		got, err := c.GetToken(ctx, tok.ID)
		if err != nil {
			t.Fatalf("token %s after the restart: %v", tok.ID, err)
		}
		if got.Revision != tok.Revision || got.Place != tok.Place || got.NatsSequence != tok.NatsSequence {
			t.Fatalf("token %s after the restart: rev %d in %s at seq %d, want rev %d in %s at seq %d", tok.ID,
				got.Revision, got.Place, got.NatsSequence, tok.Revision, tok.Place, tok.NatsSequence)
		}
		next, err := c.Fire(ctx, &wire.FireRequest{TokenID: tok.ID, TransitionID: cycleFires[got.Place], ExpectedRevision: got.Revision})
		if err != nil {
			t.Fatalf("fire on %s after the restart: %v", tok.ID, err)
		}
		if next.Revision != got.Revision+1 || next.Place != placeAt(next.Revision) {
			t.Fatalf("fire on %s after the restart: rev %d in %s", tok.ID, next.Revision, next.Place)
		}
	}
	in := map[string][]*flow.Token{}
	for _, place := range cyclePlaces {
		p, err := c.TokensInPlace(ctx, "restart", place, wire.Page{})
		if err != nil {
			t.Fatal(err)
		}
		in[place] = p.Items
	}
	if len(in["b"]) != 1 || len(in["c"]) != 5 || len(in["a"]) != 0 {
		t.Fatalf("tokens in a, b, c after the restart: %d, %d, %d; want 0, 1, 5", len(in["a"]), len(in["b"]), len(in["c"]))
	}
	h, err := c.History(ctx, &wire.HistoryRequest{WorkflowID: "restart"})
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + 5*3 + 2; len(h.Items) != want { // definition, 5×(create, ab, bc), fresh (create, ab)
		t.Fatalf("%d events after the restart, want %d", len(h.Items), want)
	}
}
