package gql_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/vektah/gqlparser/v2/ast"
)

// fragmentBomb is issue 12's document: each of n fragments selects id and
// spreads the next one twice, so the expanded selection doubles per level
// (2^n - 1 fields) while the text grows by one line.
func fragmentBomb(n int, comment string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\nquery { items { ...F0 } }\n", comment)
	for i := range n - 1 {
		fmt.Fprintf(&b, "fragment F%d on Item { id ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Item { id }\n", n-1)
	return b.String()
}

// aliasBomb multiplies aliases by fragments: five fragments of six aliased
// fields each (30 aliases, the default maximum) alternate Item → owner and
// User → items, expanding to 17,107 fields at depth 7.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("{ items { ...L0 } }\n")
	for i := range 5 {
		typ, field := "Item", "owner"
		if i%2 == 1 {
			typ, field = "User", "items"
		}
		next := fmt.Sprintf("...L%d", i+1)
		if i == 4 {
			next = "id"
		}
		fmt.Fprintf(&b, "fragment L%d on %s {", i, typ)
		for k := range 6 {
			fmt.Fprintf(&b, " a%d: %s { %s }", k, field, next)
		}
		b.WriteString(" }\n")
	}
	return b.String()
}

// wantError fails t unless resp is a request error with code whose
// message contains part.
func wantError(t *testing.T, resp *gql.Response, code, part string) {
	t.Helper()
	if resp.HasData || len(resp.Errors) != 1 {
		t.Fatalf("want one request error, got data=%v errors=%v", resp.HasData, resp.Errors)
	}
	e := resp.Errors[0]
	if e.Extensions["code"] != code || !strings.Contains(e.Message, part) {
		t.Fatalf("error = %q (%v), want code %s and %q", e.Message, e.Extensions["code"], code, part)
	}
}

func TestFragmentBombIsRejectedWithinASecond(t *testing.T) {
	fx := newFixture(t)
	// A new comment each time defeats the document cache, as in the issue.
	for i := range 4 {
		q := fragmentBomb(28, fmt.Sprint("variant ", i))
		start := time.Now()
		resp := fx.Schema.Execute(context.Background(), gql.Request{Query: q}, gql.Limits{})
		elapsed := time.Since(start)
		t.Logf("28-level fragment document (%d bytes): %v", len(q), elapsed)
		if elapsed > time.Second {
			t.Fatalf("rejecting the document took %v, want < 1s", elapsed)
		}
		wantError(t, resp, gql.CodeValidationFailed, "268435456 fields")
	}
}

func TestAliasTimesFragmentExplosionIsRejected(t *testing.T) {
	fx := newFixture(t)
	start := time.Now()
	resp := fx.Schema.Execute(context.Background(), gql.Request{Query: aliasBomb()}, gql.Limits{})
	t.Logf("alias × fragment document: %v", time.Since(start))
	want := fmt.Sprintf("17107 fields once fragments are expanded, more than the maximum of %d", 5000)
	wantError(t, resp, gql.CodeValidationFailed, want)
}

// hostileShapes are documents within the token, depth and alias limits
// that stress validation: fragment chains, fragments spread side by side,
// and same-named fields whose sub-selections must be compared.
func hostileShapes() map[string]string {
	shapes := map[string]string{
		"bomb 12 levels (accepted)": fragmentBomb(12, "small"),
		"bomb 28 levels":            fragmentBomb(28, "big"),
		"aliases x fragments":       aliasBomb(),
	}
	var wide, nested strings.Builder
	wide.WriteString("{ items {")
	for i := range 100 {
		fmt.Fprintf(&wide, " ...W%d", i)
	}
	wide.WriteString(" } }\n")
	for i := range 100 {
		fmt.Fprintf(&wide, "fragment W%d on Item { id name owner { id } }\n", i)
	}
	shapes["100 fragments side by side"] = wide.String()
	nested.WriteString("{ items { ...N0 } }\n")
	for i := range 6 {
		fmt.Fprintf(&nested, "fragment N%d on Item { owner { items { ...N%d } } owner { items { ...N%d id } } }\n", i, i+1, i+1)
	}
	nested.WriteString("fragment N6 on Item { id }\n")
	shapes["same-named fields over fragments"] = nested.String()
	return shapes
}

func TestHostileDocumentsFinishWithinASecond(t *testing.T) {
	fx := newFixture(t)
	for name, q := range hostileShapes() {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			resp := fx.Schema.Execute(context.Background(), gql.Request{Query: q}, gql.Limits{})
			elapsed := time.Since(start)
			msg := "no errors"
			if len(resp.Errors) > 0 {
				msg = resp.Errors[0].Message
			}
			t.Logf("%d bytes: %v, %d errors (%s)", len(q), elapsed, len(resp.Errors), msg)
			if elapsed > time.Second {
				t.Fatalf("took %v, want < 1s", elapsed)
			}
		})
	}
}

// introspectionQuery is graphql-js's getIntrospectionQuery with every
// option on, as GraphiQL sends it: it must stay within the default limits.
const introspectionQuery = `query IntrospectionQuery {
  __schema { description queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } } } }
fragment FullType on __Type { kind name description specifiedByURL isOneOf
  fields(includeDeprecated: true) { name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef } }
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue isDeprecated deprecationReason }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } } }`

func TestIntrospectionQueryIsWithinDefaultLimits(t *testing.T) {
	fx := newFixture(t)
	resp := fx.Schema.Execute(context.Background(), gql.Request{Query: introspectionQuery}, gql.Limits{})
	if len(resp.Errors) > 0 {
		t.Fatalf("errors: %v", resp.Errors[0].Message)
	}
}

// deadlineSchema has a list of n items whose "slow" field takes 2ms; it
// counts the calls that started after the request's deadline.
func deadlineSchema(t *testing.T, calls, late *atomic.Int64) *gql.Schema {
	t.Helper()
	sdl := `type Query { items(n: Int!): [Item!]! } type Item { id: ID! slow: Int }`
	s, err := gql.NewSchema([]*ast.Source{{Input: sdl}}, gql.Resolvers{
		"Query.items": func(_ context.Context, p gql.Params) (any, error) {
			out := make([]map[string]any, p.Args["n"].(int64))
			for i := range out {
				out[i] = map[string]any{"id": fmt.Sprint(i)}
			}
			return out, nil
		},
		"Item.slow": func(ctx context.Context, _ gql.Params) (any, error) {
			calls.Add(1)
			if ctx.Err() != nil {
				late.Add(1)
				return nil, ctx.Err()
			}
			select {
			case <-time.After(2 * time.Millisecond):
				return 1, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestExecutionStopsAtTheDeadline(t *testing.T) {
	var calls, late atomic.Int64
	s := deadlineSchema(t, &calls, &late)
	req := gql.Request{Query: `{ items(n: 2000) { id slow } }`}
	start := time.Now()
	resp := s.Execute(context.Background(), req, gql.Limits{Timeout: 50 * time.Millisecond})
	t.Logf("took %v; %d resolver calls, %d after the deadline, %d errors", time.Since(start), calls.Load(), late.Load(), len(resp.Errors))
	// The deadline may pass between the executor's check and a resolver's
	// first line: allow that one call.
	if late.Load() > 1 {
		t.Errorf("%d resolvers were called after the deadline", late.Load())
	}
	if calls.Load() >= 2000 {
		t.Errorf("all %d resolvers ran", calls.Load())
	}
	timeouts := 0
	for _, e := range resp.Errors {
		if e.Extensions["code"] == gql.CodeTimeout {
			timeouts++
		}
	}
	if timeouts == 0 || len(resp.Errors) > 2 {
		t.Errorf("want one or two TIMEOUT errors (the cut, and the resolver it interrupted), got %d of %d: %v", timeouts, len(resp.Errors), resp.Errors)
	}
}

func TestExecutionOfAnExpiredContextCallsNoResolver(t *testing.T) {
	var calls, late atomic.Int64
	s := deadlineSchema(t, &calls, &late)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	resp := s.Execute(ctx, gql.Request{Query: `{ items(n: 3) { id slow } }`}, gql.Limits{})
	if calls.Load() != 0 {
		t.Errorf("%d resolvers called with an expired context", calls.Load())
	}
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != gql.CodeTimeout {
		t.Fatalf("errors = %v, want one TIMEOUT error", resp.Errors)
	}
	if string(resp.Data) != "null" {
		t.Errorf("data = %s, want null (items is non-null)", resp.Data)
	}
}
