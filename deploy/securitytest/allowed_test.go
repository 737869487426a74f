package securitytest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

const createWorkflow = `mutation { createWorkflow(input: {id: "doc", name: "Document approval",
  places: ["draft", "review", "approved"], initialPlace: "draft",
  transitions: [{id: "submit", fromPlaces: ["draft"], toPlace: "review"},
                {id: "approve", fromPlaces: ["review"], toPlace: "approved"}]}) { id } }`

// testAllowed walks every path of the system under least privilege: the
// GraphQL edge and the services through it, KV catalogue listing, a
// GraphQL subscription's ordered consumers (as the edge user), event
// history and statistics, a durable subscription consumed by another
// system, and discovery. No connection may see a permission violation.
func testAllowed(t *testing.T, s *system) {
	ctx := testCtx(t, 30*time.Second)
	if code := s.httpGet(t, "/ready"); code != 200 {
		t.Fatalf("/ready = %d: the edge cannot ping the services", code)
	}
	s.gql(t, createWorkflow, nil)
	listWorkflows(t, s)

	sub := s.login(t, "subscriber")
	other := client.New(sub.Conn)
	durable, err := other.SubscribeTokenEvents(ctx, &wire.SubscribeRequest{WorkflowID: "doc", Name: "billing", Deliver: wire.DeliverAll})
	if err != nil {
		t.Fatalf("durable subscription as subscriber: %v", err)
	}

	live, err := sub.SubscribeSync("workflows.*.events.>")
	if err != nil {
		t.Fatal(err)
	}
	edge := s.login(t, "edge")
	watcher := client.New(edge.Conn)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	events, err := watcher.WatchEvents(watchCtx, "doc", 0, nil)
	if err != nil {
		t.Fatalf("WatchEvents as edge: %v", err)
	}

	tok := s.gql(t, `mutation { createWorkflowInstance(input: {workflowId: "doc", initialData: {title: "T"}, triggeredBy: "test"}) { id place } }`, nil)
	id := tok["createWorkflowInstance"].(map[string]any)["id"].(string)
	tokens, err := watcher.WatchToken(watchCtx, id)
	if err != nil {
		t.Fatalf("WatchToken as edge: %v", err)
	}
	expectToken(t, tokens, "draft")

	s.gql(t, `mutation($id: String!) { transitionTokenWithNats(input: {tokenId: $id, transitionId: "submit", newPlace: "review", triggeredBy: "t"}) { place } }`,
		map[string]any{"id": id})
	expectToken(t, tokens, "review")
	in := s.gql(t, `{ tokensInPlace(workflowId: "doc", placeId: "review") { id } }`, nil)["tokensInPlace"].([]any)
	if len(in) != 1 || in[0].(map[string]any)["id"] != id {
		t.Fatalf("tokensInPlace(review) = %v", in)
	}
	s.gql(t, `query($id: String!) { token(id: $id) { place } availableTransitions(tokenId: $id) { id } }`, map[string]any{"id": id})
	s.gql(t, `mutation($id: String!) { fireTransition(input: {tokenId: $id, transitionId: "approve"}) { place } }`, map[string]any{"id": id})
	expectToken(t, tokens, "approved")

	want := []string{wire.EventTokenCreated, wire.EventTokenTransitioned, wire.EventTokenTransitioned}
	expectEvents(t, events, want)
	history, err := other.History(ctx, &wire.HistoryRequest{WorkflowID: "doc"})
	if err != nil {
		t.Fatalf("event history as subscriber: %v", err)
	}
	all := append([]string{wire.EventWorkflowCreated}, want...)
	if got := eventTypes(history.Items); !slices.Equal(got, all) {
		t.Fatalf("history = %v, want %v", got, all)
	}
	if _, err := other.Stats(ctx, &wire.StatsRequest{WorkflowID: "doc"}); err != nil {
		t.Fatalf("stats as subscriber: %v", err)
	}
	consumeDurable(t, ctx, other, durable, all)
	for _, want := range want {
		m, err := live.NextMsg(5 * time.Second)
		if err != nil || !strings.Contains(string(m.Data), `"`+want+`"`) {
			t.Fatalf("core subscription to events as subscriber: %v, want %s", err, want)
		}
	}
	readOnly(t, ctx, other, id)
	discover(t, s)
	stopWatch()
	drain(events)
	drain(tokens)
	noConsumersLeft(t, s)
	probesAndTrim(t, ctx, s)
	noViolations(t, map[string]*conn{"test edge": edge, "test subscriber": sub})
	noViolations(t, s.stackConns())
}

// listWorkflows lists the catalogue (an ordered consumer on the bucket, as
// the workflow user). On R3 the list right after a create was seen empty
// about once in 8 runs (a stale read, not a permission): it polls, and
// logs when it had to.
func listWorkflows(t *testing.T, s *system) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for try := 1; ; try++ {
		data := s.gql(t, `{ workflows { id } workflow(id: "doc") { places } }`, nil)
		ws := data["workflows"].([]any)
		if len(ws) == 1 {
			if try > 1 {
				t.Logf("workflows listed the new workflow only at try %d", try)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("workflows = %v", ws)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readOnly makes every read-only query another system may make.
func readOnly(t *testing.T, ctx context.Context, c *client.Client, id string) {
	t.Helper()
	calls := map[string]func() error{
		"workflow.get":    func() error { _, err := c.GetWorkflow(ctx, "doc"); return err },
		"workflow.list":   func() error { _, err := c.ListWorkflows(ctx, wire.Page{}); return err },
		"token.get":       func() error { _, err := c.GetToken(ctx, id); return err },
		"token.find":      func() error { _, err := c.FindToken(ctx, "doc", id); return err },
		"token.list":      func() error { _, err := c.ListTokens(ctx, "doc", wire.Page{}); return err },
		"token.inplace":   func() error { _, err := c.TokensInPlace(ctx, "doc", "approved", wire.Page{}); return err },
		"token.available": func() error { _, err := c.Available(ctx, id); return err },
		"event.replay": func() error {
			_, err := c.Replay(ctx, &wire.HistoryRequest{WorkflowID: "doc", AfterSequence: 1})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); err != nil {
			t.Errorf("%s as subscriber: %v", name, err)
		}
	}
}

// probesAndTrim checks what runs outside the request paths: cb-probe pings
// its own service with that service's login, and the event service's
// event trimming purges events (filtered) of a workflow stream.
func probesAndTrim(t *testing.T, ctx context.Context, s *system) {
	t.Helper()
	conns := map[string]*conn{}
	for _, svc := range []string{"workflow", "token", "event"} {
		conns[svc] = s.login(t, svc)
		if _, err := conns[svc].Request("$SRV.PING."+svc, nil, 2*time.Second); err != nil {
			t.Errorf("cb-probe %s: %v", svc, err)
		}
	}
	js, err := jetstream.New(conns["event"].Conn)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "WORKFLOW_doc")
	if err == nil {
		err = st.Purge(ctx, jetstream.WithPurgeSubject("workflows.doc.events.>"))
	}
	if err != nil {
		t.Errorf("event trimming's purge as event: %v", err)
	}
	noViolations(t, conns)
}

// drain waits for a watch channel to close: its consumer was deleted then.
func drain[T any](ch <-chan T) {
	for range ch {
	}
}

// noConsumersLeft checks that the edge deleted its ordered consumers and
// the event service the durable one.
func noConsumersLeft(t *testing.T, s *system) {
	t.Helper()
	admin := s.login(t, "admin")
	js, err := jetstream.New(admin.Conn)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		st, err := js.Stream(testCtx(t, 2*time.Second), "WORKFLOW_doc")
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(testCtx(t, 2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Consumers == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d consumers left on WORKFLOW_doc", info.State.Consumers)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func expectToken(t *testing.T, ch <-chan *flow.Token, place string) {
	t.Helper()
	select {
	case tok, ok := <-ch:
		if !ok || tok.Place != place {
			t.Fatalf("token watch: got %+v (open %v), want place %s", tok, ok, place)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("token watch: nothing for place %s", place)
	}
}

func expectEvents(t *testing.T, ch <-chan wire.EventRecord, want []string) {
	t.Helper()
	var got []wire.EventRecord
	for len(got) < len(want) {
		select {
		case rec, ok := <-ch:
			if !ok {
				t.Fatalf("event watch closed after %v", eventTypes(got))
			}
			got = append(got, rec)
		case <-time.After(5 * time.Second):
			t.Fatalf("event watch: got %v, want %v", eventTypes(got), want)
		}
	}
	if !slices.Equal(eventTypes(got), want) {
		t.Fatalf("event watch: got %v, want %v", eventTypes(got), want)
	}
}

func eventTypes(recs []wire.EventRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Event.EventType
	}
	return out
}

// consumeDurable reads the durable subscription as another system would:
// pull, double-ack each event, list it, stop it, delete it.
func consumeDurable(t *testing.T, ctx context.Context, c *client.Client, sub *client.Subscription, want []string) {
	t.Helper()
	var got []wire.EventRecord
	for range want {
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d, err := sub.Next(nctx)
		cancel()
		if err != nil {
			t.Fatalf("durable Next after %v: %v", eventTypes(got), err)
		}
		if err := d.Ack(ctx); err != nil {
			t.Fatalf("durable ack: %v", err)
		}
		got = append(got, d.Record)
	}
	if !slices.Equal(eventTypes(got), want) {
		t.Fatalf("durable: got %v, want %v", eventTypes(got), want)
	}
	sub.Stop()
	list, err := c.Subscriptions(ctx, "doc")
	if err != nil || len(list.Items) != 1 || list.Items[0].AckPending != 0 || list.Items[0].AckFloor == 0 {
		t.Fatalf("subscriptions = %+v, %v; want billing, all acked", list, err)
	}
	if err := c.DeleteSubscription(ctx, "doc", "billing"); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
}

// discover checks `nats micro ping` as admin finds all three services.
func discover(t *testing.T, s *system) {
	t.Helper()
	admin := s.login(t, "admin")
	inbox := admin.NewInbox()
	replies, err := admin.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.PublishRequest("$SRV.PING", inbox, nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	for len(names) < 3 {
		m, err := replies.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("$SRV.PING: got %v: %v", names, err)
		}
		var ping struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(m.Data, &ping)
		names = append(names, ping.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"event", "token", "workflow"}) {
		t.Fatalf("$SRV.PING answered by %v", names)
	}
}
