package securitytest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// orders is a two-step workflow; id may name a tenant.
func orders(id string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{ID: id, Name: "Orders", Places: []string{"new", "paid"}, InitialPlace: "new",
		Transitions: []flow.Transition{{ID: "pay", FromPlaces: []string{"new"}, ToPlace: "paid"}}}
}

// testTenants proves a tenant's own NATS user (tenant-acme) against the
// real stack: the edge's user creates one workflow per tenant (in the
// all-tenants scope and in a tenant's), then tenant-acme uses the whole
// request API in its scope without a permission violation and sees only
// acme's objects, another tenant's answering NOT_FOUND like absent ones;
// and it finds the services with `nats micro ls` ($SRV.PING, $SRV.INFO).
// acme's quotas, which the edge published from its auth file into the
// bucket the services follow, hold for its direct NATS requests too.
// What it must not reach is in the denials table.
func testTenants(t *testing.T, s *system) {
	ctx := testCtx(t, 30*time.Second)
	quotasPublished(t, ctx, s)
	edge := s.login(t, "edge")
	ops := client.New(edge.Conn)
	if wf, err := ops.CreateWorkflow(ctx, orders("acme::orders")); err != nil || wf.ID != "acme::orders" {
		t.Fatalf("edge creates acme::orders for every tenant: %v, %v", wf, err)
	}
	betaOps := ops.As("beta")
	if wf, err := betaOps.CreateWorkflow(ctx, orders("orders")); err != nil || wf.ID != "beta::orders" {
		t.Fatalf("edge creates orders in beta's scope: %v, %v", wf, err)
	}
	betaTok, err := betaOps.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: "orders"})
	if err != nil {
		t.Fatalf("edge creates a token in beta's scope: %v", err)
	}

	acmeConn := s.login(t, "tenant-acme")
	acme := client.New(acmeConn.Conn).As("acme")
	expectWorkflows(t, ctx, "tenant-acme", acme, "acme::orders")
	if wf, err := acme.GetWorkflow(ctx, "orders"); err != nil || wf.ID != "acme::orders" {
		t.Fatalf("tenant-acme gets its orders: %v, %v", wf, err)
	}
	tok, err := acme.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: "orders", TriggeredBy: "acme-shop"})
	if err != nil || tok.WorkflowID != "acme::orders" {
		t.Fatalf("tenant-acme creates a token: %v, %v", tok, err)
	}
	if tok, err = acme.Fire(ctx, &wire.FireRequest{TokenID: tok.ID, TransitionID: "pay"}); err != nil || tok.Place != "paid" {
		t.Fatalf("tenant-acme fires: %v, %v", tok, err)
	}
	calls := map[string]func() error{
		"workflow.list":   func() error { _, err := acme.ListWorkflows(ctx, wire.Page{}); return err },
		"token.get":       func() error { _, err := acme.GetToken(ctx, tok.ID); return err },
		"token.find":      func() error { _, err := acme.FindToken(ctx, "orders", tok.ID); return err },
		"token.list":      func() error { _, err := acme.ListTokens(ctx, "orders", wire.Page{}); return err },
		"token.inplace":   func() error { _, err := acme.TokensInPlace(ctx, "orders", "paid", wire.Page{}); return err },
		"token.available": func() error { _, err := acme.Available(ctx, tok.ID); return err },
		"token.history":   func() error { _, err := acme.TokenHistory(ctx, &wire.TokenHistoryRequest{TokenID: tok.ID}); return err },
		"token.update": func() error {
			_, err := acme.UpdateToken(ctx, &wire.UpdateTokenRequest{TokenID: tok.ID, Data: []byte(`{"note":"x"}`)})
			return err
		},
		"event.history": func() error { _, err := acme.History(ctx, &wire.HistoryRequest{WorkflowID: "orders"}); return err },
		"event.stats":   func() error { _, err := acme.Stats(ctx, &wire.StatsRequest{WorkflowID: "orders"}); return err },
		"event.subscriptions": func() error {
			_, err := acme.Subscriptions(ctx, "orders")
			return err
		},
	}
	for name, call := range calls {
		if err := call(); err != nil {
			t.Errorf("%s as tenant-acme: %v", name, err)
		}
	}

	// Another tenant's objects are absent to acme, and acme's to beta.
	absent := map[string]func() error{
		"beta's workflow":        func() error { _, err := acme.GetWorkflow(ctx, "beta::orders"); return err },
		"beta's token":           func() error { _, err := acme.GetToken(ctx, betaTok.ID); return err },
		"beta's workflow tokens": func() error { _, err := acme.ListTokens(ctx, "beta::orders", wire.Page{}); return err },
		"beta's events": func() error {
			_, err := acme.History(ctx, &wire.HistoryRequest{WorkflowID: "beta::orders"})
			return err
		},
		"a fire of beta's token": func() error {
			_, err := acme.Fire(ctx, &wire.FireRequest{TokenID: betaTok.ID, TransitionID: "pay"})
			return err
		},
	}
	for name, call := range absent {
		if err := call(); fail.KindOf(err) != fail.NotFound {
			t.Errorf("tenant-acme asks for %s: %v, want NOT_FOUND", name, err)
		}
	}
	betaConn := s.login(t, "tenant-beta")
	beta := client.New(betaConn.Conn).As("beta")
	expectWorkflows(t, ctx, "tenant-beta", beta, "beta::orders")
	if _, err := beta.GetToken(ctx, tok.ID); fail.KindOf(err) != fail.NotFound {
		t.Errorf("tenant-beta asks for acme's token: %v, want NOT_FOUND", err)
	}
	if got, err := beta.GetToken(ctx, betaTok.ID); err != nil || got.WorkflowID != "beta::orders" {
		t.Errorf("tenant-beta gets its token: %v, %v", got, err)
	}

	// acme has its one workflow and its one live token: its quotas refuse more.
	if _, err := acme.CreateWorkflow(ctx, orders("more")); fail.KindOf(err) != fail.ResourceExhausted {
		t.Errorf("tenant-acme creates a second workflow beyond maxWorkflows 1: %v, want RESOURCE_EXHAUSTED", err)
	}
	if _, err := acme.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: "orders"}); fail.KindOf(err) != fail.ResourceExhausted {
		t.Errorf("tenant-acme creates a second token beyond maxLiveTokens 1: %v, want RESOURCE_EXHAUSTED", err)
	}

	// Discovery: `nats micro ls` ($SRV.INFO) and ping show every endpoint.
	for _, svc := range []string{subjects.WorkflowService, subjects.TokenService, subjects.EventService} {
		if info := serviceInfo(t, acmeConn, svc); len(info.Endpoints) == 0 {
			t.Errorf("tenant-acme: $SRV.INFO.%s lists no endpoints", svc)
		}
		if _, err := acmeConn.Request(subjects.ServicePing(svc), nil, 2*time.Second); err != nil {
			t.Errorf("tenant-acme: %s: %v", subjects.ServicePing(svc), err)
		}
	}
	noViolations(t, map[string]*conn{"edge": edge, "tenant-acme": acmeConn, "tenant-beta": betaConn})
}

// quotasPublished waits until the edge has published its auth file's
// quotas into the services' bucket, and for the services to follow it.
func quotasPublished(t *testing.T, ctx context.Context, s *system) {
	t.Helper()
	admin := s.login(t, "admin")
	js, err := jetstream.New(admin.Conn)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		kv, err := js.KeyValue(ctx, subjects.TenantsBucket)
		if err == nil {
			_, err = kv.Get(ctx, "acme")
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge did not publish acme's quota into %s: %v", subjects.TenantsBucket, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the services' watchers deliver within milliseconds
}

// expectWorkflows checks that c's scope lists exactly the workflows ids.
// It polls a little: on R3 a list right after a create may be stale (see
// listWorkflows).
func expectWorkflows(t *testing.T, ctx context.Context, who string, c *client.Client, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		page, err := c.ListWorkflows(ctx, wire.Page{})
		if err != nil {
			t.Fatalf("%s lists workflows: %v", who, err)
		}
		var got []string
		for _, wf := range page.Items {
			got = append(got, wf.ID)
		}
		if slices.Equal(got, ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s lists workflows %v, want %v", who, got, ids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
