package systemtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/micro"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestTenantWorkflowIDs: the guide's "tenant::workflow" ids work end to
// end, each tenant's workflow in its own stream, and malformed ones are refused.
func TestTenantWorkflowIDs(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	for _, id := range []string{"tenant_a::document_approval", "tenant_b::document_approval"} {
		testkit.Must(s.c.CreateWorkflow(c, race(id)))
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: id}))
		moved := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "to_b"}))
		if moved.NatsSubject != subjects.TokenState(id, "b", tok.ID) {
			t.Fatalf("subject = %s", moved.NatsSubject)
		}
		if got := testkit.Must(s.c.GetWorkflow(c, id)); got.ID != id {
			t.Fatalf("workflow = %s", got.ID)
		}
		if n := len(testkit.Must(s.c.TokensInPlace(c, id, "b", wire.Page{})).Items); n != 1 {
			t.Fatalf("%s: %d tokens in b", id, n)
		}
		if n := len(testkit.Must(s.c.History(c, &wire.HistoryRequest{WorkflowID: id})).Items); n != 3 {
			t.Fatalf("%s: %d events", id, n)
		}
	}
	ids := map[string]bool{}
	for _, w := range testkit.Must(s.c.ListWorkflows(c, wire.Page{})).Items {
		ids[w.ID] = true
	}
	if !ids["tenant_a::document_approval"] || !ids["tenant_b::document_approval"] {
		t.Fatalf("listed %v", ids)
	}
	for _, bad := range []string{"a::b::c", "::x", "a:b", "a::b.c"} {
		if _, err := s.c.CreateWorkflow(c, race(bad)); !errors.Is(err, fail.ErrBadInput) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// tenantWorld is two tenants' workflows of the same short name, each with
// a token and a durable subscription, made by an all-tenant client.
type tenantWorld struct {
	wf     map[string]string // tenant → full workflow id
	token  map[string]string // tenant → token id
	absent string            // a token id that never existed
}

func newTenantWorld(t *testing.T, s *system) tenantWorld {
	t.Helper()
	c := ctx(t)
	w := tenantWorld{wf: map[string]string{}, token: map[string]string{}, absent: uuid.NewString()}
	for _, tn := range []string{"acme", "beta"} {
		d := testkit.Must(s.c.As(tenant.Scope(tn)).CreateWorkflow(c, race("orders"))) // short name: qualified in the scope
		w.wf[tn] = d.ID
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: d.ID}))
		w.token[tn] = tok.ID
		testkit.Must(s.c.CreateSubscription(c, &wire.SubscribeRequest{WorkflowID: d.ID, Name: "audit"}))
	}
	return w
}

// scopedCall is one request of the Go client (every endpoint) made on a
// workflow and a token.
type scopedCall struct {
	name string
	call func(ctx context.Context, c *client.Client, wf, token string) error
}

var scopedCalls = []scopedCall{
	{"workflow.get", func(x context.Context, c *client.Client, wf, _ string) error {
		_, err := c.GetWorkflow(x, wf)
		return err
	}},
	{"token.create", func(x context.Context, c *client.Client, wf, _ string) error {
		_, err := c.CreateToken(x, &wire.CreateTokenRequest{WorkflowID: wf})
		return err
	}},
	{"token.get", func(x context.Context, c *client.Client, _, tok string) error {
		_, err := c.GetToken(x, tok)
		return err
	}},
	{"token.find", func(x context.Context, c *client.Client, wf, tok string) error {
		_, err := c.FindToken(x, wf, tok)
		return err
	}},
	{"token.list", func(x context.Context, c *client.Client, wf, _ string) error {
		_, err := c.ListTokens(x, wf, wire.Page{})
		return err
	}},
	{"token.inplace", func(x context.Context, c *client.Client, wf, _ string) error {
		_, err := c.TokensInPlace(x, wf, "a", wire.Page{})
		return err
	}},
	{"token.available", func(x context.Context, c *client.Client, _, tok string) error {
		_, err := c.Available(x, tok)
		return err
	}},
	{"token.history", func(x context.Context, c *client.Client, _, tok string) error {
		_, err := c.AllHistory(x, tok)
		return err
	}},
	{"token.fire", func(x context.Context, c *client.Client, _, tok string) error {
		_, err := c.Fire(x, &wire.FireRequest{TokenID: tok, TransitionID: "tick"})
		return err
	}},
	{"token.update", func(x context.Context, c *client.Client, _, tok string) error {
		_, err := c.UpdateToken(x, &wire.UpdateTokenRequest{TokenID: tok, Data: json.RawMessage(`{"x":1}`)})
		return err
	}},
	{"token.searchindex", func(x context.Context, c *client.Client, wf, _ string) error {
		_, err := c.SearchIndex(x, wf)
		return err
	}},
	{"token.reindex", func(x context.Context, c *client.Client, wf, _ string) error {
		_, err := c.Reindex(x, wf)
		return err
	}},
	{"event.history", func(x context.Context, c *client.Client, wf, _ string) error {
		_, err := c.History(x, &wire.HistoryRequest{WorkflowID: wf})
		return err
	}},
	{"event.replay", func(x context.Context, c *client.Client, wf, _ string) error {
		_, err := c.Replay(x, &wire.HistoryRequest{WorkflowID: wf, AfterSequence: 1})
		return err
	}},
	{"event.stats", func(x context.Context, c *client.Client, wf, _ string) error {
		_, err := c.Stats(x, &wire.StatsRequest{WorkflowID: wf})
		return err
	}},
	{"event.subscriptions", func(x context.Context, c *client.Client, wf, _ string) error {
		_, err := c.Subscriptions(x, wf)
		return err
	}},
	{"event.subscribe", func(x context.Context, c *client.Client, wf, _ string) error {
		_, err := c.CreateSubscription(x, &wire.SubscribeRequest{WorkflowID: wf, Name: "audit"})
		return err
	}},
	{"event.unsubscribe", func(x context.Context, c *client.Client, wf, _ string) error {
		return c.DeleteSubscription(x, wf, "never-made")
	}},
}

// sameAbsence checks that asking for another tenant's object fails
// exactly as asking for one that does not exist: NOT_FOUND, same text once
// the ids are blanked.
func sameAbsence(t *testing.T, op string, theirs, absent error, ids ...string) {
	t.Helper()
	if !errors.Is(theirs, fail.ErrNotFound) {
		t.Errorf("%s on another tenant's object: %v, want NOT_FOUND", op, theirs)
		return
	}
	blank := func(err error) string {
		s := err.Error()
		for _, id := range ids {
			s = strings.ReplaceAll(s, id, "ID")
		}
		return s
	}
	if absent == nil || blank(theirs) != blank(absent) {
		t.Errorf("%s: another tenant's object answers %q, an absent one %v: the difference tells it exists", op, theirs, absent)
	}
}

// TestTenantScopeOverNATS: over NATS, in a tenant's scope (cb.<tenant>.…),
// every endpoint serves the tenant's own workflows by short or full id,
// and treats the other tenant's exactly as absent ones; lists hold only
// the tenant's own. With writes routed between two token instances and
// without, so a write passed on keeps its scope.
func TestTenantScopeOverNATS(t *testing.T) {
	for _, routed := range []bool{true, false} {
		t.Run(fmt.Sprintf("routed=%v", routed), func(t *testing.T) {
			s := startWith(t, "", func(o *config.Store) { o.RouteWrites = routed })
			w, c := newTenantWorld(t, s), ctx(t)
			for tn, other := range map[string]string{"acme": "beta", "beta": "acme"} {
				mine := s.c.As(tenant.Scope(tn))
				for _, op := range scopedCalls {
					if err := op.call(c, mine, w.wf[tn], w.token[tn]); err != nil && !(op.name == "event.unsubscribe" && errors.Is(err, fail.ErrNotFound)) {
						t.Errorf("%s: %s on its own: %v", tn, op.name, err)
					}
					if err := op.call(c, mine, "orders", w.token[tn]); err != nil && !(op.name == "event.unsubscribe" && errors.Is(err, fail.ErrNotFound)) {
						t.Errorf("%s: %s by short id: %v", tn, op.name, err)
					}
					theirs := op.call(c, mine, w.wf[other], w.token[other])
					absent := op.call(c, mine, other+"::nothing", w.absent)
					sameAbsence(t, tn+": "+op.name, theirs, absent, w.wf[other], other+"::nothing", w.token[other], w.absent)
				}
				list := testkit.Must(mine.ListWorkflows(c, wire.Page{}))
				if len(list.Items) != 1 || list.Items[0].ID != w.wf[tn] {
					t.Errorf("%s lists %d workflows: %+v", tn, len(list.Items), list.Items)
				}
				if _, err := mine.CreateWorkflow(c, race(other+"::intruder")); !errors.Is(err, fail.ErrForbidden) {
					t.Errorf("%s creates a workflow of %s: %v, want FORBIDDEN", tn, other, err)
				}
			}
			// The other tenant's token is untouched by every attempt.
			for tn, id := range w.token {
				if tok := testkit.Must(s.c.GetToken(c, id)); tok.Revision != 5 {
					t.Errorf("%s's token at revision %d, want 5 (created, then fired and updated twice by its own tenant)", tn, tok.Revision)
				}
			}
			if all := testkit.Must(s.c.ListWorkflows(c, wire.Page{})); len(all.Items) != 2 {
				t.Errorf("the all-tenant scope lists %d workflows, want 2", len(all.Items))
			}
		})
	}
}

// TestTenantScopeSubject: a request on a subject whose scope names no
// valid tenant is refused, and the endpoints listen in every scope.
func TestTenantScopeSubject(t *testing.T) {
	s := start(t, "")
	msg := testkit.Must(s.nc.Request("cb._evil.workflow.list", []byte(`{}`), 5*time.Second))
	if msg.Header.Get(micro.ErrorCodeHeader) != "400" {
		t.Fatalf("scope _evil: %v", msg.Header)
	}
	msg = testkit.Must(s.nc.Request(subjects.WorkflowList.In("nobody"), []byte(`{}`), 5*time.Second))
	if msg.Header.Get(micro.ErrorCodeHeader) != "" || string(msg.Data) != `{"items":[]}` {
		t.Fatalf("an unknown tenant lists: %s %v", msg.Data, msg.Header)
	}
}
