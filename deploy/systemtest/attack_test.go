package systemtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/rules"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Attacks on the whole system, each while a well-behaved client reads a
// token over GraphQL: every attack gets a clear error or a bounded cost,
// and the other client's p99 stays bounded (asserted < 1 s, a wide margin
// for slow machines; the real figures are logged).

// attackTime is how long each attack runs.
const attackTime = 2 * time.Second

// underAttack runs attack from attackers goroutines for attackTime while
// one client reads a token, and checks that client's latency.
func underAttack(t *testing.T, s *system, attackers int, attack func(ctx context.Context)) {
	t.Helper()
	cx := ctx(t)
	testkit.Must(s.c.CreateWorkflow(cx, race("bystander")))
	tok := testkit.Must(s.c.CreateToken(cx, &wire.CreateTokenRequest{WorkflowID: "bystander"}))
	actx, cancel := context.WithTimeout(cx, attackTime)
	defer cancel()
	var wg sync.WaitGroup
	for range attackers {
		wg.Go(func() {
			for actx.Err() == nil {
				attack(actx)
			}
		})
	}
	var took []time.Duration
	for actx.Err() == nil {
		start := time.Now()
		r := s.gql(t, `query($id:String!){ token(id:$id){ id place revision } }`, map[string]any{"id": tok.ID})
		took = append(took, time.Since(start))
		if len(r.Errors) > 0 {
			t.Fatalf("the well-behaved client failed: %+v", r.Errors)
		}
	}
	wg.Wait()
	p50, p99 := percentiles(took)
	t.Logf("%d attackers for %v: the other client's %d reads p50 %v, p99 %v", attackers, attackTime, len(took), p50, p99)
	if p99 > time.Second {
		t.Fatalf("the other client's p99 %v under attack, want < 1s", p99)
	}
}

// fragmentBomb is the 28-level fragment document (1.3 KB): every
// fragment spreads the next twice.
func fragmentBomb(levels int) string {
	var b strings.Builder
	b.WriteString("query { workflows { ...F0 } }\n")
	for i := range levels {
		fmt.Fprintf(&b, "fragment F%d on Workflow { id ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Workflow { id }\n", levels)
	return b.String()
}

func TestAttackFragmentFanOut(t *testing.T) {
	s := start(t, "")
	var n atomic.Int64
	underAttack(t, s, 4, func(context.Context) {
		// A new comment each time: the document cache does not help.
		r := s.gql(t, fmt.Sprintf("# %d\n%s", n.Add(1), fragmentBomb(28)), nil)
		if r.code() != "GRAPHQL_VALIDATION_FAILED" {
			t.Errorf("fragment bomb: %+v, want GRAPHQL_VALIDATION_FAILED", r.Errors)
		}
	})
}

func TestAttackAliasAndFieldExplosion(t *testing.T) {
	s := start(t, "")
	var b strings.Builder
	b.WriteString("query { workflows { ...A ...A ...A ...A ...A ...A ...A ...A } }\nfragment A on Workflow {")
	for i := range 25 {
		fmt.Fprintf(&b, " a%d: id b%d: name c%d: places", i, i, i)
	}
	b.WriteString(" transitions { id fromPlaces toPlace rules { id condition } } }")
	doc := b.String()
	underAttack(t, s, 4, func(context.Context) {
		if r := s.gql(t, doc, nil); r.code() != "GRAPHQL_VALIDATION_FAILED" {
			t.Errorf("field explosion: %+v, want GRAPHQL_VALIDATION_FAILED", r.Errors)
		}
	})
}

// TestAttackExpensiveExpressions: a script that doubles a string is
// refused when the workflow is created; one that scans 900 KB of data a
// thousand times is stopped by its budget at every evaluation.
func TestAttackExpensiveExpressions(t *testing.T) {
	s, cx := start(t, ""), ctx(t)
	var dbl strings.Builder
	dbl.WriteString(`let v0="aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; `)
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&dbl, "let v%d=v%d+v%d; ", i, i-1, i-1)
	}
	dbl.WriteString("len(v30)>0")
	_, err := s.c.CreateWorkflow(cx, guarded("doubling", dbl.String()))
	if err == nil || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("doubling script: %v, want refused for its budget", err)
	}
	testkit.Must(s.c.CreateWorkflow(cx, guarded("scan", `all(1..999, {upper(data.s) != ""})`)))
	big := `{"s":"` + strings.Repeat("x", 900<<10) + `"}`
	tok := testkit.Must(s.c.CreateToken(cx, &wire.CreateTokenRequest{WorkflowID: "scan", Data: []byte(big)}))
	underAttack(t, s, 4, func(actx context.Context) {
		start := time.Now()
		r, err := s.c.Available(actx, tok.ID)
		if actx.Err() != nil {
			return
		}
		if k := fail.KindOf(err); err != nil && k != fail.Unavailable && k != fail.Timeout {
			t.Errorf("available: %v (%s), want a result, or a clear UNAVAILABLE or TIMEOUT under overload", err, k)
		}
		if err != nil {
			return // overloaded (the queue refuses at once), or the attack's deadline passed in flight
		}
		if len(r.Transitions) != 0 {
			t.Errorf("available: %d transitions; want the guard to fail", len(r.Transitions))
		}
		// Two evaluations (transitions and their explanations) of at most
		// --expr-timeout each, plus decoding 900 KB twice: well under 5 s
		// even under -race on a busy machine.
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("one availableTransitions took %v, want < 5s", d)
		}
	})
}

// guarded is a workflow whose one transition is guarded by script.
func guarded(id, script string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{ID: id, Name: id, Places: []string{"a", "b"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b",
			Rules: []rules.Rule{{ID: "r", Condition: rules.Condition{Type: rules.Expression, Script: script}}}}}}
}

// TestExpressionLimitsAreConfigured: the services take their expression
// bounds from the storage settings (the --expr-* flags).
func TestExpressionLimitsAreConfigured(t *testing.T) {
	s, cx := startWith(t, "", func(st *config.Store) { st.Expr.MaxScriptBytes = 40 }), ctx(t)
	_, err := s.c.CreateWorkflow(cx, guarded("long", `data.a > 1 && data.b > 2 && data.c > 3 && data.d > 4`))
	if err == nil || !strings.Contains(err.Error(), "40 bytes") {
		t.Fatalf("a 55-byte script with --expr-max-bytes 40: %v, want refused naming the limit", err)
	}
	testkit.Must(s.c.CreateWorkflow(cx, guarded("short", `data.a > 1`)))
}
