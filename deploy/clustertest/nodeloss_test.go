package clustertest

import (
	"context"
	"fmt"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Bounds of the node loss test.
const (
	warmUp      = 2 * time.Second  // load before the kill
	maxOutage   = 15 * time.Second // longest acceptable write outage
	afterwards  = time.Second      // load kept running once writes recovered
	catchUpTime = 60 * time.Second // for the restarted node's replicas
)

// TestClusterNodeLoss: a 3-node cluster with R3 streams and buckets loses
// the leader of a busy workflow's stream under write load. Every
// acknowledged write survives, tokens and events agree, no token is live
// in two places, writes recover within maxOutage, and the node, started
// again on its store, catches up.
func TestClusterNodeLoss(t *testing.T) {
	cl := startCluster(t, 3)
	st, comps := startStack(t, cl.urls(), 3)
	nc := cl.connect("test")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(nc)

	const busy, other = "busy", "other"
	for _, wf := range []string{busy, other} {
		eventually(t, 30*time.Second, "create workflow "+wf, func(ctx context.Context) error {
			_, err := c.CreateWorkflow(ctx, cycle(wf))
			return err
		})
		streamInfo(t, js, subjects.StreamName(wf), 30*time.Second)
	}
	testkit.Poll(t, 10*time.Second, "edge ready", func() bool { return httpStatus(readyURL(st)) == 200 })

	// Load: three writers on the busy workflow, one on the other.
	ld := newLoad(t, c)
	t0 := time.Now()
	ld.run(busy, 3)
	ld.run(other, 1)
	testkit.Poll(t, 30*time.Second, "warm-up writes", func() bool {
		return time.Since(t0) > warmUp && ld.okCount(busy, t0) >= 20
	})

	// Kill the leader of the busy stream.
	info := streamInfo(t, js, subjects.StreamName(busy), 10*time.Second)
	victim := cl.index(info.Cluster.Leader)
	t.Logf("killing %s, leader of %s (meta, index and other streams may lead elsewhere)", info.Cluster.Leader, info.Config.Name)
	t.Logf("connected: %s test@%s", comps.where(), nc.ConnectedServerName())
	killAt := time.Now()
	cl.stop(victim)
	down := time.Now()
	t.Logf("node shut down in %v", down.Sub(killAt).Round(time.Millisecond))

	// Writes must come back; keep loading a moment.
	var recovered time.Time
	testkit.Poll(t, 30*time.Second, "writes on both workflows after the kill", func() bool {
		if recovered.IsZero() && ld.okCount(busy, down) > 0 {
			recovered = time.Now()
		}
		return !recovered.IsZero() && time.Since(recovered) > afterwards &&
			ld.okCount(busy, down) >= 10 && ld.okCount(other, down) >= 3
	})
	ld.halt()
	ld.report()
	ld.timeline(killAt)
	gap, longest, at, err := ld.outage(busy, killAt)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := ld.recovery(busy, killAt, 10)
	t.Logf("failover on %s: %v from the last write answered before the kill to the first answered write sent after it; "+
		"longest pause between answered writes %v (from %v after the kill); 10 writes answered %v after the kill",
		busy, gap.Round(time.Millisecond), longest.Round(time.Millisecond), at.Sub(killAt).Round(time.Millisecond),
		rec.Round(time.Millisecond))
	if gap > maxOutage || longest > maxOutage || rec > maxOutage {
		t.Errorf("writes on %s stopped: gap %v, longest pause %v, 10 writes after %v; want each under %v",
			busy, gap, longest, rec, maxOutage)
	}
	before, after := ld.staleBefore(killAt)
	if before+after > 0 {
		t.Errorf("stale read-backs: %d before the kill, %d after (reads go through the stream leader when replicated)", before, after)
	}

	// The survivors hold every acknowledged write, consistently.
	for _, wf := range []string{busy, other} {
		verify(t, c, js, wf, ld.tokens)
	}

	// The node comes back on its store and catches up.
	restartAt := time.Now()
	cl.start(victim)
	for _, stream := range []string{subjects.StreamName(busy), subjects.StreamName(other),
		"KV_" + subjects.TokenIndexBucket, "KV_" + subjects.CatalogBucket} {
		info := waitCurrent(t, js, stream, cl.names(), catchUpTime)
		t.Logf("%s: all 3 replicas current %v after the restart (leader %s, %d messages, last seq %d)",
			stream, time.Since(restartAt).Round(time.Millisecond), info.Cluster.Leader, info.State.Msgs, info.State.LastSeq)
		// The restarted node's own copy holds what the leader holds (no
		// writes run now, so the two must be equal).
		rs := replicaState(t, cl.nodes[victim].srv, stream)
		if rs.LastSeq != info.State.LastSeq || rs.Msgs != info.State.Msgs || rs.FirstSeq != info.State.FirstSeq {
			t.Errorf("%s on %s: seqs %d..%d, %d messages; the leader has %d..%d, %d messages", stream, cl.nodes[victim].name,
				rs.FirstSeq, rs.LastSeq, rs.Msgs, info.State.FirstSeq, info.State.LastSeq, info.State.Msgs)
		}
	}

	// With the whole cluster back, writes go on where they stopped.
	n := 0
	for id, a := range ld.tokens {
		if n++; n > 5 {
			break
		}
		ctx, cancel := opCtx()
		cur, err := c.GetToken(ctx, id)
		if err == nil {
			_, err = c.Fire(ctx, &wire.FireRequest{TokenID: id, TransitionID: cycleFires[cur.Place], ExpectedRevision: cur.Revision})
		}
		cancel()
		if err != nil {
			t.Errorf("fire on %s (%s) after the restart: %v", id, a.wf, err)
		}
	}
}

// verify checks a workflow after the failure against what was acknowledged:
//   - every acknowledged token exists at its acknowledged revision or later,
//     in the place the cycle puts it at that revision;
//   - each token has exactly one event per revision, revisions 1..N in stream
//     order, the last one stamped with the token's state sequence;
//   - the tokens with events are exactly the tokens listed;
//   - tokensInPlace lists each token once, in its place.
func verify(t *testing.T, c *client.Client, js jetstream.JetStream, wf string, all map[string]acked) {
	t.Helper()
	// Reads are direct gets that any live replica may answer: wait until the
	// live followers are current, so the checks read settled data.
	eventually(t, 30*time.Second, "followers of "+wf+" current", func(ctx context.Context) error {
		st, err := js.Stream(ctx, subjects.StreamName(wf))
		if err != nil {
			return err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		return followersCurrent(info)
	})

	tokens := map[string]*flow.Token{}
	eventually(t, 30*time.Second, "list tokens of "+wf, func(context.Context) error {
		clear(tokens)
		for after := ""; ; {
			ctx, cancel := opCtx()
			p, err := c.ListTokens(ctx, wf, wire.Page{First: 1000, After: after})
			cancel()
			if err != nil {
				return err
			}
			for _, tk := range p.Items {
				if tokens[tk.ID] != nil {
					return fmt.Errorf("token %s listed twice", tk.ID)
				}
				tokens[tk.ID] = tk
			}
			if after = p.Next; after == "" {
				return nil
			}
		}
	})

	for id, a := range all {
		if a.wf != wf {
			continue
		}
		tk := tokens[id]
		switch {
		case tk == nil:
			t.Errorf("%s: token %s acknowledged at revision %d is gone", wf, id, a.rev)
		case tk.Revision < a.rev:
			t.Errorf("%s: token %s acknowledged at revision %d is at revision %d", wf, id, a.rev, tk.Revision)
		case tk.Revision == a.rev && tk.Place != a.place:
			t.Errorf("%s: token %s acknowledged in %s is in %s at the same revision", wf, id, a.place, tk.Place)
		}
	}
	beyond := 0
	for id, tk := range tokens {
		if tk.Place != placeAt(tk.Revision) || tk.Records != int(tk.Revision) {
			t.Errorf("%s: token %s at revision %d is in %s with %d transition records", wf, id, tk.Revision, tk.Place, tk.Records)
		}
		if a, ok := all[id]; !ok {
			t.Errorf("%s: token %s (revision %d) was never acknowledged", wf, id, tk.Revision)
		} else if tk.Revision > a.rev {
			beyond++ // a write whose answer was lost, committed after all
		}
	}

	var evs []wire.Event
	eventually(t, 30*time.Second, "events of "+wf, func(ctx context.Context) error {
		var err error
		evs, err = testkit.Events(ctx, js, wf)
		return err
	})
	perToken := map[string][]wire.Event{}
	for _, e := range evs {
		if e.EventType == wire.EventWorkflowCreated {
			continue
		}
		perToken[e.TokenID] = append(perToken[e.TokenID], e)
	}
	for id, es := range perToken {
		tk := tokens[id]
		if tk == nil {
			t.Errorf("%s: %d events for token %s, which does not exist", wf, len(es), id)
			continue
		}
		if uint64(len(es)) != tk.Revision {
			t.Errorf("%s: token %s at revision %d has %d events", wf, id, tk.Revision, len(es))
		}
		for i, e := range es {
			rev := uint64(i + 1)
			want := wire.EventTokenTransitioned
			if rev == 1 {
				want = wire.EventTokenCreated
			}
			if e.Revision != rev || e.EventType != want {
				t.Errorf("%s: token %s event %d is %s at revision %d, want %s at %d", wf, id, i, e.EventType, e.Revision, want, rev)
				break
			}
			if rev > 1 && (e.FromPlace != placeAt(rev-1) || e.ToPlace != placeAt(rev)) {
				t.Errorf("%s: token %s event %d moves %s→%s", wf, id, i, e.FromPlace, e.ToPlace)
			}
		}
		if last := es[len(es)-1]; last.NatsSequence != tk.NatsSequence {
			t.Errorf("%s: token %s state at seq %d, its last event says %d", wf, id, tk.NatsSequence, last.NatsSequence)
		}
	}
	for id := range tokens {
		if perToken[id] == nil {
			t.Errorf("%s: token %s has no events", wf, id)
		}
	}

	listed := map[string]string{}
	for _, place := range cyclePlaces {
		eventually(t, 30*time.Second, "tokens in "+wf+"/"+place, func(context.Context) error {
			for id, p := range listed {
				if p == place {
					delete(listed, id)
				}
			}
			for after := ""; ; {
				ctx, cancel := opCtx()
				p, err := c.TokensInPlace(ctx, wf, place, wire.Page{First: 1000, After: after})
				cancel()
				if err != nil {
					return err
				}
				for _, tk := range p.Items {
					if prev, ok := listed[tk.ID]; ok {
						return fmt.Errorf("token %s listed in %s and in %s", tk.ID, prev, place)
					}
					listed[tk.ID] = place
				}
				if after = p.Next; after == "" {
					return nil
				}
			}
		})
	}
	for id, tk := range tokens {
		if listed[id] != tk.Place {
			t.Errorf("%s: token %s is in %s but tokensInPlace lists it in %q", wf, id, tk.Place, listed[id])
		}
	}
	if len(listed) != len(tokens) {
		t.Errorf("%s: %d tokens in places, %d tokens", wf, len(listed), len(tokens))
	}
	t.Logf("%s: %d tokens, %d events, all consistent; %d tokens hold a write whose answer was lost", wf, len(tokens), len(evs), beyond)
}

// replicaState is the state of the replica of stream that srv holds, from
// the server's own monitoring (not from the stream leader).
func replicaState(t *testing.T, srv *server.Server, stream string) server.StreamState {
	t.Helper()
	jsz, err := srv.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, acc := range jsz.AccountDetails {
		for _, sd := range acc.Streams {
			if sd.Name == stream {
				return sd.State
			}
		}
	}
	t.Fatalf("%s holds no replica of %s", srv.Name(), stream)
	return server.StreamState{}
}
