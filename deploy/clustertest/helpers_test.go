package clustertest

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/deploy/stack"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// components are the stack's connections by component name, to see where
// each one is connected.
type components struct {
	mu    sync.Mutex
	conns []component
}

type component struct {
	name string
	nc   *nats.Conn
}

// where lists each component's server.
func (c *components) where() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, x := range c.conns {
		out = append(out, x.name+"@"+x.nc.ConnectedServerName())
	}
	return strings.Join(out, " ")
}

// startStack runs the services (two token instances, so storage CAS is
// under test too) and the edge against the NATS at urls, each component on
// its own reconnecting connection. It is stopped when the test ends.
func startStack(t testing.TB, urls string, replicas int) (*stack.Stack, *components) {
	t.Helper()
	log := zerolog.Nop()
	if lvl, err := zerolog.ParseLevel(os.Getenv("CB_TEST_LOG")); err == nil && lvl != zerolog.NoLevel {
		log = zerolog.New(os.Stderr).Level(lvl).With().Timestamp().Logger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	comps := &components{}
	st, err := stack.Start(ctx, stack.Options{
		Dial: func(name string) (*nats.Conn, error) {
			nc, err := dial(urls, name)
			if err == nil {
				comps.mu.Lock()
				comps.conns = append(comps.conns, component{name, nc})
				comps.mu.Unlock()
			}
			return nc, err
		},
		Store: config.Store{Replicas: replicas, EventMaxAge: time.Hour, DedupeWindow: 2 * time.Minute,
			MaxDeliver: 5, RequestTimeout: 10 * time.Second, RouteWrites: true},
		TokenInstances: 2,
		HTTP:           config.HTTP{Addr: "127.0.0.1:0", MaxBodyBytes: 1 << 20, Timeout: 10 * time.Second},
		Log:            log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Stop)
	return st, comps
}

// places of the cycle workflow, in order: the token at revision r is in
// cyclePlaces[(r-1)%3], since every change after the create is a fire of
// the one transition out of its place.
var (
	cyclePlaces = []string{"a", "b", "c"}
	cycleFires  = map[string]string{"a": "ab", "b": "bc", "c": "ca"}
)

func cycle(id string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{ID: id, Name: "cycle", Places: cyclePlaces, InitialPlace: "a",
		Transitions: []flow.Transition{
			{ID: "ab", FromPlaces: []string{"a"}, ToPlace: "b"},
			{ID: "bc", FromPlaces: []string{"b"}, ToPlace: "c"},
			{ID: "ca", FromPlaces: []string{"c"}, ToPlace: "a"},
		}}
}

// placeAt is where a cycle token is at revision rev.
func placeAt(rev uint64) string { return cyclePlaces[(rev-1)%uint64(len(cyclePlaces))] }

// httpStatus returns the status of GET url, or 0 when the request fails.
func httpStatus(url string) int {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// readyURL is the edge's readiness URL.
func readyURL(st *stack.Stack) string { return strings.TrimSuffix(st.GraphQL, "/graphql") + "/ready" }

// opCtx is the deadline of one client call in the tests.
func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
