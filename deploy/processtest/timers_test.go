package processtest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/services/event"
	"github.com/cbnats/circuitbreaker/services/workflow"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/natstest"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// escalating: every review escalates by itself after `after`.
func escalating(id, after string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{ID: id, Name: "escalating", Places: []string{"review", "escalated"}, InitialPlace: "review",
		Transitions: []flow.Transition{{ID: "escalate", FromPlaces: []string{"review"}, ToPlace: "escalated", After: after}}}
}

// createTimed creates n tokens of wf and returns their ids.
func createTimed(t *testing.T, c *client.Client, wf string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = testkit.Must(c.CreateToken(ctxFor(t, 10*time.Second), &wire.CreateTokenRequest{WorkflowID: wf})).ID
	}
	return ids
}

// checkFiredOnce waits until every token escalated, then checks each
// moved exactly once (revision 2, one timer_fired event).
func checkFiredOnce(t *testing.T, c *client.Client, js jetstream.JetStream, wf string, ids []string, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		page, err := c.TokensInPlace(ctx, wf, "escalated", wire.Page{First: 1000})
		cancel()
		if err == nil && len(page.Items) == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			for _, id := range ids {
				if tok, err := c.GetToken(ctxFor(t, 5*time.Second), id); err != nil || tok.Place != "escalated" {
					t.Logf("token %s: %+v, %v", id, tok, err)
					st := testkit.Must(js.Stream(ctxFor(t, 5*time.Second), subjects.StreamName(wf)))
					for _, subj := range []string{subjects.TimerSchedule(wf, id, "escalate", 1), subjects.TimerDue(wf, id, "escalate", 1)} {
						m, err := st.GetLastMsgForSubject(ctxFor(t, 5*time.Second), subj)
						if err != nil {
							t.Logf("  %s: %v", subj, err)
						} else {
							t.Logf("  %s: seq %d %v %s", subj, m.Sequence, m.Header, m.Data)
						}
					}
				}
			}
			if cons, err := js.Consumer(ctxFor(t, 5*time.Second), subjects.StreamName(wf), subjects.TimerConsumer); err == nil {
				info, err := cons.Info(ctxFor(t, 5*time.Second))
				t.Logf("timer consumer: %+v, %v", info, err)
			}
			t.Fatalf("not every timer fired within %v", within)
		}
	}
	time.Sleep(time.Second) // a duplicate would show by now
	fired := map[string]int{}
	for _, e := range streamEvents(ctxFor(t, 30*time.Second), t, js, wf) {
		if e.EventType == wire.EventTimerFired {
			fired[e.TokenID]++
		}
	}
	for _, id := range ids {
		tok := testkit.Must(c.GetToken(ctxFor(t, 5*time.Second), id))
		if tok.Place != "escalated" || tok.Revision != 2 || fired[id] != 1 {
			t.Fatalf("token %s: %s rev %d, %d timer_fired events; want escalated, rev 2, one fire", id, tok.Place, tok.Revision, fired[id])
		}
	}
}

// TestTimerTokenServiceKill9: two token-service processes consume the due
// timers of 200 tokens; one is killed with SIGKILL as they fall due (with
// due messages in flight) and restarted. Every timer fires exactly once:
// what the killed process had not acknowledged is delivered again and is
// either fired now or found already fired (stale).
func TestTimerTokenServiceKill9(t *testing.T) {
	ns := natstest.Server(t)
	url := ns.ClientURL()
	bg := context.Background()
	wi := testkit.Must(workflow.Start(bg, natstest.Connect(t, ns), rpc.ServiceOptions{Store: storeSettings(), Concurrency: 64, Log: zerolog.Nop()}))
	t.Cleanup(wi.Stop)
	ei := testkit.Must(event.Start(bg, natstest.Connect(t, ns), rpc.ServiceOptions{Store: storeSettings(), Concurrency: 64, Log: zerolog.Nop()}))
	t.Cleanup(ei.Stop)
	a, _ := tokenService(t, url), tokenService(t, url)
	nc := natstest.Connect(t, ns)
	c, js := client.New(nc), testkit.Must(jetstream.New(nc))
	const wf = "timer_kill"
	testkit.Must(c.CreateWorkflow(ctxFor(t, 10*time.Second), escalating(wf, "PT3S")))
	t0 := time.Now()
	ids := createTimed(t, c, wf, 200)
	time.Sleep(time.Until(t0.Add(3 * time.Second)))
	a.kill9(t)
	t.Logf("killed one token service %v after the first timer's due time", time.Since(t0.Add(3*time.Second)))
	tokenService(t, url)
	checkFiredOnce(t, c, js, wf, ids, 60*time.Second)
}

// TestTimerEverythingKill9: the one-process command (NATS, services,
// edge) is killed with SIGKILL while 100 timers fall due, then restarted
// on its data: every timer fires exactly once.
func TestTimerEverythingKill9(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	p, url := circuitBreaker(t, dir, port)
	nc := connectURL(t, url)
	c := client.New(nc)
	const wf = "timer_kill_all"
	testkit.Must(c.CreateWorkflow(ctxFor(t, 10*time.Second), escalating(wf, "PT2S")))
	t0 := time.Now()
	ids := createTimed(t, c, wf, 100)
	time.Sleep(time.Until(t0.Add(2*time.Second + 100*time.Millisecond)))
	p.kill9(t)
	nc.Close()
	t.Logf("killed everything %v after the first timer's due time", time.Since(t0.Add(2*time.Second)))
	_, url = circuitBreaker(t, dir, port)
	nc = connectURL(t, url)
	checkFiredOnce(t, client.New(nc), testkit.Must(jetstream.New(nc)), wf, ids, 60*time.Second)
}

func connectURL(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
