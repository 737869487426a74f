package systemtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/deploy/stack"
	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/embedded"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

var roles = []string{"viewer", "operator", "admin"}

// tenantStack runs the stack with one API key per tenant and role (the
// key is "<tenant>-<role>") and an all-tenant admin key "ops", plus the
// auth file's extra lines (quotas).
func tenantStack(t *testing.T, extra string) (*stack.Stack, *client.Client, *auth.Authenticator, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.yaml")
	var b strings.Builder
	b.WriteString("apiKeys:\n  - {name: ops, key: ops, tenant: \"*\", role: admin}\n")
	for _, tn := range []string{"acme", "beta"} {
		for _, r := range roles {
			fmt.Fprintf(&b, "  - {name: %s-%s, key: %s-%s, tenant: %s, role: %s}\n", tn, r, tn, r, tn, r)
		}
	}
	b.WriteString(extra)
	testkit.Must(0, os.WriteFile(path, []byte(b.String()), 0o600))
	a, _, err := auth.Load(path, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stack.Start(context.Background(), stack.Options{
		Server: embedded.Options{DataDir: filepath.Join(dir, "data"), Port: -1}, Store: defaultStore(), TokenInstances: 2,
		Metrics: metrics.NewRegistry(), Auth: a, Log: zerolog.Nop(),
		HTTP: config.HTTP{Addr: "127.0.0.1:0", MaxBodyBytes: 1 << 20, Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	return st, client.New(testkit.Must(st.Connect("test"))), a, path
}

// answer is what one GraphQL operation got: the first error's code and
// message, and the data.
type answer struct {
	code, message string
	data          string
}

type gqlBody struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func (b gqlBody) answer() answer {
	a := answer{data: string(b.Data)}
	if len(b.Errors) > 0 {
		a.message = b.Errors[0].Message
		a.code, _ = b.Errors[0].Extensions["code"].(string)
	}
	return a
}

// transport runs one operation with a bearer key and returns its first
// result.
type transport func(t *testing.T, url, bearer, query string, vars map[string]any) answer

func overPOST(t *testing.T, url, bearer, query string, vars map[string]any) answer {
	t.Helper()
	resp := authedPost(t, url, bearer, "application/json", query, vars)
	defer resp.Body.Close()
	var b gqlBody
	testkit.Must(0, json.NewDecoder(resp.Body).Decode(&b))
	return b.answer()
}

func overSSE(t *testing.T, url, bearer, query string, vars map[string]any) answer {
	t.Helper()
	resp := authedPost(t, url, bearer, "text/event-stream", query, vars)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && data != "" {
			var b gqlBody
			testkit.Must(0, json.Unmarshal([]byte(data), &b))
			return b.answer()
		}
	}
	t.Fatalf("SSE stream ended without a result: %v", sc.Err())
	return answer{}
}

func authedPost(t *testing.T, url, bearer, accept, query string, vars map[string]any) *http.Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func overWS(t *testing.T, url, bearer, query string, vars map[string]any) answer {
	t.Helper()
	cx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(cx, "ws"+strings.TrimPrefix(url, "http"), &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	send := func(m any) { b, _ := json.Marshal(m); testkit.Must(0, c.Write(cx, websocket.MessageText, b)) }
	send(map[string]any{"type": "connection_init", "payload": map[string]any{"authorization": "Bearer " + bearer}})
	send(map[string]any{"type": "subscribe", "id": "1", "payload": map[string]any{"query": query, "variables": vars}})
	for {
		_, raw, err := c.Read(cx)
		if err != nil {
			t.Fatalf("graphql-ws: %v", err)
		}
		var m struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		testkit.Must(0, json.Unmarshal(raw, &m))
		switch m.Type {
		case "next":
			var b gqlBody
			testkit.Must(0, json.Unmarshal(m.Payload, &b))
			return b.answer()
		case "error":
			var b gqlBody
			testkit.Must(0, json.Unmarshal(raw, &struct {
				Payload *[]struct {
					Message    string         `json:"message"`
					Extensions map[string]any `json:"extensions"`
				} `json:"payload"`
			}{&b.Errors}))
			return b.answer()
		case "complete":
			return answer{}
		}
	}
}

// tenantOp is one root field, run on a workflow and a token.
type tenantOp struct {
	name, role, query string
	vars              func(wf, tok string) map[string]any
	sub               bool   // a subscription
	fresh             string // "token" or "workflow": the op destroys its object, so it runs on a fresh one of its own
}

func wfVars(wf, _ string) map[string]any   { return map[string]any{"wf": wf} }
func tokVars(_, tok string) map[string]any { return map[string]any{"tok": tok} }
func bothVars(wf, tok string) map[string]any {
	return map[string]any{"wf": wf, "tok": tok}
}

// tenantOps is every root field of the schema (TestTenantOpsCoverSchema
// keeps it so).
var tenantOps = []tenantOp{
	{"workflow", "viewer", `query($wf:String!){ workflow(id:$wf){ id } }`, wfVars, false, ""},
	{"token", "viewer", `query($tok:String!){ token(id:$tok){ id workflowId } }`, tokVars, false, ""},
	{"natsToken", "viewer", `query($tok:String!){ natsToken(id:$tok){ id } }`, tokVars, false, ""},
	{"tokens", "viewer", `query($wf:String!){ tokens(workflowId:$wf){ id } }`, wfVars, false, ""},
	{"availableTransitions", "viewer", `query($tok:String!){ availableTransitions(tokenId:$tok){ id } }`, tokVars, false, ""},
	{"transitionEvaluations", "viewer", `query($tok:String!){ transitionEvaluations(tokenId:$tok){ __typename } }`, tokVars, false, ""},
	{"tokensInPlace", "viewer", `query($wf:String!){ tokensInPlace(workflowId:$wf, placeId:"a"){ id } }`, wfVars, false, ""},
	{"findToken", "viewer", `query($wf:String!,$tok:String!){ findToken(workflowId:$wf, tokenId:$tok){ id } }`, bothVars, false, ""},
	{"events", "viewer", `query($wf:String!){ events(workflowId:$wf){ eventType } }`, wfVars, false, ""},
	{"workflowStats", "viewer", `query($wf:String!){ workflowStats(workflowId:$wf){ __typename } }`, wfVars, false, ""},
	{"eventSubscriptions", "viewer", `query($wf:String!){ eventSubscriptions(workflowId:$wf){ name } }`, wfVars, false, ""},
	{"findTokens", "viewer", `query($wf:String!){ findTokens(filter:{workflowIds:[$wf]}){ id } }`, wfVars, false, ""},
	{"countTokens", "viewer", `query($wf:String!){ countTokens(filter:{workflowIds:[$wf], places:["a"]}) }`, wfVars, false, ""},
	{"createToken", "operator", `mutation($wf:String!){ createToken(input:{workflowId:$wf}){ id } }`, wfVars, false, ""},
	{"createWorkflowInstance", "operator", `mutation($wf:String!){ createWorkflowInstance(input:{workflowId:$wf}){ id } }`, wfVars, false, ""},
	{"fireTransition", "operator", `mutation($tok:String!){ fireTransition(input:{tokenId:$tok, transitionId:"tick"}){ id } }`, tokVars, false, ""},
	{"transitionTokenWithNats", "operator", `mutation($tok:String!){ transitionTokenWithNats(input:{tokenId:$tok, transitionId:"tick", newPlace:"a"}){ id } }`, tokVars, false, ""},
	{"bulkTransitionTokens", "operator", `mutation($wf:String!){ bulkTransitionTokens(input:{workflowId:$wf, fromPlace:"a", transitionId:"tick", idempotencyKey:"bulk"}){ processedCount failedCount } }`, wfVars, false, ""},
	{"updateToken", "operator", `mutation($tok:String!){ updateToken(input:{tokenId:$tok, data:{x:1}}){ id } }`, tokVars, false, ""},
	{"updateWorkflow", "admin", `mutation($wf:String!){ updateWorkflow(input:{id:$wf, expectedVersion:1, name:"o", places:["a","b"], initialPlace:"a", transitions:[{id:"tick", fromPlaces:["a"], toPlace:"a"}]}){ version } }`, wfVars, false, ""},
	{"migrateTokens", "admin", `mutation($wf:String!){ migrateTokens(input:{workflowId:$wf, fromVersion:1, toVersion:2}){ migratedCount failedCount } }`, wfVars, false, ""},
	{"createEventSubscription", "admin", `mutation($wf:String!){ createEventSubscription(input:{workflowId:$wf, name:"s"}){ name } }`, wfVars, false, ""},
	{"deleteEventSubscription", "admin", `mutation($wf:String!){ deleteEventSubscription(workflowId:$wf, name:"s") }`, wfVars, false, ""},
	{"tokenUpdates", "viewer", `subscription($tok:String!){ tokenUpdates(tokenId:$tok){ id } }`, tokVars, true, ""},
	{"workflowEvents", "viewer", `subscription($wf:String!){ workflowEvents(workflowId:$wf, afterSequence:"1"){ eventType } }`, wfVars, true, ""},
	{"placeEvents", "viewer", `subscription($wf:String!){ placeEvents(workflowId:$wf, placeId:"a", afterSequence:"1"){ eventType } }`, wfVars, true, ""},
	// Each run of these on the caller's own objects destroys one: it runs
	// on a fresh token or workflow of the caller's tenant.
	{"archiveToken", "operator", `mutation($tok:String!){ archiveToken(id:$tok){ id } }`, tokVars, false, "token"},
	{"deleteToken", "admin", `mutation($tok:String!){ deleteToken(id:$tok) }`, tokVars, false, "token"},
	{"deleteWorkflow", "admin", `mutation($wf:String!){ deleteWorkflow(id:$wf, force:true) }`, wfVars, false, "workflow"},
	{"workflowAnalytics", "viewer", `query($wf:String!){ workflowAnalytics(workflowId:$wf){ totalTokens tokensPerPlace { place count } } }`, wfVars, false, ""},
	{"workflowHealth", "viewer", `query($wf:String!){ workflowHealth(workflowId:$wf){ streamName consumerLag } }`, wfVars, false, ""},
	// natsSystemHealth and natsPerformanceMetrics show every tenant's
	// streams: a tenant's credentials get FORBIDDEN whatever their role.
	{"natsSystemHealth", everyTenant, `query{ natsSystemHealth{ totalStreams } }`, noVars, false, ""},
	{"natsPerformanceMetrics", everyTenant, `query{ natsPerformanceMetrics{ requests } }`, noVars, false, ""},
	// workflows, tokens without workflowId and createWorkflow are checked
	// on their own below: they name no existing object of a tenant.
}

// everyTenant is the "role" of a field only credentials of every tenant
// may use.
const everyTenant = "every-tenant"

func noVars(_, _ string) map[string]any { return nil }

var uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// blank removes what differs between two objects' answers that are the
// same answer: their ids.
func blank(a answer, ids ...string) answer {
	for _, id := range ids {
		a.message, a.data = strings.ReplaceAll(a.message, id, "ID"), strings.ReplaceAll(a.data, id, "ID")
	}
	a.message = uuidPattern.ReplaceAllString(a.message, "ID")
	return a
}

// TestTenantIsolationOverGraphQL: two tenants × three roles × every root
// field × POST, graphql-ws and SSE. A role gets what the role table says
// (FORBIDDEN beyond it); on its own tenant's objects every allowed field
// works; on the other tenant's it gets exactly what an object that does
// not exist gets (null or NOT_FOUND, same message), so it cannot tell
// they exist; and the other tenant's objects are unchanged afterwards.
func TestTenantIsolationOverGraphQL(t *testing.T) {
	st, ops, _, _ := tenantStack(t, "")
	c := ctx(t)
	w := tenantWorld{wf: map[string]string{}, token: map[string]string{}, absent: "00000000-0000-4000-8000-000000000000"}
	for _, tn := range []string{"acme", "beta"} {
		if a := overPOST(t, st.GraphQL, tn+"-admin", `mutation{ createWorkflow(input:{id:"orders", name:"o", places:["a","b"], initialPlace:"a", transitions:[{id:"tick", fromPlaces:["a"], toPlace:"a"}]}){ id } }`, nil); a.code != "" {
			t.Fatalf("%s creates its workflow: %+v", tn, a)
		}
		w.wf[tn] = tn + "::orders"
		var tok struct{ CreateToken struct{ ID string } }
		a := overPOST(t, st.GraphQL, tn+"-operator", `mutation{ createToken(input:{workflowId:"orders"}){ id } }`, nil)
		testkit.Must(0, json.Unmarshal([]byte(a.data), &tok))
		w.token[tn] = tok.CreateToken.ID
	}
	before := map[string]uint64{}
	for tn, id := range w.token {
		before[tn] = testkit.Must(ops.GetToken(c, id)).Revision
	}
	transports := map[string]transport{"POST": overPOST, "graphql-ws": overWS, "SSE": overSSE}
	requests, fresh := 0, 0
	for tn, other := range map[string]string{"acme": "beta", "beta": "acme"} {
		for _, role := range roles {
			key := tn + "-" + role
			for name, run := range transports {
				for _, op := range tenantOps {
					if op.sub && name == "POST" {
						continue
					}
					allowed := roleRank(role) >= roleRank(op.role) && op.role != everyTenant
					ownWF, ownTok := "orders", w.token[tn]
					switch {
					case !allowed || op.fresh == "": // a refused op changes nothing: the usual objects do
					case op.fresh == "token":
						ownTok = testkit.Must(ops.As(tenant.Scope(tn)).CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "orders"})).ID
					case op.fresh == "workflow":
						fresh++
						ownWF = fmt.Sprintf("fresh%d", fresh)
						testkit.Must(ops.As(tenant.Scope(tn)).CreateWorkflow(c, race(ownWF)))
					}
					own := run(t, st.GraphQL, key, op.query, op.vars(ownWF, ownTok))
					theirs := run(t, st.GraphQL, key, op.query, op.vars(w.wf[other], w.token[other]))
					absent := run(t, st.GraphQL, key, op.query, op.vars(other+"::nothing", w.absent))
					requests += 3
					where := fmt.Sprintf("%s over %s: %s", key, name, op.name)
					switch {
					case !allowed:
						for _, a := range []answer{own, theirs, absent} {
							if a.code != "FORBIDDEN" {
								t.Errorf("%s: %+v, want FORBIDDEN", where, a)
							}
						}
					case own.code != "" && !(op.name == "updateWorkflow" && own.code == "CONFLICT"): // version 1 is updated once
						t.Errorf("%s on its own: %+v", where, own)
					case blank(theirs, w.wf[other], w.token[other]) != blank(absent, other+"::nothing", w.absent):
						t.Errorf("%s: another tenant's object answers %+v, an absent one %+v", where, theirs, absent)
					case strings.Contains(theirs.data, w.token[other]) || strings.Contains(theirs.data, w.wf[other]):
						t.Errorf("%s: another tenant's object answers data %s", where, theirs.data)
					}
				}
				// A live-only subscription (no replay) to the other tenant's
				// workflow is refused at once, as one to an absent workflow.
				for _, live := range []string{`subscription($wf:String!){ workflowEvents(workflowId:$wf){ eventType } }`,
					`subscription($wf:String!){ bulkProgress(workflowId:$wf, idempotencyKey:"bulk"){ processed } }`} {
					if name == "POST" {
						break
					}
					theirs, absent := run(t, st.GraphQL, key, live, wfVars(w.wf[other], "")), run(t, st.GraphQL, key, live, wfVars(other+"::nothing", ""))
					if theirs.code != "NOT_FOUND" || blank(theirs, w.wf[other]) != blank(absent, other+"::nothing") {
						t.Errorf("%s over %s: live events of another tenant's workflow: %+v (absent: %+v)", key, name, theirs, absent)
					}
				}
				// Lists hold only the tenant's own; definitions of another tenant are refused.
				if a := run(t, st.GraphQL, key, `{ workflows { id } }`, nil); a.data != fmt.Sprintf(`{"workflows":[{"id":"%s"}]}`, w.wf[tn]) {
					t.Errorf("%s over %s lists workflows %s", key, name, a.data)
				}
				if a := run(t, st.GraphQL, key, `{ tokens { workflowId } }`, nil); a.code != "" || strings.Contains(a.data, other) || !strings.Contains(a.data, w.wf[tn]) {
					t.Errorf("%s over %s lists tokens %+v", key, name, a)
				}
				if role == "admin" {
					q := fmt.Sprintf(`mutation{ createWorkflow(input:{id:"%s::intruder", name:"i", places:["a"], initialPlace:"a", transitions:[]}){ id } }`, other)
					if a := run(t, st.GraphQL, key, q, nil); a.code != "FORBIDDEN" {
						t.Errorf("%s over %s creates a workflow of %s: %+v", key, name, other, a)
					}
				}
			}
		}
	}
	// Every change came from the token's own tenant: each operator and
	// admin fired, moved and updated its own token three times per
	// transport, the first admin migrated it to version 2, and the first
	// bulk transition fired it once (the others had its key); nobody
	// archived or deleted another tenant's token or workflow.
	for tn, id := range w.token {
		want := before[tn] + 2*3*3 + 1 + 1
		if got := testkit.Must(ops.GetToken(c, id)); got.Revision != want || got.ArchivedAt != nil {
			t.Errorf("%s's token at revision %d (archived at %v), want %d", tn, got.Revision, got.ArchivedAt, want)
		}
		if _, err := ops.GetWorkflow(c, w.wf[tn]); err != nil {
			t.Errorf("%s's workflow: %v", tn, err)
		}
	}
	t.Logf("%d GraphQL operations checked", requests)
}

func roleRank(r string) int {
	for i, x := range roles {
		if x == r {
			return i
		}
	}
	return -1
}

// TestTenantQuotas: the auth file's quotas hold over GraphQL and, through
// the services, over NATS: a tenant at maxWorkflows or maxLiveTokens gets
// RESOURCE_EXHAUSTED naming the quota, one over requestsPerSecond too; a
// reloaded file changes them without a restart.
func TestTenantQuotas(t *testing.T) {
	quotas := `  - {name: gamma-viewer, key: gamma-viewer, tenant: gamma, role: viewer}
tenants:
  acme: {maxWorkflows: 2}
  beta: {maxLiveTokens: 3}
  gamma: {requestsPerSecond: 5}
`
	st, ops, a, path := tenantStack(t, quotas)
	c := ctx(t)
	exhausted := func(a answer, quota string) bool {
		return a.code == "RESOURCE_EXHAUSTED" && strings.Contains(a.message, "("+quota+")")
	}
	// The edge publishes the quotas as it starts; the services apply them
	// as they see them, so the first creates may still pass.
	i := 0
	testkit.Poll(t, 10*time.Second, "acme's maxWorkflows applies", func() bool {
		i++
		q := fmt.Sprintf(`mutation{ createWorkflow(input:{id:"w%d", name:"w", places:["a"], initialPlace:"a", transitions:[]}){ id } }`, i)
		return exhausted(overPOST(t, st.GraphQL, "acme-admin", q, nil), "maxWorkflows")
	})
	if n := len(testkit.Must(ops.As("acme").ListWorkflows(c, wire.Page{})).Items); n < 2 {
		t.Fatalf("acme refused at %d workflows, its quota is 2", n)
	}
	if _, err := ops.As("acme").CreateWorkflow(c, race("over")); !errors.Is(err, fail.ErrResourceExhausted) {
		t.Fatalf("acme over NATS at its quota: %v", err)
	}
	testkit.Must(ops.As("beta").CreateWorkflow(c, race("orders")))
	testkit.Poll(t, 10*time.Second, "beta's maxLiveTokens applies", func() bool {
		return exhausted(overPOST(t, st.GraphQL, "beta-operator", `mutation{ createToken(input:{workflowId:"orders"}){ id } }`, nil), "maxLiveTokens")
	})
	if n := len(testkit.Must(ops.As("beta").ListTokens(c, "orders", wire.Page{})).Items); n < 3 {
		t.Fatalf("beta refused at %d tokens, its quota is 3", n)
	}
	if _, err := ops.As("beta").CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "orders"}); !errors.Is(err, fail.ErrResourceExhausted) {
		t.Fatalf("beta over NATS at its quota: %v", err)
	}
	refused := 0
	for range 30 {
		if exhausted(overPOST(t, st.GraphQL, "gamma-viewer", `{ workflows { id } }`, nil), "requestsPerSecond") {
			refused++
		}
	}
	if refused == 0 || refused > 25 {
		t.Fatalf("gamma (5/s) had %d of 30 quick requests refused", refused)
	}
	// A reloaded auth file lifts beta's quota: the services follow.
	b := testkit.Must(os.ReadFile(path))
	testkit.Must(0, os.WriteFile(path, []byte(strings.Replace(string(b), "maxLiveTokens: 3", "maxLiveTokens: 100", 1)), 0o600))
	testkit.Must(a.Reload())
	testkit.Poll(t, 10*time.Second, "beta's raised quota applies", func() bool {
		_, err := ops.As("beta").CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "orders"})
		return err == nil
	})
	t.Logf("gamma: %d of 30 requests over 5/s refused", refused)
}
