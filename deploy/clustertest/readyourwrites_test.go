package clustertest

import (
	"context"
	"errors"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestClusterReadYourWritesAfterLeaderChange: invariant 3 (read-your-writes)
// on an R3 cluster after an ordinary leader change (a stepdown, as in a
// rolling restart; no data is lost). Every read right after an
// acknowledged change must see it.
//
// On a replicated stream any replica answers a direct get, including a
// follower that has not applied the last committed write yet: with direct
// gets, about one read in ten right after a write returned the previous
// state after a leader change. The services therefore read through the
// stream leader when replicas > 1 (shared/jsread); this test holds them to it.
func TestClusterReadYourWritesAfterLeaderChange(t *testing.T) {
	cl := startCluster(t, 3)
	st, _ := startStack(t, cl.urls(), 3)
	nc := cl.connect("test")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(nc)
	eventually(t, 30*time.Second, "create workflow", func(ctx context.Context) error {
		_, err := c.CreateWorkflow(ctx, cycle("ryw"))
		return err
	})
	testkit.Poll(t, 10*time.Second, "edge ready", func() bool { return httpStatus(readyURL(st)) == 200 })
	stream := subjects.StreamName("ryw")
	for _, s := range []string{stream, "KV_" + subjects.TokenIndexBucket} {
		old := streamInfo(t, js, s, 30*time.Second).Cluster.Leader
		eventually(t, 30*time.Second, "step down the leader of "+s, func(ctx context.Context) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+s, nil)
			return err
		})
		eventually(t, 30*time.Second, "new leader of "+s, func(ctx context.Context) error {
			if l := streamInfo(t, js, s, 10*time.Second).Cluster.Leader; l == old {
				return errors.New("still " + old)
			}
			return nil
		})
	}

	const tokens, fires = 20, 5
	stale, reads := 0, 0
	check := func(what string, id string, rev uint64) {
		t.Helper()
		ctx, cancel := opCtx()
		defer cancel()
		got, err := c.GetToken(ctx, id)
		reads++
		switch {
		case errors.Is(err, fail.ErrNotFound):
			stale++
			t.Logf("%s: token %s acknowledged at revision %d, read back: not found", what, id, rev)
		case err != nil:
			t.Fatalf("%s: read %s: %v", what, id, err)
		case got.Revision < rev:
			stale++
			t.Logf("%s: token %s acknowledged at revision %d, read back at %d", what, id, rev, got.Revision)
		}
	}
	spurious := 0 // pinned fires refused although the pin was the acknowledged revision
	for range tokens {
		ctx, cancel := opCtx()
		tok, err := c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: "ryw"})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		check("create", tok.ID, tok.Revision)
		for range fires {
			ctx, cancel := opCtx()
			next, err := c.Fire(ctx, &wire.FireRequest{TokenID: tok.ID, TransitionID: cycleFires[tok.Place], ExpectedRevision: tok.Revision})
			cancel()
			if errors.Is(err, fail.ErrNotFound) || errors.Is(err, fail.ErrConflict) {
				// The service read an older state than the one it acknowledged.
				spurious++
				t.Logf("fire on %s pinned to its acknowledged revision %d: %v", tok.ID, tok.Revision, err)
				continue
			}
			if err != nil {
				t.Fatalf("fire on %s at revision %d: %v", tok.ID, tok.Revision, err)
			}
			tok = next
			check("fire", tok.ID, tok.Revision)
		}
	}
	if stale > 0 || spurious > 0 {
		t.Fatalf("%d of %d reads right after an acknowledged change did not see it; "+
			"%d fires pinned to the acknowledged revision were refused", stale, reads, spurious)
	}
}
