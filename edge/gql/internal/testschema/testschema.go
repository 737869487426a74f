// Package testschema is the executable test schema shared by the gql
// tests, the audit server and the npm conformance checks.
package testschema

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/vektah/gqlparser/v2/ast"
)

// SDL is the schema text.
//
//go:embed schema.graphql
var SDL string

// Item is an item; fields map by json tag (default resolver).
type Item struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Color     string          `json:"color,omitempty"`
	Price     float64         `json:"price"`
	Count     int             `json:"count"`
	Tags      []string        `json:"tags"`
	CreatedAt time.Time       `json:"createdAt"`
	Meta      json.RawMessage `json:"meta"`
	OwnerID   string          `json:"-"`
}

// GraphQLType names the object type for abstract fields.
func (*Item) GraphQLType() string { return "Item" }

// Fixture is one executable test schema with its own state.
type Fixture struct {
	Schema      *gql.Schema
	UserFetches atomic.Int64 // calls to the (memoized) user fetch
	counter     atomic.Int64
}

// codeError is an error with a GraphQL code.
type codeError struct{ code, msg string }

func (e codeError) Error() string       { return e.msg }
func (e codeError) GraphQLCode() string { return e.code }

var created = time.Date(2026, 11, 26, 12, 30, 0, 123000000, time.UTC)

// items returns the fixed items.
func items() []*Item {
	return []*Item{
		{ID: "1", Name: "apple", Color: "RED", Price: 1.5, Count: 3, Tags: []string{"fruit"}, CreatedAt: created, Meta: json.RawMessage(`{"b":1,"a":[true,null]}`), OwnerID: "u1"},
		{ID: "2", Name: "leaf", Color: "GREEN", Price: 0.25, Count: 10, Tags: []string{}, CreatedAt: created, OwnerID: "u1"},
		{ID: "3", Name: "sea", Color: "BLUE", Price: 99, Count: 0, Tags: []string{"wet", "big"}, CreatedAt: created, OwnerID: "u2"},
	}
}

// users returns the fixed users as maps (the other default-resolver path).
func users() map[string]map[string]any {
	return map[string]map[string]any{
		"u1": {"__typename": "User", "id": "u1", "login": "ann"},
		"u2": {"__typename": "User", "id": "u2", "login": "bob"},
	}
}

// New builds a fresh fixture.
func New() (*Fixture, error) {
	f := &Fixture{}
	s, err := gql.NewSchema([]*ast.Source{{Name: "schema.graphql", Input: SDL}}, f.resolvers())
	if err != nil {
		return nil, err
	}
	f.Schema = s
	return f, nil
}

// resolvers returns the resolver map.
func (f *Fixture) resolvers() gql.Resolvers {
	return gql.Resolvers{
		"Query.item":          f.item,
		"Query.items":         f.items,
		"Query.node":          f.node,
		"Query.search":        f.search,
		"Query.user":          f.user,
		"Query.echo":          func(_ context.Context, p gql.Params) (any, error) { return p.Args, nil },
		"Query.slow":          slow,
		"Query.broken":        func(context.Context, gql.Params) (any, error) { return nil, errors.New("broken on purpose") },
		"Query.badInt":        func(context.Context, gql.Params) (any, error) { return "nope", nil },
		"Item.owner":          f.owner,
		"Item.failing":        func(context.Context, gql.Params) (any, error) { return nil, codeError{"NOT_FOUND", "no such thing"} },
		"Item.failingNonNull": func(context.Context, gql.Params) (any, error) { return nil, errors.New("cannot") },
		"Item.panicking":      func(context.Context, gql.Params) (any, error) { panic("boom") },
		"User.items":          f.userItems,
		"Mutation.increment":  f.increment,
		"Mutation.addItem":    f.addItem,
		"Subscription.ticks":  ticks,
		"Subscription.itemAdded": func(context.Context, gql.Params) (any, error) {
			ch := make(chan any, 3)
			for _, it := range items()[:2] {
				ch <- it
			}
			close(ch)
			return (<-chan any)(ch), nil
		},
	}
}

func (f *Fixture) item(_ context.Context, p gql.Params) (any, error) {
	for _, it := range items() {
		if it.ID == p.Args["id"] {
			return it, nil
		}
	}
	return nil, nil
}

func (f *Fixture) items(_ context.Context, p gql.Params) (any, error) {
	all := items()
	n, _ := p.Args["first"].(int64)
	if int(n) < len(all) {
		all = all[:n]
	}
	return all, nil
}

func (f *Fixture) node(ctx context.Context, p gql.Params) (any, error) {
	if u, ok := users()[p.Args["id"].(string)]; ok {
		return u, nil
	}
	return f.item(ctx, p)
}

func (f *Fixture) search(_ context.Context, _ gql.Params) (any, error) {
	return []any{items()[0], users()["u2"]}, nil
}

func (f *Fixture) user(_ context.Context, p gql.Params) (any, error) {
	by := p.Args["by"].(map[string]any)
	for _, u := range users() {
		if u["id"] == by["id"] || u["login"] == by["login"] {
			return u, nil
		}
	}
	return nil, nil
}

// owner fetches the owner once per request and user (gql.Memo).
func (f *Fixture) owner(ctx context.Context, p gql.Params) (any, error) {
	id := p.Parent.(*Item).OwnerID
	return gql.Memo(ctx, "user:"+id, func() (any, error) {
		f.UserFetches.Add(1)
		return users()[id], nil
	})
}

func (f *Fixture) userItems(_ context.Context, p gql.Params) (any, error) {
	id := p.Parent.(map[string]any)["id"]
	var out []*Item
	for _, it := range items() {
		if it.OwnerID == id {
			out = append(out, it)
		}
	}
	return out, nil
}

func (f *Fixture) increment(_ context.Context, p gql.Params) (any, error) {
	return f.counter.Add(p.Args["by"].(int64)), nil
}

func (f *Fixture) addItem(_ context.Context, p gql.Params) (any, error) {
	return map[string]any{"id": fmt.Sprint(100 + f.counter.Add(1)), "name": p.Args["name"], "color": p.Args["color"], "tags": []string{}}, nil
}

func slow(ctx context.Context, p gql.Params) (any, error) {
	select {
	case <-time.After(time.Duration(p.Args["ms"].(int64)) * time.Millisecond):
		return p.Args["ms"], nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ticks emits 1..count, stopping early when ctx ends.
func ticks(ctx context.Context, p gql.Params) (any, error) {
	n := p.Args["count"].(int64)
	if n < 0 {
		return nil, codeError{"BAD_USER_INPUT", "count must not be negative"}
	}
	ch := make(chan any)
	go func() {
		defer close(ch)
		for i := int64(1); i <= n; i++ {
			select {
			case ch <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	return (<-chan any)(ch), nil
}
