package systemtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/services/token"
	"github.com/cbnats/circuitbreaker/services/workflow"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/natstest"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

func routed(s *config.Store) { s.RouteWrites = true }

// counter sums a counter's series whose labels contain match.
func counter(t testing.TB, reg *metrics.Registry, name, match string) int64 {
	t.Helper()
	var b bytes.Buffer
	testkit.Must(reg.WriteTo(&b))
	var sum int64
	for sc := bufio.NewScanner(&b); sc.Scan(); {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || !strings.Contains(line, match) {
			continue
		}
		f := strings.Fields(line)
		n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += n
	}
	return sum
}

// TestWritesRouteToOneInstance: with two token services, every write to a
// workflow is committed by one of them, so concurrent writers never make
// the instances invalidate each other's batches (without routing, this
// load fails dozens of batches on the stream's pinned sequence).
func TestWritesRouteToOneInstance(t *testing.T) {
	s, c := startWith(t, "", routed), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, race("routed")))
	forwarded := func() int64 { return counter(t, s.metrics, "cb_token_writes_forwarded_total", "") }
	testkit.Poll(t, 10*time.Second, "the instances to find each other", func() bool {
		testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
		return forwarded() > 0
	})
	conflicts, before := counter(t, s.metrics, "cb_jetstream_batches_total", `outcome="conflict"`), forwarded()

	const writers, fires = 16, 25
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID})
			for i := 0; err == nil && i < fires; i++ {
				_, err = s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "tick"})
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := counter(t, s.metrics, "cb_jetstream_batches_total", `outcome="conflict"`) - conflicts; n != 0 {
		t.Errorf("%d batches failed on a conflict; routed writes should never contend", n)
	}
	// Requests land on either instance: about half are passed on.
	if n := forwarded() - before; n < writers*fires/5 {
		t.Errorf("%d of %d writes passed on to the writer", n, writers*(fires+1))
	}
}

// pair is a workflow service and two token services, a and b, routing
// writes, on one server; b starts after a, so b knows a at once.
type pair struct {
	ns    *server.Server
	reg   *metrics.Registry
	opts  rpc.ServiceOptions
	a     *rpc.Instance
	aConn *nats.Conn
	c     *client.Client
}

func startPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{ns: natstest.Server(t), reg: metrics.NewRegistry()}
	p.opts = rpc.ServiceOptions{Store: defaultStore(), Concurrency: 64, Log: zerolog.Nop(), Metrics: p.reg}
	routed(&p.opts.Store)
	wi := testkit.Must(workflow.Start(context.Background(), natstest.Connect(t, p.ns), p.opts))
	t.Cleanup(wi.Stop)
	p.aConn = natstest.Connect(t, p.ns)
	p.a = testkit.Must(token.Start(context.Background(), p.aConn, p.opts))
	b := p.startToken(t)
	t.Cleanup(b.Stop)
	p.c = client.New(natstest.Connect(t, p.ns))
	return p
}

// startToken starts another token service on the pair's server.
func (p *pair) startToken(t *testing.T) *rpc.Instance {
	return testkit.Must(token.Start(context.Background(), natstest.Connect(t, p.ns), p.opts))
}

// tokens creates one token in each of the workflows, creating those first.
func (p *pair) tokens(t *testing.T, cx context.Context, workflows ...string) []string {
	var out []string
	for _, wf := range workflows {
		if _, err := p.c.CreateWorkflow(cx, race(wf)); err != nil && !errors.Is(err, fail.ErrConflict) {
			t.Fatal(err)
		}
		out = append(out, testkit.Must(p.c.CreateToken(cx, &wire.CreateTokenRequest{WorkflowID: wf})).ID)
	}
	return out
}

// waitForwarded fires every token until a write has been passed on: the
// instances have found each other.
func (p *pair) waitForwarded(t *testing.T, cx context.Context, toks []string) {
	testkit.Poll(t, 10*time.Second, "a write passed on to the other instance", func() bool {
		for _, id := range toks {
			testkit.Must(p.c.Fire(cx, &wire.FireRequest{TokenID: id, TransitionID: "tick"}))
		}
		return counter(t, p.reg, "cb_token_writes_forwarded_total", "") > 0
	})
}

// TestWriterGoneIsServedHere: when the instance that writes a workflow
// stops, the other serves its writes at once (no responders on the
// writer's subjects), without errors. (With eight workflows, a writes some
// of them in b's view but for a chance of 1 in 256.)
func TestWriterGoneIsServedHere(t *testing.T) {
	p, cx := startPair(t), ctx(t)
	var wfs []string
	for i := range 8 {
		wfs = append(wfs, fmt.Sprint("gone", i))
	}
	toks := p.tokens(t, cx, wfs...)
	p.waitForwarded(t, cx, toks)
	p.a.Stop()
	clients := p.ns.NumClients()
	p.aConn.Close() // as the process exits
	testkit.Poll(t, 5*time.Second, "the server to see the instance gone", func() bool { return p.ns.NumClients() < clients })
	for round := range 3 {
		for _, id := range toks {
			fc, cancel := context.WithTimeout(cx, 2*time.Second)
			_, err := p.c.Fire(fc, &wire.FireRequest{TokenID: id, TransitionID: "tick"})
			cancel()
			if err != nil {
				t.Fatalf("round %d, token %s: %v", round, id, err)
			}
		}
	}
}

// TestWriterStopsUnderLoad: one of two token services stops gracefully
// while writes run, and no client sees it: a request that lands on the
// stopping instance is refused unworked and sent again by the client (to
// the other), a write passed on to it is served where it landed, nothing
// times out, and every fire counts once.
func TestWriterStopsUnderLoad(t *testing.T) {
	p, cx := startPair(t), ctx(t)
	toks := p.tokens(t, cx, "stop0", "stop1", "stop2", "stop3", "stop0", "stop1", "stop2", "stop3")
	p.waitForwarded(t, cx, toks)
	p.underLoad(t, cx, toks, func() {
		time.Sleep(300 * time.Millisecond)
		p.a.Stop()
		time.Sleep(500 * time.Millisecond)
	})
}

// TestRollingRestartUnderLoad: three token services, restarted one after
// another (stop, start a new one) while 16 clients fire. Writers move as
// instances come and go; no client sees an error and every token's
// revision counts exactly the fires acknowledged.
func TestRollingRestartUnderLoad(t *testing.T) {
	p, cx := startPair(t), ctx(t)
	insts := []*rpc.Instance{p.a, p.startToken(t)}
	t.Cleanup(func() {
		for _, in := range insts {
			in.Stop()
		}
	})
	var wfs []string
	for i := range 16 {
		wfs = append(wfs, fmt.Sprint("rolling", i%4))
	}
	toks := p.tokens(t, cx, wfs...)
	p.underLoad(t, cx, toks, func() {
		for round := range 6 {
			time.Sleep(300 * time.Millisecond)
			k := round % len(insts)
			insts[k].Stop()
			insts[k] = p.startToken(t)
		}
	})
}

// underLoad fires every token in a loop, one client per token, while
// during runs; no fire may fail, and each token's revision must count
// exactly the fires acknowledged.
func (p *pair) underLoad(t *testing.T, cx context.Context, toks []string, during func()) {
	t.Helper()
	base := make([]uint64, len(toks))
	for i, id := range toks {
		base[i] = testkit.Must(p.c.GetToken(cx, id)).Revision
	}
	var done atomic.Bool
	served := make([]uint64, len(toks))
	var wg sync.WaitGroup
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				fc, cancel := context.WithTimeout(cx, 10*time.Second) // an instance's stop under -race on a busy machine takes seconds
				_, err := p.c.Fire(fc, &wire.FireRequest{TokenID: toks[i], TransitionID: "tick"})
				cancel()
				if err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
				served[i]++
			}
		}()
	}
	during()
	done.Store(true)
	wg.Wait()
	for i, id := range toks {
		if got := testkit.Must(p.c.GetToken(cx, id)).Revision; got != base[i]+served[i] {
			t.Errorf("token %d: revision %d, want %d + %d acknowledged fires", i, got, base[i], served[i])
		}
	}
}
