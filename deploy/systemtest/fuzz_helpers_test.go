package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/rules"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// The standing adversarial fuzz suite of issue 12 ("Hostile input and
// overload"): Go native fuzz targets that send what any client can send
// to the real stack, over HTTP and NATS, and fail when a client gets
// INTERNAL, a Go type name or NATS text, waits too long, or the process
// heap explodes. Each target starts one stack before f.Fuzz and reuses it
// for every input; under -fuzz every worker process starts its own:
//
//	go test ./deploy/systemtest -run '^$' -fuzz '^FuzzGraphQLEdge$' -fuzztime 20s -fuzzminimizetime 100x
//
// (-fuzzminimizetime: minimizing a new input at the default of 60 s of
// ~1 ms executions would eat a short run; a failing input is still saved.)
//
// Inputs may name the seeded objects by placeholder: fuzzWorkflow ("fz")
// is a real workflow, TOKEN0 and TOKEN1 are replaced by its tokens' ids and
// CURSOR0 by TOKEN0's cursor.

// Bounds of the fuzz targets.
const (
	// fuzzEdgeBound is the most one GraphQL request or raw NATS request
	// may take: far above any sane answer, below the edge's 10 s timeout,
	// so a request that only ends when that deadline passes is a finding.
	fuzzEdgeBound = 5 * time.Second
	// fuzzRuleBound is the most one call of FuzzRuleDefinitions may take:
	// an expression is cut at 100 ms per evaluation.
	fuzzRuleBound = 2 * time.Second
	// fuzzHeapLimit is the most heap the process (the whole stack runs in
	// it) may hold after a call.
	fuzzHeapLimit = 1 << 30
	// fuzzWorkflow is the id of the seeded workflow.
	fuzzWorkflow = "fz"
)

// fuzzLeaks are texts that must never reach a client: Go type names from
// JSON decoding or expr-lang, NATS client errors, and signs of a Go panic.
var fuzzLeaks = []string{"wire.", "Go struct", "Go value", "json: cannot unmarshal", "nats:", "goroutine ", "nil pointer dereference",
	"runtime error", "interface {}"}

// fuzzFixture is a running stack with seeded objects, shared by every
// input of one fuzz target.
type fuzzFixture struct {
	s       *system
	http    *http.Client
	tokens  [2]string // TOKEN0 in place a, TOKEN1 fired to b
	cursor0 string    // TOKEN0's cursor
}

// startFuzz starts the stack for a fuzz target and seeds it: workflow
// fuzzWorkflow, whose transitions are guarded by rules of every kind, and
// two tokens.
func startFuzz(f *testing.F) *fuzzFixture {
	f.Helper()
	s := start(f, "")
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.c.CreateWorkflow(c, fuzzSeedWorkflow()); err != nil {
		f.Fatal(err)
	}
	fx := &fuzzFixture{s: s, http: &http.Client{Timeout: fuzzEdgeBound}}
	for i, data := range []string{`{"amount":20,"s":"abc","tags":["x"]}`, `{"amount":5,"s":"ABC"}`} {
		tok, err := s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: fuzzWorkflow, Data: json.RawMessage(data),
			Metadata: json.RawMessage(`{"department":"fuzz"}`)})
		if err != nil {
			f.Fatal(err)
		}
		fx.tokens[i] = tok.ID
	}
	if _, err := s.c.Fire(c, &wire.FireRequest{TokenID: fx.tokens[1], TransitionID: "tick"}); err != nil {
		f.Fatal(err)
	}
	tok, err := s.c.GetToken(c, fx.tokens[0])
	if err != nil {
		f.Fatal(err)
	}
	fx.cursor0 = fmt.Sprintf("%s/%d", tok.WorkflowID, tok.NatsSequence)
	f.Cleanup(fx.http.CloseIdleConnections)
	return fx
}

// fuzzSeedWorkflow is the seeded workflow: places a, b, c; "go" guarded by
// a field test and an expression, "back" by And/Or/Not, "tick" free.
func fuzzSeedWorkflow() *wire.CreateWorkflowRequest {
	cond := func(c rules.Condition) rules.Rule {
		return rules.Rule{ID: "r_" + strings.ToLower(c.Type), Condition: c}
	}
	gt := cond(rules.Condition{Type: rules.FieldGreaterThan, Field: "amount", Value: json.RawMessage(`10`)})
	expr := cond(rules.Condition{Type: rules.Expression, Script: `data.s matches "^[a-z]+$" && len(data.tags) > 0`})
	has := cond(rules.Condition{Type: rules.FieldExists, Field: "s"})
	eq := cond(rules.Condition{Type: rules.FieldEquals, Field: "s", Value: json.RawMessage(`"ABC"`)})
	not := cond(rules.Condition{Type: rules.Not, Rule: &eq})
	or := cond(rules.Condition{Type: rules.Or, Rules: []rules.Rule{not, has}})
	and := cond(rules.Condition{Type: rules.And, Rules: []rules.Rule{or, gt}})
	return &wire.CreateWorkflowRequest{ID: fuzzWorkflow, Name: "fuzz", Places: []string{"a", "b", "c"}, InitialPlace: "a",
		Transitions: []flow.Transition{
			{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b", Rules: []rules.Rule{gt, expr}},
			{ID: "back", FromPlaces: []string{"b"}, ToPlace: "a", Rules: []rules.Rule{and}},
			{ID: "tick", FromPlaces: []string{"a", "b", "c"}, ToPlace: "b", Conditions: []string{}},
		}}
}

// expand replaces the placeholders of seeded objects in s.
func (fx *fuzzFixture) expand(s string) string {
	if !strings.Contains(s, "TOKEN") && !strings.Contains(s, "CURSOR0") {
		return s
	}
	return strings.NewReplacer("TOKEN0", fx.tokens[0], "TOKEN1", fx.tokens[1], "CURSOR0", fx.cursor0).Replace(s)
}

// leak returns the first of fuzzLeaks that msg carries and the client's
// own input does not (an error may quote the input), or "".
func leak(msg string, input ...string) string {
	for _, l := range fuzzLeaks {
		if strings.Contains(msg, l) && !anyContains(input, l) {
			return l
		}
	}
	return ""
}

// anyContains reports whether any of ss contains sub, as it is or with
// its \uXXXX escapes (JSON's and GraphQL's) decoded.
func anyContains(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) || strings.Contains(s, `\u`) && strings.Contains(unescapeU(s), sub) {
			return true
		}
	}
	return false
}

// unicodeEscape matches a \uXXXX escape.
var unicodeEscape = regexp.MustCompile(`\\u[0-9a-fA-F]{4}`)

// unescapeU decodes the \uXXXX escapes of s.
func unescapeU(s string) string {
	return unicodeEscape.ReplaceAllStringFunc(s, func(e string) string {
		n, _ := strconv.ParseUint(e[2:], 16, 32)
		return string(rune(n))
	})
}

// checkHeap fails the input when the process heap is over fuzzHeapLimit.
func checkHeap(t *testing.T, what string) {
	t.Helper()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if m.HeapAlloc > fuzzHeapLimit {
		t.Fatalf("%s: heap %d MiB, over %d MiB", what, m.HeapAlloc>>20, fuzzHeapLimit>>20)
	}
}
