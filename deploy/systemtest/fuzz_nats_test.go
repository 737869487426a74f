package systemtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// fuzzEndpoints is every request subject a client may call: those of the
// workflow, token and event services (not the token writers' internal
// cb.token.writer.* subjects).
var fuzzEndpoints = []string{
	subjects.WorkflowCreate.In(subjects.AllTenants), subjects.WorkflowGet.In(subjects.AllTenants), subjects.WorkflowList.In(subjects.AllTenants),
	subjects.TokenCreate.In(subjects.AllTenants), subjects.TokenGet.In(subjects.AllTenants), subjects.TokenFind.In(subjects.AllTenants), subjects.TokenList.In(subjects.AllTenants), subjects.TokenInPlace.In(subjects.AllTenants),
	subjects.TokenAvailable.In(subjects.AllTenants), subjects.TokenFire.In(subjects.AllTenants), subjects.TokenUpdate.In(subjects.AllTenants),
	subjects.EventHistory.In(subjects.AllTenants), subjects.EventReplay.In(subjects.AllTenants), subjects.EventStats.In(subjects.AllTenants),
	subjects.EventSubscribe.In(subjects.AllTenants), subjects.EventSubscriptions.In(subjects.AllTenants), subjects.EventUnsubscribe.In(subjects.AllTenants),
	// Last: their seeds would otherwise destroy the objects others' seeds use.
	subjects.TokenArchive.In(subjects.AllTenants), subjects.TokenDelete.In(subjects.AllTenants), subjects.WorkflowDelete.In(subjects.AllTenants),
}

// FuzzNATSEndpoints sends arbitrary bodies to every endpoint: a reply must
// come within fuzzEdgeBound, never INTERNAL nor code 500, with no Go or
// NATS text in its message, and a JSON body when it is no error.
func FuzzNATSEndpoints(f *testing.F) {
	for _, seed := range natsSeeds() {
		f.Add(seed.endpoint, []byte(seed.body))
	}
	fx := startFuzz(f)
	f.Fuzz(func(t *testing.T, endpointIndex uint8, body []byte) {
		subject := fuzzEndpoints[int(endpointIndex)%len(fuzzEndpoints)]
		fx.requestChecked(t, subject, []byte(fx.expand(string(body))), fuzzEdgeBound)
	})
}

// FuzzRuleDefinitions creates a workflow whose one transition is guarded
// by the fuzzed rules (ruleJSON as a rule list, a rule, or, when it is not
// JSON, an Expression script), then a token with the fuzzed data, asks
// which transitions are available and fires: each call within
// fuzzRuleBound, never INTERNAL, and the heap under fuzzHeapLimit.
func FuzzRuleDefinitions(f *testing.F) {
	for _, seed := range ruleSeeds() {
		f.Add([]byte(seed[0]), []byte(seed[1]))
	}
	fx := startFuzz(f)
	f.Fuzz(func(t *testing.T, ruleJSON, dataJSON []byte) {
		rulesJSON := ruleList(ruleJSON)
		id := ruleWorkflowID(rulesJSON)
		create := fmt.Appendf(nil, `{"id":%q,"name":"fuzz","places":["a","b"],"initialPlace":"a",`+
			`"transitions":[{"id":"go","fromPlaces":["a"],"toPlace":"b","rules":%s}]}`, id, rulesJSON)
		call := func(subject string, body []byte) fuzzReply {
			return fx.requestChecked(t, subject, body, fuzzRuleBound, string(ruleJSON), string(dataJSON))
		}
		if r := call(subjects.WorkflowCreate.In(subjects.AllTenants), create); r.code != "" && r.code != "409" {
			return
		}
		r := call(subjects.TokenCreate.In(subjects.AllTenants), fmt.Appendf(nil, `{"workflowId":%q,"data":%s}`, id, jsonOrString(dataJSON)))
		var tok struct{ ID string }
		if r.code != "" || json.Unmarshal(r.data, &tok) != nil {
			return
		}
		call(subjects.TokenAvailable.In(subjects.AllTenants), fmt.Appendf(nil, `{"tokenId":%q}`, tok.ID))
		call(subjects.TokenFire.In(subjects.AllTenants), fmt.Appendf(nil, `{"tokenId":%q,"transitionId":"go"}`, tok.ID))
	})
}

// ruleList makes the rules of a transition of b: a JSON array as it is, any
// other JSON value as the only rule, anything else as an Expression script.
func ruleList(b []byte) []byte {
	trimmed := strings.TrimSpace(string(b))
	switch {
	case json.Valid(b) && strings.HasPrefix(trimmed, "["):
		return b
	case json.Valid(b):
		return fmt.Appendf(nil, "[%s]", b)
	}
	script, _ := json.Marshal(string(b))
	return fmt.Appendf(nil, `[{"id":"fuzzed","condition":{"type":"Expression","script":%s}}]`, script)
}

// ruleWorkflowID names the workflow of a rule list after its hash, so that
// an input run again reuses its workflow instead of adding a stream.
func ruleWorkflowID(rulesJSON []byte) string {
	sum := sha256.Sum256(rulesJSON)
	return "fzr-" + hex.EncodeToString(sum[:8])
}

// jsonOrString returns b when it is JSON, else b as a JSON string.
func jsonOrString(b []byte) []byte {
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// fuzzReply is a raw NATS request's outcome: micro's error code ("" on
// success), Cb-Error-Kind, the error message and the body.
type fuzzReply struct {
	code, kind, msg string
	data            []byte
}

// requestChecked sends body as it is to subject, as a client in another
// language would, checks the reply and the heap, and returns the reply.
// quoted is what else the client sent earlier, which a message may quote.
func (fx *fuzzFixture) requestChecked(t *testing.T, subject string, body []byte, bound time.Duration, quoted ...string) fuzzReply {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	start := time.Now()
	m, err := fx.s.nc.RequestWithContext(c, subject, body)
	took := time.Since(start)
	if errors.Is(err, nats.ErrMaxPayload) {
		t.Skipf("body of %d bytes is over NATS's max payload", len(body))
	}
	if err != nil || took > bound {
		t.Fatalf("%s: no reply within %v (after %v: %v)\nbody: %.2000s", subject, bound, took, err, body)
	}
	r := fuzzReply{code: m.Header.Get(micro.ErrorCodeHeader), kind: m.Header.Get(subjects.HeaderErrorKind),
		msg: m.Header.Get(micro.ErrorHeader), data: m.Data}
	if problem := r.problem(append(quoted, string(body))...); problem != "" {
		t.Fatalf("%s: %s\nbody: %.2000s", subject, problem, body)
	}
	checkHeap(t, subject)
	return r
}

// problem describes what is wrong with a reply to input, or returns "".
func (r fuzzReply) problem(input ...string) string {
	switch {
	case r.kind == "INTERNAL" || r.code == "500":
		return fmt.Sprintf("INTERNAL reached the client: %s %s %q", r.code, r.kind, r.msg)
	case r.code != "" && r.kind == "":
		return fmt.Sprintf("error %s %q without %s", r.code, r.msg, subjects.HeaderErrorKind)
	case r.code == "" && !json.Valid(r.data):
		return fmt.Sprintf("a success whose body is not JSON: %.200q", r.data)
	}
	if l := leak(r.msg, input...); l != "" {
		return fmt.Sprintf("message %q carries %q", r.msg, l)
	}
	return ""
}

// natsSeed is a body for the endpoint at an index of fuzzEndpoints.
type natsSeed struct {
	endpoint uint8
	body     string
}

// natsSeeds are, for every endpoint, a valid body and broken ones: wrong
// JSON types, huge numbers, the last sequence as a cursor, ids with
// wildcards, dots, spaces and unicode, negative page sizes.
func natsSeeds() []natsSeed {
	var seeds []natsSeed
	for i, subject := range fuzzEndpoints {
		for _, body := range append(validBodies(subject), brokenBodies...) {
			seeds = append(seeds, natsSeed{uint8(i), body})
		}
	}
	return seeds
}

// validBodies returns bodies the endpoint on subject serves, on the
// seeded objects (and some edge values it must take).
func validBodies(subject string) []string {
	switch subject {
	case subjects.WorkflowCreate.In(subjects.AllTenants):
		return []string{`{"id":"fz2","name":"n","places":["a","b"],"initialPlace":"a","transitions":[{"id":"t","fromPlaces":["a"],"toPlace":"b","conditions":["has_title"]}]}`}
	case subjects.WorkflowGet.In(subjects.AllTenants):
		return []string{`{"id":"fz"}`, `{"id":"acme::orders"}`}
	case subjects.WorkflowList.In(subjects.AllTenants):
		return []string{`{"first":1,"after":"fz"}`, `{"first":9223372036854775807}`}
	case subjects.TokenCreate.In(subjects.AllTenants):
		return []string{`{"workflowId":"fz","initialPlace":"c","data":{"s":"x"},"metadata":{"m":1},"idempotencyKey":"k"}`}
	case subjects.TokenGet.In(subjects.AllTenants):
		return []string{`{"id":"TOKEN0"}`}
	case subjects.TokenFind.In(subjects.AllTenants):
		return []string{`{"workflowId":"fz","tokenId":"TOKEN1"}`}
	case subjects.TokenList.In(subjects.AllTenants):
		return []string{`{"workflowId":"fz","first":1,"after":"2"}`, `{"workflowId":"fz","after":"18446744073709551615"}`}
	case subjects.TokenInPlace.In(subjects.AllTenants):
		return []string{`{"workflowId":"fz","place":"a","first":-1,"after":"-1"}`}
	case subjects.TokenAvailable.In(subjects.AllTenants):
		return []string{`{"tokenId":"TOKEN0"}`}
	case subjects.TokenFire.In(subjects.AllTenants):
		return []string{`{"tokenId":"TOKEN0","transitionId":"go","data":{"amount":1e400},"expectedRevision":18446744073709551615}`,
			`{"tokenId":"TOKEN1","transitionId":"back","newPlace":"a"}`}
	case subjects.TokenUpdate.In(subjects.AllTenants):
		return []string{`{"tokenId":"TOKEN1","data":null,"replaceData":true,"metadata":[1]}`}
	case subjects.EventHistory.In(subjects.AllTenants):
		return []string{`{"workflowId":"fz","tokenId":"TOKEN0","eventTypes":["token_created"],"afterSequence":18446744073709551615,"first":2}`}
	case subjects.EventReplay.In(subjects.AllTenants):
		return []string{`{"workflowId":"fz","since":"2262-04-12T00:00:00Z","until":"0001-01-01T00:00:00Z"}`}
	case subjects.EventStats.In(subjects.AllTenants):
		return []string{`{"workflowId":"fz","windowMinutes":-5}`}
	case subjects.EventSubscribe.In(subjects.AllTenants):
		return []string{`{"workflowId":"fz","name":"crm","deliver":"sequence","startSequence":18446744073709551615}`}
	case subjects.EventSubscriptions.In(subjects.AllTenants):
		return []string{`{"workflowId":"fz"}`}
	case subjects.EventUnsubscribe.In(subjects.AllTenants):
		return []string{`{"workflowId":"fz","name":"crm"}`}
	case subjects.TokenArchive.In(subjects.AllTenants):
		return []string{`{"tokenId":"00000000-0000-4000-8000-000000000000","triggeredBy":"fz","expectedRevision":18446744073709551615}`}
	case subjects.TokenDelete.In(subjects.AllTenants):
		return []string{`{"tokenId":"00000000-0000-4000-8000-000000000001","triggeredBy":"fz"}`}
	case subjects.WorkflowDelete.In(subjects.AllTenants):
		return []string{`{"id":"fz-none","force":true}`, `{"id":"acme::none"}`}
	}
	return nil
}

// brokenBodies are sent to every endpoint.
var brokenBodies = []string{
	``, `{`, `[]`, `null`, `"x"`, `{}x`,
	`{"id":5,"tokenId":5,"workflowId":5,"first":"x","after":5}`,
	`{"id":">","tokenId":"*","workflowId":"fz.>","place":"a b","name":"ü","first":-1}`,
	`{"id":"TOKEN0 ","tokenId":"TOKEN0\u0000","workflowId":"fz","after":"fz/18446744073709551615","first":99999999999999999999}`,
	`{"workflowId":"` + strings.Repeat("w", 200) + `","tokenId":"123E4567-E89B-12D3-A456-426614174000","since":"yesterday","until":5}`,
	`{"workflowId":"fz","tokenId":"TOKEN1","afterSequence":-1,"first":1e308,"expectedRevision":-1,"data":"\ud800"}`,
}

// ruleSeeds are rule lists and token data: every condition type, the
// expression attacks of issue 12 (a doubling let-chain, an all() over
// big data, a costly regexp), deep And/Or/Not, and broken rules.
func ruleSeeds() [][2]string {
	big := `{"s":"` + strings.Repeat("ab", 128<<10) + `","xs":[1,2,3],"n":5}`
	deep := `{"type":"FieldExists","field":"s"}`
	for i := range 40 { // deeper than rules.MaxDepth
		if i%3 == 2 {
			deep = fmt.Sprintf(`{"type":"Not","rule":{"id":"n%d","condition":%s}}`, i, deep)
		} else {
			deep = fmt.Sprintf(`{"type":%q,"rules":[{"id":"d%d","condition":%s}]}`, []string{"And", "Or"}[i%3], i, deep)
		}
	}
	return [][2]string{
		{`[{"id":"gt","condition":{"type":"FieldGreaterThan","field":"amount","value":10}},{"id":"lt","condition":{"type":"FieldLessThan","field":"a.b.c","value":1e308}}]`, `{"amount":20,"a":{"b":{"c":-1}}}`},
		{`{"id":"eq","description":"d","condition":{"type":"FieldEquals","field":"s","value":{"deep":[null,true]}}}`, `{"s":{"deep":[null,true]}}`},
		{`{"id":"c","condition":{"type":"FieldContains","field":"tags","substring":"x"}}`, `{"tags":["x","y"]}`},
		{`{"id":"n","condition":{"type":"Not","rule":{"id":"e","condition":{"type":"FieldExists","field":"missing"}}}}`, `null`},
		{`{"id":"o","condition":{"type":"Or","rules":[{"id":"a","condition":{"type":"And","rules":[]}},{"id":"b","condition":{"type":"Foo"}}]}}`, `[]`},
		{`{"id":"deep","condition":` + deep + `}`, `{"s":1}`},
		{doublingScript(30), `{"s":"x"}`},
		{doublingScript(10), `{}`},
		{`all(1..999, {upper(data.s) != ""})`, big},
		{`data.s matches "[a-z]{1000}c"`, big},
		{`data.s matches "(a+)+$"`, `{"s":"` + strings.Repeat("a", 4000) + `!"}`},
		{`sum(map(1..1000000, {#})) > 0`, `{}`},
		{`let x = data.xs; len(filter(x, {# > 1})) == 2 && data.n ?? 0 > 1`, `{"xs":[1,2,3],"n":5}`},
		{`$env.data`, `{}`},
		{`repeat("a", 1000000000) != ""`, `{}`},
		{`1/0 > 0`, `{"n":0}`},
		{`data.n / 0 > 1 || int("x") > 0`, `{"n":1}`},
		{`data.deep.deep.deep.deep`, `{"deep":` + strings.Repeat(`{"deep":`, 500) + `1` + strings.Repeat(`}`, 501)},
		{`{"id":"e","condition":{"type":"Expression","script":"metadata.department == \"fuzz\""}}`, `{"s":"x"}`},
		{`{"id":"","condition":{"type":"FieldEquals","field":"","value":}}`, `{"s":`},
	}
}

// doublingScript is issue 12's let-chain doubling a 32-byte string n times.
func doublingScript(n int) string {
	var b strings.Builder
	b.WriteString(`let v0="aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; `)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "let v%d=v%d+v%d; ", i, i-1, i-1)
	}
	fmt.Fprintf(&b, "len(v%d)>0", n)
	return b.String()
}
