package systemtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// lastSeq is the last stream sequence there can be: a cursor at it used
// to wrap to 0 (cursor+1) and fail INTERNAL.
const lastSeq = "18446744073709551615"

// leaks are texts that must never reach a client: Go type names from JSON
// decoding, and NATS client errors.
var leaks = []string{"wire.", "Go struct", "Go value", "nats:", "json:"}

// natsReply is a raw NATS request's outcome: the micro error code ("" on
// success), the error message and the body.
type natsReply struct {
	code, msg string
	data      []byte
}

// rawRequest sends body as it is to subject, as a client of another
// language would.
func rawRequest(t *testing.T, s *system, subject, body string) natsReply {
	t.Helper()
	m := testkit.Must(s.nc.RequestWithContext(ctx(t), subject, []byte(body)))
	return natsReply{code: m.Header.Get(micro.ErrorCodeHeader), msg: m.Header.Get(micro.ErrorHeader), data: m.Data}
}

// lastSequence is the last sequence of a workflow's stream: unchanged by a
// request that must change nothing.
func lastSequence(t *testing.T, s *system, wf string) uint64 {
	t.Helper()
	c := ctx(t)
	return testkit.Must(testkit.Must(s.stackJS().Stream(c, subjects.StreamName(wf))).Info(c)).State.LastSeq
}

// noLeak fails the test if msg carries a Go type name or NATS error text.
func noLeak(t *testing.T, what, msg string) {
	t.Helper()
	for _, l := range leaks {
		if strings.Contains(msg, l) {
			t.Errorf("%s: message %q contains %q", what, msg, l)
		}
	}
}

// count decodes a GraphQL list field and returns its length.
func count(t *testing.T, r *gqlResult, field string) int {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %+v", r.Errors)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(r.Data[field], &items); err != nil {
		t.Fatalf("data.%s: %v (%s)", field, err, r.Data[field])
	}
	return len(items)
}

// TestHostileCursorAtLastSequence: a cursor at the last possible sequence
// is past the end: an empty page on every list, over GraphQL and NATS
// (it failed INTERNAL, "sequence number has to be greater than 0"); on an
// unknown workflow it is still NOT_FOUND.
func TestHostileCursorAtLastSequence(t *testing.T) {
	s := start(t, "")
	seedEvents(t, s, "lastseq", 2)
	vars := map[string]any{"a": lastSeq}
	for field, q := range map[string]string{
		"events":        `query($a:String){ events(workflowId:"lastseq", afterSequence:$a) { sequence } }`,
		"tokens":        `query($a:String){ tokens(workflowId:"lastseq", after:$a) { id } }`,
		"tokensInPlace": `query($a:String){ tokensInPlace(workflowId:"lastseq", placeId:"b", after:$a) { id } }`,
	} {
		if n := count(t, s.gql(t, q, vars), field); n != 0 {
			t.Errorf("%s after %s: %d items, want none", field, lastSeq, n)
		}
	}
	if n := count(t, s.gql(t, `{ tokens(after:"lastseq/`+lastSeq+`") { id } }`, nil), "tokens"); n != 0 {
		t.Errorf("tokens after lastseq/%s: %d items, want none", lastSeq, n)
	}
	for _, subj := range []string{subjects.EventHistory.In(subjects.AllTenants), subjects.EventReplay.In(subjects.AllTenants)} {
		r := rawRequest(t, s, subj, `{"workflowId":"lastseq","afterSequence":`+lastSeq+`}`)
		if r.code != "" || !jsonEqual(r.data, `{"items":[]}`) {
			t.Errorf("%s after %s: code %q %q, body %s; want an empty page", subj, lastSeq, r.code, r.msg, r.data)
		}
	}
	r := rawRequest(t, s, subjects.TokenList.In(subjects.AllTenants), `{"workflowId":"lastseq","after":"`+lastSeq+`"}`)
	if r.code != "" || !jsonEqual(r.data, `{"items":[]}`) {
		t.Errorf("token list after %s: code %q %q, body %s; want an empty page", lastSeq, r.code, r.msg, r.data)
	}
	s.fails(t, `query($a:String){ events(workflowId:"nope", afterSequence:$a) { sequence } }`, vars, "NOT_FOUND", "Workflow not found: nope")
	if r := rawRequest(t, s, subjects.EventHistory.In(subjects.AllTenants), `{"workflowId":"nope","afterSequence":`+lastSeq+`}`); r.code != "404" {
		t.Errorf("history of an unknown workflow after %s: code %q %q, want 404", lastSeq, r.code, r.msg)
	}
}

// TestHostileFirstNegative: a negative page size is BAD_USER_INPUT on
// every list (tokens without a workflow ignored it and answered a page).
func TestHostileFirstNegative(t *testing.T) {
	s := start(t, "")
	seedEvents(t, s, "firsts", 1)
	for _, q := range []string{
		`{ tokens(first:-1) { id } }`,
		`{ tokens(workflowId:"firsts", first:-1) { id } }`,
		`{ tokensInPlace(workflowId:"firsts", placeId:"b", first:-1) { id } }`,
		`{ workflows(first:-1) { id } }`,
		`{ events(workflowId:"firsts", first:-1) { sequence } }`,
	} {
		s.fails(t, q, nil, "BAD_USER_INPUT", "first must not be negative")
	}
}

// TestHostileIntBeyond32Bits: an Int argument literal beyond 32 bits is
// the client's error, BAD_USER_INPUT (or GRAPHQL_VALIDATION_FAILED), on
// every field: argument coercion answered INTERNAL. As a variable it
// already was BAD_USER_INPUT.
func TestHostileIntBeyond32Bits(t *testing.T) {
	s := start(t, "")
	seedEvents(t, s, "bigint", 1)
	for _, q := range []string{
		`{ workflows(first:2147483648) { id } }`,
		`{ tokens(first:2147483648) { id } }`,
		`{ events(workflowId:"bigint", first:2147483648) { sequence } }`,
		`{ workflowStats(workflowId:"bigint", windowMinutes:2147483648) { tokens } }`,
		`query($n:Int){ workflows(first:$n) { id } }`,
	} {
		r := s.gql(t, q, map[string]any{"n": 2147483648})
		if c := r.code(); c != "BAD_USER_INPUT" && c != "GRAPHQL_VALIDATION_FAILED" {
			t.Errorf("%s: %+v, want BAD_USER_INPUT", q, r.Errors)
		}
	}
}

// TestHostileDecodeErrorsNameNoGoTypes: a request body of the wrong JSON
// type is BAD_USER_INPUT naming the JSON field and type, over NATS and
// GraphQL (it said "json: cannot unmarshal string into Go struct field
// FireRequest.expectedRevision of type uint64"), and fires nothing.
func TestHostileDecodeErrorsNameNoGoTypes(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	testkit.Must(s.c.CreateWorkflow(c, race("decode")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "decode"}))
	before := lastSequence(t, s, "decode")
	for body, want := range map[string]string{
		`{"tokenId":"` + tok.ID + `","transitionId":"tick","expectedRevision":"x"}`: "invalid request body: field expectedRevision must be an integer",
		`{"workflowId":"decode","first":"x"}`:                                       "invalid request body: field first must be an integer",
		`[]`:                                                                        "invalid request body: the body must be an object",
		`{"tokenId":`:                                                               "invalid request body: invalid JSON at offset",
	} {
		subj := subjects.TokenFire.In(subjects.AllTenants)
		if strings.Contains(body, "first") {
			subj = subjects.TokenList.In(subjects.AllTenants)
		}
		r := rawRequest(t, s, subj, body)
		if r.code != "400" || !strings.HasPrefix(r.msg, want) {
			t.Errorf("%s %s: %q %q, want 400 %q", subj, body, r.code, r.msg, want)
		}
		noLeak(t, body, r.msg)
	}
	gr := s.gql(t, `mutation($t:String!){ fireTransition(input:{tokenId:$t, transitionId:"tick", expectedRevision:-1}) { place } }`,
		map[string]any{"t": tok.ID})
	if gr.code() != "BAD_USER_INPUT" || !strings.Contains(gr.Errors[0].Message, "field expectedRevision must be an integer between 0 and") {
		t.Errorf("fireTransition(expectedRevision: -1): %+v", gr.Errors)
	} else {
		noLeak(t, "fireTransition", gr.Errors[0].Message)
	}
	if after := lastSequence(t, s, "decode"); after != before {
		t.Fatalf("stream moved from %d to %d on undecodable requests", before, after)
	}
}

// TestHostileFarTimes: a since after every time JetStream can store
// selects nothing (2262-04-12 overflowed int64 nanoseconds and selected
// everything), an until before every stored time selects nothing (year 1
// read as "absent"), and a since before 1970 selects everything (it
// overflowed and selected nothing).
func TestHostileFarTimes(t *testing.T) {
	s := start(t, "")
	seedEvents(t, s, "times", 2)
	all := count(t, s.gql(t, `{ events(workflowId:"times") { sequence } }`, nil), "events")
	for _, tc := range []struct {
		args string
		want int
	}{
		{`since:"2262-04-12T00:00:00Z"`, 0},
		{`since:"9999-12-31T23:59:59Z"`, 0},
		{`since:"2262-04-12T00:00:00Z", afterSequence:"1"`, 0},
		{`until:"0001-01-01T00:00:00Z"`, 0},
		{`until:"1000-01-01T00:00:00Z"`, 0},
		{`since:"1000-01-01T00:00:00Z"`, all},
		{`since:"0001-01-01T00:00:00Z"`, all},
		{`since:"1970-01-01T00:00:00Z", until:"9999-12-31T23:59:59Z"`, all},
	} {
		q := `{ events(workflowId:"times", ` + tc.args + `) { sequence } }`
		if n := count(t, s.gql(t, q, nil), "events"); n != tc.want {
			t.Errorf("events(%s): %d events, want %d", tc.args, n, tc.want)
		}
	}
	for body, want := range map[string]string{
		`{"workflowId":"times","since":"2262-04-12T00:00:00Z"}`: `{"items":[]}`,
		`{"workflowId":"times","until":"1000-01-01T00:00:00Z"}`: `{"items":[]}`,
	} {
		if r := rawRequest(t, s, subjects.EventHistory.In(subjects.AllTenants), body); r.code != "" || !jsonEqual(r.data, want) {
			t.Errorf("history %s: code %q %q, body %s; want %s", body, r.code, r.msg, r.data, want)
		}
	}
	if r := rawRequest(t, s, subjects.EventReplay.In(subjects.AllTenants), `{"workflowId":"times","since":"2262-04-12T00:00:00Z"}`); r.code != "" || !jsonEqual(r.data, `{"items":[]}`) {
		t.Errorf("replay since 2262: code %q %q, body %s", r.code, r.msg, r.data)
	}
}

// TestHostileEmptyNewPlace: transitionTokenWithNats with newPlace "" is
// BAD_USER_INPUT and fires nothing, over GraphQL and NATS (it fired
// without the place check).
func TestHostileEmptyNewPlace(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	testkit.Must(s.c.CreateWorkflow(c, race("newplace")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "newplace"}))
	before := lastSequence(t, s, "newplace")
	s.fails(t, `mutation($t:String!){ transitionTokenWithNats(input:{tokenId:$t, transitionId:"tick", newPlace:""}) { place } }`,
		map[string]any{"t": tok.ID}, "BAD_USER_INPUT", "newPlace must not be empty")
	r := rawRequest(t, s, subjects.TokenFire.In(subjects.AllTenants), `{"tokenId":"`+tok.ID+`","transitionId":"tick","newPlace":""}`)
	if r.code != "400" || r.msg != "newPlace must not be empty" {
		t.Errorf("fire with newPlace \"\" over NATS: %q %q, want 400 newPlace must not be empty", r.code, r.msg)
	}
	if after := lastSequence(t, s, "newplace"); after != before {
		t.Fatalf("stream moved from %d to %d: a fire with an empty newPlace went through", before, after)
	}
	moved := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "to_b", NewPlace: "b"}))
	if moved.Place != "b" {
		t.Fatalf("fire with newPlace b: place %q", moved.Place)
	}
}

// TestHostileSubscriptionQuota: a workflow holds at most 100 durable
// subscriptions (the default of --event-max-subscriptions); the next is
// RESOURCE_EXHAUSTED over NATS and GraphQL, counted in a metric, and
// creates no consumer. Asking again for an existing name stays OK, and a
// deleted subscription frees its place. (1,000 names exhausted the
// stream's consumers.)
func TestHostileSubscriptionQuota(t *testing.T) {
	const quota = 100
	s, c := start(t, ""), ctx(t)
	testkit.Must(s.c.CreateWorkflow(c, race("quota")))
	for i := range quota {
		testkit.Must(s.c.CreateSubscription(c, &wire.SubscribeRequest{WorkflowID: "quota", Name: fmt.Sprintf("s%d", i)}))
	}
	refusedBefore := metric(t, s, "cb_event_subscriptions_refused_total")
	_, err := s.c.CreateSubscription(c, &wire.SubscribeRequest{WorkflowID: "quota", Name: "one_more"})
	want := fmt.Sprintf("event subscription quota reached: at most %d durable subscriptions per workflow", quota)
	if !errors.Is(err, fail.ErrResourceExhausted) || err.Error() != want {
		t.Fatalf("subscription %d: %v (%v), want RESOURCE_EXHAUSTED %q", quota+1, err, fail.KindOf(err), want)
	}
	s.fails(t, `mutation { createEventSubscription(input:{workflowId:"quota", name:"gql_more"}) { name } }`, nil,
		"RESOURCE_EXHAUSTED", want)
	if n := metric(t, s, "cb_event_subscriptions_refused_total") - refusedBefore; n != 2 {
		t.Errorf("refusals counted: %d, want 2", n)
	}
	if _, err := s.stackJS().Consumer(c, subjects.StreamName("quota"), "sub_one_more"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("a refused subscription left a consumer: %v", err)
	}
	if _, err := s.c.CreateSubscription(c, &wire.SubscribeRequest{WorkflowID: "quota", Name: "s7"}); err != nil {
		t.Fatalf("asking again for an existing subscription at the quota: %v", err)
	}
	if n := len(testkit.Must(s.c.Subscriptions(c, "quota")).Items); n != quota {
		t.Fatalf("%d subscriptions, want %d", n, quota)
	}
	if err := s.c.DeleteSubscription(c, "quota", "s0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.CreateSubscription(c, &wire.SubscribeRequest{WorkflowID: "quota", Name: "one_more"}); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
}

// noInternalCase is a bad input sent as a GraphQL document or as a raw
// NATS request body.
type noInternalCase struct {
	name    string
	query   string // GraphQL, when set
	subject string // else a NATS subject, with body
	body    string
}

// hostileInputs are the bad inputs of issue 12 (parts 6 and 7); "tok" in
// a body or query is replaced by a real token's id.
func hostileInputs() []noInternalCase {
	return []noInternalCase{
		{name: "events of workflow >", query: `{ events(workflowId:">") { sequence } }`},
		{name: "events of an unknown workflow", query: `{ events(workflowId:"nope") { sequence } }`},
		{name: "events after the last sequence", query: `{ events(workflowId:"ni", afterSequence:"` + lastSeq + `") { sequence } }`},
		{name: "events after 2^64", query: `{ events(workflowId:"ni", afterSequence:"18446744073709551616") { sequence } }`},
		{name: "events since 2262", query: `{ events(workflowId:"ni", since:"2262-04-12T00:00:00Z") { sequence } }`},
		{name: "events until year 1", query: `{ events(workflowId:"ni", until:"0001-01-01T00:00:00Z") { sequence } }`},
		{name: "events since garbage", query: `{ events(workflowId:"ni", since:"yesterday") { sequence } }`},
		{name: "workflows first 2^31", query: `{ workflows(first:2147483648) { id } }`},
		{name: "workflows first -1", query: `{ workflows(first:-1) { id } }`},
		{name: "tokens first -1", query: `{ tokens(first:-1) { id } }`},
		{name: "tokens after the last sequence", query: `{ tokens(workflowId:"ni", after:"` + lastSeq + `") { id } }`},
		{name: "tokensInPlace of place empty", query: `{ tokensInPlace(workflowId:"ni", placeId:"") { id } }`},
		{name: "tokensInPlace after the last sequence", query: `{ tokensInPlace(workflowId:"ni", placeId:"a", after:"` + lastSeq + `") { id } }`},
		{name: "workflowStats window 2^31", query: `{ workflowStats(workflowId:"ni", windowMinutes:2147483648) { tokens } }`},
		{name: "fireTransition revision -1", query: `mutation { fireTransition(input:{tokenId:"tok", transitionId:"tick", expectedRevision:-1}) { id } }`},
		{name: "transitionTokenWithNats newPlace empty", query: `mutation { transitionTokenWithNats(input:{tokenId:"tok", transitionId:"tick", newPlace:""}) { id } }`},
		{name: "createEventSubscription of workflow >", query: `mutation { createEventSubscription(input:{workflowId:">", name:"x"}) { name } }`},
		{name: "eventSubscriptions of workflow >", query: `{ eventSubscriptions(workflowId:">") { name } }`},

		{name: "history after the last sequence", subject: subjects.EventHistory.In(subjects.AllTenants), body: `{"workflowId":"ni","afterSequence":` + lastSeq + `}`},
		{name: "replay after the last sequence", subject: subjects.EventReplay.In(subjects.AllTenants), body: `{"workflowId":"ni","afterSequence":` + lastSeq + `}`},
		{name: "history of workflow >", subject: subjects.EventHistory.In(subjects.AllTenants), body: `{"workflowId":">"}`},
		{name: "history since a number", subject: subjects.EventHistory.In(subjects.AllTenants), body: `{"workflowId":"ni","since":5}`},
		{name: "history since 2262", subject: subjects.EventHistory.In(subjects.AllTenants), body: `{"workflowId":"ni","since":"2262-04-12T00:00:00Z"}`},
		{name: "stats of workflow >", subject: subjects.EventStats.In(subjects.AllTenants), body: `{"workflowId":">"}`},
		{name: "subscribe to workflow >", subject: subjects.EventSubscribe.In(subjects.AllTenants), body: `{"workflowId":">","name":"x"}`},
		{name: "subscriptions of workflow *", subject: subjects.EventSubscriptions.In(subjects.AllTenants), body: `{"workflowId":"*"}`},
		{name: "unsubscribe of workflow >", subject: subjects.EventUnsubscribe.In(subjects.AllTenants), body: `{"workflowId":">","name":"x"}`},
		{name: "token list after the last sequence", subject: subjects.TokenList.In(subjects.AllTenants), body: `{"workflowId":"ni","after":"` + lastSeq + `"}`},
		{name: "token list first 1e20", subject: subjects.TokenList.In(subjects.AllTenants), body: `{"workflowId":"ni","first":99999999999999999999}`},
		{name: "token list of workflow >", subject: subjects.TokenList.In(subjects.AllTenants), body: `{"workflowId":">"}`},
		{name: "tokens in place >", subject: subjects.TokenInPlace.In(subjects.AllTenants), body: `{"workflowId":"ni","place":">"}`},
		{name: "tokens in place empty", subject: subjects.TokenInPlace.In(subjects.AllTenants), body: `{"workflowId":"ni","place":""}`},
		{name: "find in workflow >", subject: subjects.TokenFind.In(subjects.AllTenants), body: `{"workflowId":">","tokenId":"tok"}`},
		{name: "create in workflow >", subject: subjects.TokenCreate.In(subjects.AllTenants), body: `{"workflowId":">"}`},
		{name: "fire revision a string", subject: subjects.TokenFire.In(subjects.AllTenants), body: `{"tokenId":"tok","transitionId":"tick","expectedRevision":"x"}`},
		{name: "fire newPlace empty", subject: subjects.TokenFire.In(subjects.AllTenants), body: `{"tokenId":"tok","transitionId":"tick","newPlace":""}`},
		{name: "fire newPlace >", subject: subjects.TokenFire.In(subjects.AllTenants), body: `{"tokenId":"tok","transitionId":"tick","newPlace":">"}`},
		{name: "fire an array", subject: subjects.TokenFire.In(subjects.AllTenants), body: `[]`},
		{name: "update revision negative", subject: subjects.TokenUpdate.In(subjects.AllTenants), body: `{"tokenId":"tok","data":{},"expectedRevision":-1}`},
		{name: "workflow get id a number", subject: subjects.WorkflowGet.In(subjects.AllTenants), body: `{"id":5}`},
		{name: "workflow get id >", subject: subjects.WorkflowGet.In(subjects.AllTenants), body: `{"id":">"}`},
		{name: "workflow list first a string", subject: subjects.WorkflowList.In(subjects.AllTenants), body: `{"first":"x"}`},
	}
}

// TestNoInternalForClientInput: no bad input of a client is INTERNAL, over
// GraphQL or NATS, and no message names a Go type or carries NATS text.
func TestNoInternalForClientInput(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	testkit.Must(s.c.CreateWorkflow(c, race("ni")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "ni"})).ID
	before := lastSequence(t, s, "ni")
	for _, tc := range hostileInputs() {
		t.Run(tc.name, func(t *testing.T) {
			if tc.query != "" {
				r := s.gql(t, strings.ReplaceAll(tc.query, `"tok"`, `"`+tok+`"`), nil)
				if r.code() == "INTERNAL" {
					t.Errorf("INTERNAL: %+v", r.Errors)
				}
				for _, e := range r.Errors {
					noLeak(t, tc.query, e.Message)
				}
				return
			}
			r := rawRequest(t, s, tc.subject, strings.ReplaceAll(tc.body, `"tok"`, `"`+tok+`"`))
			if r.code == "500" || (r.code != "" && r.code[0] != '4') {
				t.Errorf("%s %s: code %s %q, want a 4xx or a reply", tc.subject, tc.body, r.code, r.msg)
			}
			noLeak(t, tc.body, r.msg)
		})
	}
	if after := lastSequence(t, s, "ni"); after != before {
		t.Fatalf("stream moved from %d to %d on bad input", before, after)
	}
}
