package clustertest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestClusterArchiveAndDelete: on an R3 cluster, where every read goes
// through the stream leader, an archived token reads back by id, a deleted
// one reads as absent at once, a workflow with live tokens is not deleted
// without force, and a deleted workflow's id works again right away.
func TestClusterArchiveAndDelete(t *testing.T) {
	cl := startCluster(t, 3)
	startStack(t, cl.urls(), 3)
	c := client.New(cl.connect("test"))
	eventually(t, 30*time.Second, "create workflow", func(ctx context.Context) error {
		_, err := c.CreateWorkflow(ctx, cycle("life"))
		return err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var toks []string
	for range 4 {
		toks = append(toks, testkit.Must(c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: "life"})).ID)
	}
	archived := testkit.Must(c.ArchiveToken(ctx, &wire.ArchiveTokenRequest{TokenID: toks[0]}))
	if got := testkit.Must(c.GetToken(ctx, toks[0])); got.ArchivedAt == nil || got.Revision != archived.Revision {
		t.Fatalf("archived token read back: %+v", got)
	}
	if rep := testkit.Must(c.DeleteToken(ctx, &wire.DeleteTokenRequest{TokenID: toks[1]})); !rep.Deleted {
		t.Fatal("delete: false")
	}
	if _, err := c.GetToken(ctx, toks[1]); !errors.Is(err, fail.ErrNotFound) {
		t.Fatalf("deleted token read back: %v", err)
	}
	if _, err := c.DeleteWorkflow(ctx, "life", false); !errors.Is(err, fail.ErrConflict) || !strings.Contains(err.Error(), "2 live tokens") {
		t.Fatalf("delete with 2 live tokens: %v", err)
	}
	if rep := testkit.Must(c.DeleteWorkflow(ctx, "life", true)); !rep.Deleted || rep.Tokens != 3 || rep.LiveTokens != 2 {
		t.Fatalf("forced delete: %+v", rep)
	}
	testkit.Must(c.CreateWorkflow(ctx, cycle("life")))
	tok := testkit.Must(c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: "life"}))
	if _, err := c.Fire(ctx, &wire.FireRequest{TokenID: tok.ID, TransitionID: "ab"}); err != nil {
		t.Fatalf("fire in the workflow created again: %v", err)
	}
	for _, id := range toks {
		if _, err := c.GetToken(ctx, id); !errors.Is(err, fail.ErrNotFound) {
			t.Errorf("token %s of the deleted workflow: %v", id, err)
		}
	}
}
