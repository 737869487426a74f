package systemtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/services/token"
	"github.com/cbnats/circuitbreaker/services/workflow"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/config"
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

// TestWriterGoneIsServedHere: when the instance that writes a workflow
// stops, the other serves its writes at once (no responders on the
// writer's subjects), without errors. (b starts after a, so b knows a;
// with eight workflows, a writes some of them in b's view but for a chance
// of 1 in 256.)
func TestWriterGoneIsServedHere(t *testing.T) {
	ns := natstest.Server(t)
	reg := metrics.NewRegistry()
	opts := rpc.ServiceOptions{Store: defaultStore(), Concurrency: 64, Log: zerolog.Nop(), Metrics: reg}
	routed(&opts.Store)
	bg := context.Background()
	wi := testkit.Must(workflow.Start(bg, natstest.Connect(t, ns), opts))
	t.Cleanup(wi.Stop)
	aConn := natstest.Connect(t, ns)
	a := testkit.Must(token.Start(bg, aConn, opts))
	b := testkit.Must(token.Start(bg, natstest.Connect(t, ns), opts))
	t.Cleanup(b.Stop)
	c, cx := client.New(natstest.Connect(t, ns)), ctx(t)

	// Eight workflows: each instance writes about half of them.
	var toks []string
	for i := range 8 {
		wf := testkit.Must(c.CreateWorkflow(cx, race(fmt.Sprint("gone", i))))
		toks = append(toks, testkit.Must(c.CreateToken(cx, &wire.CreateTokenRequest{WorkflowID: wf.ID})).ID)
	}
	testkit.Poll(t, 10*time.Second, "a write passed on to the other instance", func() bool {
		for _, id := range toks {
			testkit.Must(c.Fire(cx, &wire.FireRequest{TokenID: id, TransitionID: "tick"}))
		}
		return counter(t, reg, "cb_token_writes_forwarded_total", "") > 0
	})
	a.Stop()
	clients := ns.NumClients()
	aConn.Close() // as the process exits
	testkit.Poll(t, 5*time.Second, "the server to see the instance gone", func() bool { return ns.NumClients() < clients })
	for round := range 3 {
		for _, id := range toks {
			fc, cancel := context.WithTimeout(cx, 2*time.Second)
			_, err := c.Fire(fc, &wire.FireRequest{TokenID: id, TransitionID: "tick"})
			cancel()
			if err != nil {
				t.Fatalf("round %d, token %s: %v", round, id, err)
			}
		}
	}
}

// TestWriterStopsUnderLoad: one of two token services stops gracefully
// while writes run. A request is either served or refused unworked at
// once (it landed on the stopping instance: safe to send again); none
// times out, none fails after the stop, and every served fire counts once.
func TestWriterStopsUnderLoad(t *testing.T) {
	ns := natstest.Server(t)
	reg := metrics.NewRegistry()
	opts := rpc.ServiceOptions{Store: defaultStore(), Concurrency: 64, Log: zerolog.Nop(), Metrics: reg}
	routed(&opts.Store)
	bg := context.Background()
	wi := testkit.Must(workflow.Start(bg, natstest.Connect(t, ns), opts))
	t.Cleanup(wi.Stop)
	a := testkit.Must(token.Start(bg, natstest.Connect(t, ns), opts))
	b := testkit.Must(token.Start(bg, natstest.Connect(t, ns), opts))
	t.Cleanup(b.Stop)
	c, cx := client.New(natstest.Connect(t, ns)), ctx(t)

	const writers = 8
	toks := make([]string, writers)
	for i := range toks {
		wf := fmt.Sprint("stop", i%4)
		if i < 4 {
			testkit.Must(c.CreateWorkflow(cx, race(wf)))
		}
		toks[i] = testkit.Must(c.CreateToken(cx, &wire.CreateTokenRequest{WorkflowID: wf})).ID
	}
	testkit.Poll(t, 10*time.Second, "a write passed on to the other instance", func() bool {
		for _, id := range toks {
			testkit.Must(c.Fire(cx, &wire.FireRequest{TokenID: id, TransitionID: "tick"}))
		}
		return counter(t, reg, "cb_token_writes_forwarded_total", "") > 0
	})
	base := make([]uint64, writers)
	for i, id := range toks {
		base[i] = testkit.Must(c.GetToken(cx, id)).Revision
	}

	var stopped, done atomic.Bool
	served := make([]uint64, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				fc, cancel := context.WithTimeout(cx, 2*time.Second)
				_, err := c.Fire(fc, &wire.FireRequest{TokenID: toks[i], TransitionID: "tick"})
				cancel()
				switch {
				case err == nil:
					served[i]++
				case stopped.Load():
					t.Errorf("writer %d after the stop: %v", i, err)
					return
				case !rpc.NotServed(err):
					t.Errorf("writer %d during the stop: %v (want served, or refused unworked)", i, err)
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	a.Stop()
	stopped.Store(true)
	time.Sleep(500 * time.Millisecond)
	done.Store(true)
	wg.Wait()
	for i, id := range toks {
		if got := testkit.Must(c.GetToken(cx, id)).Revision; got != base[i]+served[i] {
			t.Errorf("token %d: revision %d, want %d + %d served fires", i, got, base[i], served[i])
		}
	}
}
