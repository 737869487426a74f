package securitytest

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
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
// system, the GraphQL fields the edge serves through the event service
// (and a resumed subscription's replay), a new workflow version (with a
// search index build), and discovery. No connection may see a permission violation.
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
	// From the workflow's last event on: a consumer that delivers only
	// new events may start after the first writes on a busy cluster.
	before, err := other.History(ctx, &wire.HistoryRequest{WorkflowID: "doc"})
	if err != nil || len(before.Items) == 0 {
		t.Fatalf("event history before the watch: %v", err)
	}
	events, err := watcher.WatchEvents(watchCtx, "doc", before.Items[len(before.Items)-1].Sequence, nil)
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
	eventFields(t, s, all)
	resumeOverSSE(t, s)
	for _, want := range want {
		m, err := live.NextMsg(5 * time.Second)
		if err != nil || !strings.Contains(string(m.Data), `"`+want+`"`) {
			t.Fatalf("core subscription to events as subscriber: %v, want %s", err, want)
		}
	}
	readOnly(t, ctx, other, id)
	newVersion(t, s)
	timersFire(t, s)
	discover(t, s)
	microInfo(t, s)
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
		"token.history":   func() error { _, err := c.TokenHistory(ctx, &wire.TokenHistoryRequest{TokenID: id}); return err },
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

// eventFields runs the GraphQL fields the edge serves through the event
// service: events, workflowStats and the durable subscriptions' list,
// create and delete. The edge asks the event service for them, so its
// user needs cb.*.event.* (without it each field times out).
func eventFields(t *testing.T, s *system, want []string) {
	t.Helper()
	data := s.gql(t, `{ events(workflowId: "doc") { eventType } workflowStats(workflowId: "doc") { tokens events } }`, nil)
	var got []string
	for _, e := range data["events"].([]any) {
		got = append(got, e.(map[string]any)["eventType"].(string))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("GraphQL events = %v, want %v", got, want)
	}
	if st := data["workflowStats"].(map[string]any); st["tokens"] != float64(1) || st["events"] != float64(len(want)) {
		t.Fatalf("GraphQL workflowStats = %v", st)
	}
	// Analytics and health (issue 16): the bucket CB_ANALYTICS, account
	// and stream infos, the servers' STATZ and the services' micro STATS.
	data = s.gql(t, `{ workflowAnalytics(workflowId: "doc") { totalTokens events }
		workflowHealth(workflowId: "doc") { messageCount serviceInstances }
		natsSystemHealth { connectedServers totalStreams servers { name connections } }
		natsPerformanceMetrics(timeRange: "5m") { requests connectionCount measuredSeconds } }`, nil)
	if a := data["workflowAnalytics"].(map[string]any); a["totalTokens"] != float64(1) || a["events"] != float64(len(want)) {
		t.Fatalf("GraphQL workflowAnalytics = %v", a)
	}
	if h := data["workflowHealth"].(map[string]any); h["messageCount"].(float64) < float64(len(want)) || h["serviceInstances"].(float64) < 1 {
		t.Fatalf("GraphQL workflowHealth = %v", h)
	}
	if h := data["natsSystemHealth"].(map[string]any); h["connectedServers"].(float64) < 1 || h["totalStreams"].(float64) < 3 ||
		len(h["servers"].([]any)) != int(h["connectedServers"].(float64)) {
		t.Fatalf("GraphQL natsSystemHealth = %v (no STATZ?)", h)
	}
	if p := data["natsPerformanceMetrics"].(map[string]any); p["requests"].(float64) < 0 || p["connectionCount"].(float64) < 4 {
		t.Fatalf("GraphQL natsPerformanceMetrics = %v", p)
	}
	created := s.gql(t, `mutation { createEventSubscription(input: {workflowId: "doc", name: "dashboard", deliver: "all"}) { name consumer pending } }`, nil)
	if c := created["createEventSubscription"].(map[string]any); c["consumer"] != "sub_dashboard" {
		t.Fatalf("GraphQL createEventSubscription = %v", c)
	}
	list := s.gql(t, `{ eventSubscriptions(workflowId: "doc") { name } }`, nil)["eventSubscriptions"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["name"] != "dashboard" {
		t.Fatalf("GraphQL eventSubscriptions = %v", list)
	}
	if del := s.gql(t, `mutation { deleteEventSubscription(workflowId: "doc", name: "dashboard") }`, nil); del["deleteEventSubscription"] != true {
		t.Fatalf("GraphQL deleteEventSubscription = %v", del)
	}
}

// resumeOverSSE resumes a GraphQL subscription after the first stored
// event, over server-sent events: the edge replays the stored events
// through the event service (event.replay) before the live ones.
func resumeOverSSE(t *testing.T, s *system) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	body := `{"query":"subscription { workflowEvents(workflowId: \"doc\", afterSequence: \"1\") { eventType sequence } }"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.graphql, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		line := lines.Text()
		if strings.Contains(line, `"errors"`) {
			t.Fatalf("resumed subscription: %s", line)
		}
		if strings.Contains(line, `"token_created"`) {
			return
		}
	}
	t.Fatalf("resumed subscription ended without the stored token_created event: %v", lines.Err())
}

// microInfo checks what `nats micro info` and `nats micro ls` show (as
// admin, $SRV.INFO.<service>): every endpoint of every service listed
// below, the token service's writer endpoints included, and every endpoint
// at all on a subject cb.*.<service>.<op> (cb.*.token.writer.<id>.<op>)
// in queue group cb, which the grants of accounts.conf cover by
// construction: a service's cb.*.<service>.> serves it, the edge's
// cb.*.<service>.* and a tenant's cb.<tenant>.> reach it, and the writer
// endpoints stay out of their reach.
func microInfo(t *testing.T, s *system) {
	t.Helper()
	admin := s.login(t, "admin")
	want := map[string][]subjects.Request{
		subjects.WorkflowService: {subjects.WorkflowCreate, subjects.WorkflowGet, subjects.WorkflowList,
			subjects.WorkflowUpdate, subjects.WorkflowVersions},
		subjects.TokenService: {subjects.TokenCreate, subjects.TokenGet, subjects.TokenFind, subjects.TokenList,
			subjects.TokenInPlace, subjects.TokenAvailable, subjects.TokenFire, subjects.TokenUpdate, subjects.TokenHistoryPage},
		subjects.EventService: {subjects.EventHistory, subjects.EventReplay, subjects.EventStats,
			subjects.EventSubscribe, subjects.EventSubscriptions, subjects.EventUnsubscribe},
	}
	for svc, reqs := range want {
		info := serviceInfo(t, admin, svc)
		var expect []string
		for _, r := range reqs {
			expect = append(expect, r.Pattern())
		}
		writer := ""
		if svc == subjects.TokenService {
			writer = info.Metadata[subjects.MetaWriter]
			if writer == "" {
				t.Fatalf("token service info has no %q metadata: %v", subjects.MetaWriter, info.Metadata)
			}
			for _, op := range []string{"create", "fire", "update"} {
				expect = append(expect, subjects.TokenWriter(writer, op).Pattern())
			}
		}
		got := map[string]bool{}
		for _, e := range info.Endpoints {
			got[e.Subject] = true
			if e.QueueGroup != subjects.QueueGroup {
				t.Errorf("%s endpoint %s in queue group %q", svc, e.Name, e.QueueGroup)
			}
			op, ok := strings.CutPrefix(e.Subject, "cb.*."+svc+".")
			if w, isWriter := strings.CutPrefix(op, "writer."+writer+"."); svc == subjects.TokenService && isWriter {
				op = w
			}
			if !ok || op == "" || strings.ContainsAny(op, ".*>") {
				t.Errorf("%s endpoint %s on %q, outside cb.*.%s.<op>: accounts.conf grants do not cover it", svc, e.Name, e.Subject, svc)
			}
		}
		for _, subject := range expect {
			if !got[subject] {
				t.Errorf("$SRV.INFO.%s lists no endpoint on %s (endpoints: %v)", svc, subject, slices.Sorted(maps.Keys(got)))
			}
		}
	}
}

// serviceInfo asks one instance of svc for its micro info.
func serviceInfo(t *testing.T, c *conn, svc string) *micro.Info {
	t.Helper()
	m, err := c.Request("$SRV.INFO."+svc, nil, 5*time.Second)
	if err != nil {
		t.Fatalf("$SRV.INFO.%s: %v", svc, err)
	}
	var info micro.Info
	if err := json.Unmarshal(m.Data, &info); err != nil || info.Name != svc {
		t.Fatalf("$SRV.INFO.%s: %v: %s", svc, err, m.Data)
	}
	return &info
}

// newVersion stores version 2 of the workflow through GraphQL (the
// workflow service writes the version, its latest-version record and the
// event in one batch, reading the latest first), reads both versions back
// and starts a token on the new one (the token service reads it).
func newVersion(t *testing.T, s *system) {
	t.Helper()
	up := s.gql(t, `mutation { updateWorkflow(input: {id: "doc", expectedVersion: 1, name: "Document approval v2",
  places: ["draft", "review", "approved"], initialPlace: "review", searchAttributes: [{path: "data.title", type: KEYWORD}],
  transitions: [{id: "approve", fromPlaces: ["review"], toPlace: "approved"}]}) { version } }`, nil)
	if v := up["updateWorkflow"].(map[string]any)["version"]; v != float64(2) {
		t.Fatalf("updateWorkflow: version %v, want 2", v)
	}
	// The attribute it adds is built for the existing token (the workflow
	// service's record and request, the token service's build).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		idx := s.gql(t, `{ workflow(id: "doc") { searchIndex { state } } }`, nil)["workflow"].(map[string]any)["searchIndex"].(map[string]any)
		if idx["state"] == "READY" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("search index of doc: %v", idx)
		}
	}
	if found := s.gql(t, `{ findTokens(filter: {workflowIds: ["doc"], data: {title: "T"}}) { id } }`, nil)["findTokens"].([]any); len(found) != 1 {
		t.Fatalf("findTokens by the added attribute: %v", found)
	}
	got := s.gql(t, `{ first: workflow(id: "doc", version: 1) { version initialPlace } latest: workflow(id: "doc") { version versions { version } } }`, nil)
	if f := got["first"].(map[string]any); f["version"] != float64(1) || f["initialPlace"] != "draft" {
		t.Fatalf("workflow(doc, version 1) = %v", f)
	}
	if l := got["latest"].(map[string]any); l["version"] != float64(2) || len(l["versions"].([]any)) != 2 {
		t.Fatalf("workflow(doc) = %v, want version 2 of 2", l)
	}
	tok := s.gql(t, `mutation { createWorkflowInstance(input: {workflowId: "doc", initialData: {title: "T2"}}) { place } }`, nil)
	if p := tok["createWorkflowInstance"].(map[string]any)["place"]; p != "review" {
		t.Fatalf("a token of version 2 starts in %v, want review", p)
	}
}
