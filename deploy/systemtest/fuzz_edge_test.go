package systemtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzGraphQLEdge posts arbitrary documents and variables to the real
// edge: every answer must have a status of the edge's matrix for a JSON
// POST, a JSON body, no INTERNAL error and no Go or NATS text, within
// fuzzEdgeBound. variablesJSON is spliced in as it is ("" leaves it out),
// so broken JSON reaches the edge too.
func FuzzGraphQLEdge(f *testing.F) {
	for _, seed := range edgeSeeds() {
		f.Add(seed[0], seed[1])
	}
	fx := startFuzz(f)
	f.Fuzz(func(t *testing.T, document, variablesJSON string) {
		document, variablesJSON = fx.expand(document), fx.expand(variablesJSON)
		body, _ := json.Marshal(document)
		if variablesJSON != "" {
			body = fmt.Appendf(nil, `{"query":%s,"variables":%s}`, body, variablesJSON)
		} else {
			body = fmt.Appendf(nil, `{"query":%s}`, body)
		}
		fx.postChecked(t, body, document, variablesJSON)
	})
}

// FuzzCursorsAndIDs sends arbitrary workflow ids, token ids and cursors
// as variables of every query that takes them, with the assertions of
// FuzzGraphQLEdge.
func FuzzCursorsAndIDs(f *testing.F) {
	for _, seed := range cursorSeeds() {
		f.Add(seed[0], seed[1], seed[2])
	}
	fx := startFuzz(f)
	f.Fuzz(func(t *testing.T, workflowID, tokenID, after string) {
		vars := map[string]string{"w": fx.expand(workflowID), "t": fx.expand(tokenID), "a": fx.expand(after)}
		for _, doc := range cursorDocuments {
			body, err := json.Marshal(map[string]any{"query": doc, "variables": vars})
			if err != nil {
				t.Fatal(err)
			}
			fx.postChecked(t, body, vars["w"], vars["t"], vars["a"])
		}
	})
}

// cursorDocuments are the queries FuzzCursorsAndIDs sends, each with the
// variables $w (a workflow id), $t (a token id) and $a (a cursor). They
// are split so that one field's error cannot hide another's.
var cursorDocuments = []string{
	`query($w:String!,$t:String!,$a:String!){
	  workflow(id:$w){ id places }
	  workflows(after:$a, first:3){ id }
	  tokens(workflowId:$w, after:$a, first:2){ id cursor natsSequence }
	  eventSubscriptions(workflowId:$w){ name pending }
	  workflowStats(workflowId:$w){ tokens events }
	  u: workflow(id:$t){ id }
	  v: workflow(id:$a){ id } }`,
	`query($w:String!,$t:String!,$a:String!){
	  token(id:$t){ id cursor revision workflow { id } }
	  natsToken(id:$t){ id natsSubject }
	  findToken(workflowId:$w, tokenId:$t){ id place }
	  availableTransitions(tokenId:$t){ id }
	  transitionEvaluations(tokenId:$t){ transitionId canFire ruleResults { ruleId passed } }
	  x: token(id:$a){ id }
	  y: findToken(workflowId:$a, tokenId:$w){ id } }`,
	`query($w:String!,$t:String!,$a:String!){
	  everywhere: tokens(after:$a, first:2){ id cursor }
	  tokensInPlace(workflowId:$w, placeId:"a", after:$a, first:2){ id cursor }
	  inPlaceT: tokensInPlace(workflowId:$w, placeId:$t, after:$a){ id } }`,
	`query($w:String!,$t:String!,$a:String!){
	  events(workflowId:$w, tokenId:$t, afterSequence:$a, first:3){ sequence eventType }
	  byTime: events(workflowId:$w, since:$a, until:$a){ sequence }
	  byType: events(workflowId:$w, eventTypes:[$t], afterSequence:$a){ sequence } }`,
}

// postChecked posts a GraphQL request body and checks the answer; input
// is what the client sent, which an error message may quote.
func (fx *fuzzFixture) postChecked(t *testing.T, body []byte, input ...string) {
	t.Helper()
	status, raw, took, err := fx.post(body)
	if err != nil {
		t.Fatalf("no answer after %v: %v\nbody: %.2000s", took, err, body)
	}
	if took > fuzzEdgeBound {
		t.Fatalf("answered after %v, more than %v\nbody: %.2000s", took, fuzzEdgeBound, body)
	}
	if problem := edgeProblem(status, raw, input); problem != "" {
		t.Fatalf("%s\nstatus %d, answer: %.2000s\nbody: %.2000s", problem, status, raw, body)
	}
	checkHeap(t, "GraphQL request")
}

// post sends body to the edge as a GraphQL-over-HTTP client would.
func (fx *fuzzFixture) post(body []byte) (int, []byte, time.Duration, error) {
	req, err := http.NewRequest(http.MethodPost, fx.s.stack.GraphQL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/graphql-response+json, application/json;q=0.9")
	start := time.Now()
	resp, err := fx.http.Do(req)
	if err != nil {
		return 0, nil, time.Since(start), err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, time.Since(start), err
}

// edgeStatus reports whether the edge's matrix (edge/gql/http.go) has
// status for a JSON POST accepting application/graphql-response+json
// from a client with one request at a time: 200, 400 for request errors,
// 413 for a body over the limit. (405, 406 and 415 need another method
// or header; 429 and 503 more requests at once.)
func edgeStatus(status int) bool {
	switch status {
	case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return true
	}
	return false
}

// edgeProblem describes what is wrong with an answer, or returns "".
func edgeProblem(status int, raw []byte, input []string) string {
	if !edgeStatus(status) {
		return fmt.Sprintf("status %d is not one of the edge's", status)
	}
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return "the body is not a JSON response: " + err.Error()
	}
	if len(r.Errors) == 0 && (status != http.StatusOK || len(r.Data) == 0) {
		return "neither data nor errors"
	}
	for _, e := range r.Errors {
		if e.Extensions["code"] == "INTERNAL" {
			return "INTERNAL reached the client: " + e.Message
		}
		if l := leak(e.Message, input...); l != "" {
			return fmt.Sprintf("message %q carries %q", e.Message, l)
		}
	}
	return ""
}

// edgeSeeds are documents and variables of every shape a client sends:
// the repository's queries and mutations, fragments, directives, bad
// JSON, deep nesting, many aliases, and the known attacks.
func edgeSeeds() [][2]string {
	return append(append(edgeMutationSeeds(), edgeQuerySeeds()...), edgeAttackSeeds()...)
}

// fuzzTokenFields selects every field of a Token but its workflow.
const fuzzTokenFields = `id place data metadata revision cursor natsSequence natsSubject natsTimestamp
  transitionHistory { fromPlace toPlace transitionId timestamp triggeredBy natsSequence metadata }
  history { transition fromPlace toPlace timestamp data }`

// edgeMutationSeeds are the mutations of the repository's tests, on the
// seeded objects.
func edgeMutationSeeds() [][2]string {
	const tok = fuzzTokenFields
	return [][2]string{
		{`{ workflows { id name places initialPlace transitions { id fromPlaces toPlace conditions rules { id condition } } analysis { unreachablePlaces terminalPlaces deadTransitions } } }`, ``},
		{`mutation { createWorkflow(input: {name: "NATS Document Review", description: "d", places: ["draft", "review", "approved"], initialPlace: "draft",
		  transitions: [{id: "submit", fromPlaces: ["draft"], toPlace: "review", conditions: []},
		    {id: "approve", fromPlaces: ["review"], toPlace: "approved", rules: [{id: "r1", condition: {type: FieldGreaterThan, field: "score", value: 5}}]}]
		}) { id name places initialPlace transitions { id fromPlaces toPlace } } }`, ``},
		{`mutation($in: WorkflowDefinitionInput!) { createWorkflow(input: $in) { id version } }`,
			`{"in":{"id":"fz_new","name":"n","places":["a","b"],"initialPlace":"a","transitions":[{"id":"t","fromPlaces":["a"],"toPlace":"b",
			"rules":[{"id":"e","condition":{"type":"Expression","script":"data.x > 1"}},{"id":"n","condition":{"type":"Not","rule":{"id":"m","condition":{"type":"FieldExists","field":"y"}}}}]}]}}`},
		{`mutation CreateWorkflowInstance($input: CreateWorkflowInstanceInput!) { createWorkflowInstance(input: $input) { ` + tok + ` } }`,
			`{"input":{"workflowId":"fz","initialData":{"title":"Spec","amount":20,"s":"abc","tags":["x"]},"metadata":{"department":"eng"},"triggeredBy":"nats_demo"}}`},
		{`mutation($input: TokenCreateInput!) { createToken(input: $input) { ` + tok + ` } }`,
			`{"input":{"workflowId":"fz","initialPlace":"c","data":{"a":{"b":[1,2,{"c":null}]}},"idempotencyKey":"k1"}}`},
		{`mutation TransitionWithNATS($input: TransitionTokenWithNATSInput!) { transitionTokenWithNats(input: $input) { ` + tok + ` } }`,
			`{"input":{"tokenId":"TOKEN1","transitionId":"back","newPlace":"a","triggeredBy":"fuzz","data":{"amount":30}}}`},
		{`mutation($input: TransitionFireInput!) { fireTransition(input: $input) { id place revision } }`,
			`{"input":{"tokenId":"TOKEN0","transitionId":"go","data":{"s":"xyz"},"replaceData":false,"expectedRevision":1}}`},
		{`mutation($id:String!){ updateToken(input: {tokenId: $id, metadata: {payment_method: "credit_card"}, data: {amount: 99}, expectedRevision: 2147483647}) { id revision metadata } }`,
			`{"id":"TOKEN0"}`},
	}
}

// edgeQuerySeeds are the queries of the repository's tests: fragments,
// variables, directives, introspection, paging.
func edgeQuerySeeds() [][2]string {
	return [][2]string{
		{`query Q($id: String!) { token(id: $id) { ...T workflow { ...W } } natsToken(id: $id) { ...T } }
		  fragment T on Token { id place ...H } fragment H on Token { history { transition } }
		  fragment W on Workflow { id transitions { ... on Transition { id rules { id } } } }`, `{"id":"TOKEN0"}`},
		{`query($id:String!){ availableTransitions(tokenId:$id) { id } transitionEvaluations(tokenId:$id) { transitionId placeCompatible rulesPassed canFire explanation ruleResults { ruleId passed explanation subResults { ruleId passed } } } }`,
			`{"id":"TOKEN0"}`},
		{`query($w:String!,$p:String!,$a:String){ tokensInPlace(workflowId:$w, placeId:$p, first:1, after:$a) { id cursor } findToken(workflowId:$w, tokenId:"TOKEN1") { place } }`,
			`{"w":"fz","p":"a","a":"CURSOR0"}`},
		{`query($t:String,$a:String){ events(workflowId:"fz", tokenId:$t, afterSequence:$a, eventTypes:["token_transitioned","token_created"], first:5) { eventType workflowId tokenId place fromPlace toPlace transitionId timestamp triggeredBy natsSequence revision sequence } }`,
			`{"t":"TOKEN1","a":"1"}`},
		{`{ workflowStats(workflowId:"fz", windowMinutes:60) { workflowId tokens tokensPerPlace { place count } events eventsPerType { eventType count } windowMinutes transitionsInWindow transitionsPerMinute } }`, `{}`},
		{`mutation { createEventSubscription(input:{workflowId:"fz", name:"crm", deliver:"sequence", startSequence:"2"}) { name stream consumer filter maxDeliver pending ackPending redelivered ackFloor } }`, `null`},
		{`mutation { deleteEventSubscription(workflowId:"fz", name:"crm") }`, ``},
		{`query($skip:Boolean!){ workflow(id:"fz") { id @skip(if:$skip) name @include(if:true) __typename } }`, `{"skip":"yes"}`},
		{`{ __schema { queryType { name } types { name kind fields(includeDeprecated:true) { name args { name type { name ofType { name } } } } } } }`, ``},
		{`{ __type(name:"Token") { name fields { name type { kind ofType { kind name } } } } }`, `{"x":1}`},
	}
}

// edgeAttackSeeds are broken and hostile requests: ambiguous operations,
// a subscription over POST, out-of-range numbers and cursors, wildcards,
// bad escapes, broken JSON, wrong variable types, many aliases, deep
// nesting and fragment fan-out.
func edgeAttackSeeds() [][2]string {
	return [][2]string{
		{`query A { workflows { id } } query B { tokens { id } }`, `{}`},
		{`subscription { workflowEvents(workflowId:">") { sequence } }`, `{}`},
		{`{ workflows(first:2147483648) { id } tokens(first:-1) { id } }`, ``},
		{`query($n:Int){ workflows(first:$n) { id } }`, `{"n":18446744073709551615}`},
		{`{ events(workflowId:"fz", afterSequence:"18446744073709551615") { sequence } tokens(after:"fz/18446744073709551615") { id } }`, ``},
		{`{ events(workflowId:">", since:"2262-04-12T00:00:00Z", until:"0001-01-01T00:00:00Z") { sequence } }`, ``},
		{`mutation { fireTransition(input:{tokenId:"TOKEN0", transitionId:"tick", expectedRevision:-1}) { id } }`, ``},
		{`{ token(id: "\uD800\u0000 ü 😀") { id } workflow(id: "a.b.>") { id } }`, `{"":{"\u0000":[]}}`},
		{`{ workflows { id `, `{"id":`},
		{`}}}{{{`, `[1,2,3]`},
		{`query($id: String!) { token(id: $id) { id } }`, `{"id": 5}`},
		{`query($d: JSON) { workflows { id } }`, `{"d": 1e400}`},
		{``, `"x"`},
		{aliasSeed(40), ``},
		{nestedSeed(200), ``},
		{`mutation($d: JSON) { updateToken(input:{tokenId:"TOKEN1", data:$d}) { id } }`, `{"d":` + strings.Repeat(`{"a":`, 300) + `1` + strings.Repeat(`}`, 300) + `}`},
		{fragmentSeed(20), ``},
		{`{ workflows { ...F } } fragment F on Workflow { id ...G } fragment G on Workflow { ...F }`, ``},
	}
}

// aliasSeed is a document of n aliases of one field.
func aliasSeed(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, " a%d: workflow(id:\"fz\") { id }", i)
	}
	return b.String() + " }"
}

// nestedSeed is a selection nested n levels deep.
func nestedSeed(n int) string {
	return `{ token(id:"TOKEN0") ` + strings.Repeat("{ workflow ", n) + strings.Repeat("}", n) + ` }`
}

// fragmentSeed is a chain of n fragments, each spreading the next twice.
func fragmentSeed(n int) string {
	var b strings.Builder
	b.WriteString(`{ token(id:"TOKEN0") { ...F0 } }`)
	for i := range n {
		fmt.Fprintf(&b, " fragment F%d on Token { id ...F%d ...F%d }", i, i+1, i+1)
	}
	fmt.Fprintf(&b, " fragment F%d on Token { id }", n)
	return b.String()
}

// cursorSeeds are workflow ids, token ids and cursors: real ones, the
// last sequence, wildcards, dots, spaces, unicode, over-long, negative,
// and cursors of the wrong workflow.
func cursorSeeds() [][3]string {
	long := strings.Repeat("w", 129)
	return [][3]string{
		{fuzzWorkflow, "TOKEN0", ""},
		{fuzzWorkflow, "TOKEN0", "CURSOR0"},
		{fuzzWorkflow, "TOKEN1", "2"},
		{fuzzWorkflow, "TOKEN0", "18446744073709551615"},
		{fuzzWorkflow, "TOKEN0", "18446744073709551616"},
		{fuzzWorkflow, "TOKEN0", "fz/18446744073709551615"},
		{fuzzWorkflow, "TOKEN0", "-1"},
		{fuzzWorkflow, "TOKEN0", "0"},
		{fuzzWorkflow, "TOKEN0", "other/3"},
		{fuzzWorkflow, "TOKEN0", "/"},
		{fuzzWorkflow, "TOKEN0", "2262-04-12T00:00:00Z"},
		{fuzzWorkflow, "TOKEN0", "0001-01-01T00:00:00Z"},
		{">", "*", "fz/>"},
		{"fz.x", "tok en", " 1"},
		{"", "", ""},
		{"acme::orders", "123E4567-E89B-12D3-A456-426614174000", "acme::orders/1"},
		{"nope", "123e4567-e89b-12d3-a456-426614174000", "nope/1"},
		{"ünïcödé", "😀", "\u0000"},
		{long, long, long},
		{"fz\n", "TOKEN0\t", "1e3"},
	}
}
