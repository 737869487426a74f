package processtest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestMigrationKill9: the token service is killed with SIGKILL in the
// middle of a migration; a new one finishes it when the migration is sent
// again. Every token ends on the new version, moved exactly once: one
// migrate record, one token_migrated event, one revision more.
func TestMigrationKill9(t *testing.T) {
	url, first, c, js := killableTokenService(t)
	cx := ctxFor(t, 3*time.Minute)
	const wf = "kill9mig"
	testkit.Must(c.CreateWorkflow(cx, cycle(wf)))
	v2 := cycle(wf)
	v2.Places = []string{"a", "b", "d"}
	v2.Transitions = []flow.Transition{{ID: "ab", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "bd", FromPlaces: []string{"b"}, ToPlace: "d"}}
	testkit.Must(c.UpdateWorkflow(cx, &wire.UpdateWorkflowRequest{CreateWorkflowRequest: *v2, ExpectedVersion: 1}))
	total := createTokens(cx, c, &wire.CreateTokenRequest{WorkflowID: wf, WorkflowVersion: 1}, 3000, 16)
	req := &wire.MigrateRequest{WorkflowID: wf, FromVersion: 1, ToVersion: 2, PlaceMapping: map[string]string{"c": "d"}}
	go func() { // its reply dies with the process
		short, cancel := context.WithTimeout(cx, 20*time.Second)
		defer cancel()
		_, _ = c.MigrateTokens(short, req)
	}()
	testkit.Poll(t, 30*time.Second, "the migration under way", func() bool {
		return countMigrated(cx, t, js, wf) > 100
	})
	first.kill9(t)
	before := countMigrated(cx, t, js, wf)
	tokenService(t, url)
	testkit.Poll(t, time.Minute, "the migration completed", func() bool {
		short, cancel := context.WithTimeout(cx, 20*time.Second)
		defer cancel()
		res, err := c.MigrateTokens(short, req)
		return err == nil && res.Complete && res.FailedCount == 0
	})
	if got := countMigrated(cx, t, js, wf); got != total {
		t.Fatalf("%d token_migrated events for %d tokens (%d before the restart)", got, total, before)
	}
	for _, tok := range listAll(cx, t, c, wf, "") {
		if tok.WorkflowVersion != 2 || tok.Revision != 2 {
			t.Fatalf("token %s: version %d, revision %d", tok.ID, tok.WorkflowVersion, tok.Revision)
		}
	}
	t.Logf("killed with %d of %d tokens migrated; the rerun moved the rest, each once", before, total)
}

func countMigrated(ctx context.Context, t testing.TB, js jetstream.JetStream, wf string) int {
	return countType(ctx, t, js, wf, wire.EventTokenMigrated)
}
