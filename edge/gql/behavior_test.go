package gql_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/vektah/gqlparser/v2/ast"
)

func TestNewSchemaErrors(t *testing.T) {
	sdl := []*ast.Source{{Input: "type Query { a: Int }"}}
	noop := func(context.Context, gql.Params) (any, error) { return nil, nil }
	cases := []struct {
		name string
		sdl  []*ast.Source
		rs   gql.Resolvers
		want string
	}{
		{"unknown type", sdl, gql.Resolvers{"Nope.a": noop}, "unknown object type"},
		{"unknown field", sdl, gql.Resolvers{"Query.b": noop}, "has no field"},
		{"bad key", sdl, gql.Resolvers{"Query": noop}, "want \"Type.field\""},
		{"bad sdl", []*ast.Source{{Input: "type Query {"}}, nil, "load schema"},
		{"ok", sdl, gql.Resolvers{"Query.a": noop}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gql.NewSchema(tc.sdl, tc.rs)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

func TestMemoFetchesOncePerRequest(t *testing.T) {
	fx := newFixture(t)
	resp := fx.Schema.Execute(context.Background(), gql.Request{Query: `{ a: items(first: 3) { owner { id } } b: items(first: 3) { owner { id } } }`}, gql.Limits{})
	if len(resp.Errors) > 0 {
		t.Fatal(resp.Errors)
	}
	if n := fx.UserFetches.Load(); n != 2 { // u1 and u2, across both root fields
		t.Fatalf("user fetches = %d, want 2", n)
	}
	fx.Schema.Execute(context.Background(), gql.Request{Query: `{ items { owner { id } } }`}, gql.Limits{})
	if n := fx.UserFetches.Load(); n != 3 { // a new request fetches again
		t.Fatalf("user fetches = %d, want 3", n)
	}
}

func TestMemoSharesConcurrentCalls(t *testing.T) {
	fx := newFixture(t)
	var calls int
	var mu sync.Mutex
	release := make(chan struct{})
	s, err := gql.NewSchema([]*ast.Source{{Input: "type Query { a: Int b: Int c: Int }"}}, gql.Resolvers{
		"Query.a": memoResolver(&mu, &calls, release), "Query.b": memoResolver(&mu, &calls, release), "Query.c": memoResolver(&mu, &calls, release),
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(20 * time.Millisecond); close(release) }()
	resp := s.Execute(context.Background(), gql.Request{Query: "{ a b c }"}, gql.Limits{})
	if string(resp.Data) != `{"a":7,"b":7,"c":7}` || calls != 1 {
		t.Fatalf("data %s, calls %d; want all 7 and 1 call", resp.Data, calls)
	}
	_ = fx
	if v, err := gql.Memo(context.Background(), "k", func() (any, error) { return 1, nil }); v != 1 || err != nil {
		t.Fatalf("Memo outside a request = %v, %v", v, err)
	}
}

// memoResolver returns 7 through gql.Memo, counting real calls.
func memoResolver(mu *sync.Mutex, calls *int, release chan struct{}) gql.ResolveFunc {
	return func(ctx context.Context, _ gql.Params) (any, error) {
		return gql.Memo(ctx, "shared", func() (any, error) {
			mu.Lock()
			*calls++
			mu.Unlock()
			<-release
			return 7, nil
		})
	}
}

func TestRootQueryFieldsRunConcurrently(t *testing.T) {
	fx := newFixture(t)
	start := time.Now()
	resp := fx.Schema.Execute(context.Background(), gql.Request{Query: `{ a: slow(ms: 200) b: slow(ms: 200) c: slow(ms: 200) }`}, gql.Limits{})
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("took %v; root fields did not run concurrently", d)
	}
	if string(resp.Data) != `{"a":200,"b":200,"c":200}` {
		t.Fatalf("data = %s", resp.Data)
	}
}

func TestTimeout(t *testing.T) {
	fx := newFixture(t)
	start := time.Now()
	resp := fx.Schema.Execute(context.Background(), gql.Request{Query: `{ slow(ms: 5000) }`}, gql.Limits{Timeout: 30 * time.Millisecond})
	if time.Since(start) > time.Second {
		t.Fatal("timeout not applied")
	}
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != gql.CodeTimeout || string(resp.Data) != `{"slow":null}` {
		b, _ := json.Marshal(resp)
		t.Fatalf("response = %s", b)
	}
}

func TestSubscribe(t *testing.T) {
	fx := newFixture(t)
	ch, errResp := fx.Schema.Subscribe(context.Background(), gql.Request{Query: `subscription { n: ticks(count: 3) }`}, gql.Limits{})
	if errResp != nil {
		t.Fatal(errResp.Errors)
	}
	var got []string
	for r := range ch {
		got = append(got, string(r.Data))
	}
	if strings.Join(got, " ") != `{"n":1} {"n":2} {"n":3}` {
		t.Fatalf("events = %v", got)
	}
	ch, _ = fx.Schema.Subscribe(context.Background(), gql.Request{Query: `subscription { itemAdded { id failing } }`}, gql.Limits{})
	first := <-ch
	if string(first.Data) != `{"itemAdded":{"id":"1","failing":null}}` || len(first.Errors) != 1 {
		t.Fatalf("first event = %s %v", first.Data, first.Errors)
	}
}

func TestSubscribeStopsOnCancel(t *testing.T) {
	fx := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch, _ := fx.Schema.Subscribe(ctx, gql.Request{Query: `subscription { ticks(count: 1000000) }`}, gql.Limits{})
	<-ch
	cancel()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after cancel")
		}
	}
}

func TestSubscribeErrors(t *testing.T) {
	fx := newFixture(t)
	cases := []struct{ name, query, want string }{
		{"validation", `subscription { ticks(count: 1) itemAdded { id } }`, gql.CodeValidationFailed},
		{"resolver error", `subscription { ticks(count: -1) }`, "BAD_USER_INPUT"},
		{"parse", `subscription {`, gql.CodeParseFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch, resp := fx.Schema.Subscribe(context.Background(), gql.Request{Query: tc.query}, gql.Limits{})
			if ch != nil || resp == nil || resp.Errors[0].Extensions["code"] != tc.want {
				t.Fatalf("ch=%v resp=%+v, want code %s", ch, resp, tc.want)
			}
		})
	}
	ch, resp := fx.Schema.Subscribe(context.Background(), gql.Request{Query: `{ items(first: 1) { id } }`}, gql.Limits{})
	if resp != nil || string((<-ch).Data) != `{"items":[{"id":"1"}]}` {
		t.Fatal("a query over Subscribe should yield one response")
	}
}

func TestConcurrentRequestsRace(t *testing.T) {
	fx := newFixture(t)
	q := `{ items(first: 3) { id name owner { login items { id failing } } } search(text: "x") { __typename ... on User { login } } }`
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := fx.Schema.Execute(context.Background(), gql.Request{Query: q}, gql.Limits{})
			if !resp.HasData || len(resp.Errors) != 5 {
				t.Errorf("unexpected response: %s %v", resp.Data, resp.Errors)
			}
		}()
	}
	wg.Wait()
}
