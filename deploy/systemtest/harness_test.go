package systemtest

import (
	"context"
	"encoding/json"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/deploy/stack"
	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/embedded"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/metrics"
)

// system is a running stack and a client connected to it over TCP.
type system struct {
	stack   *stack.Stack
	nc      *nats.Conn
	c       *client.Client
	dir     string
	metrics *metrics.Registry // every component's
	bearer  string            // the credential of GraphQL requests, when the edge has authentication
}

// defaultStore is the storage settings of most tests. Token services do
// not route writes: two instances race each other on every workflow, so
// the compare-and-swap in storage, not only routing and the in-process
// lock, is under test.
func defaultStore() config.Store {
	return config.Store{Replicas: 1, DedupeWindow: 2 * time.Minute, EventMaxAge: time.Hour, MaxDeliver: 5, RequestTimeout: 10 * time.Second}
}

type storeOpts = config.Store

// start runs the system on dir (a fresh temporary directory when "").
func start(t testing.TB, dir string) *system {
	t.Helper()
	return startWith(t, dir, nil)
}

// startWith is start with changed storage settings.
func startWith(t testing.TB, dir string, change func(*config.Store)) *system {
	t.Helper()
	// Two token services race each other, so the compare-and-swap in
	// storage, not only the in-process lock, is under test.
	return startN(t, dir, 2, change)
}

// startN runs the system with n token service instances.
func startN(t testing.TB, dir string, n int, change func(*config.Store)) *system {
	t.Helper()
	return startHTTP(t, dir, n, change, nil)
}

// startHTTP is startN with changed edge settings too.
func startHTTP(t testing.TB, dir string, n int, change func(*config.Store), changeHTTP func(*config.HTTP)) *system {
	t.Helper()
	return startAuthed(t, dir, n, change, changeHTTP, nil, "")
}

// startAuthed is startHTTP with an edge that authenticates with a; the
// system's GraphQL requests carry bearer.
func startAuthed(t testing.TB, dir string, n int, change func(*config.Store), changeHTTP func(*config.HTTP), a *auth.Authenticator, bearer string) *system {
	t.Helper()
	store := defaultStore()
	if change != nil {
		change(&store)
	}
	httpConf := config.HTTP{Addr: "127.0.0.1:0", CORS: "*", MaxBodyBytes: 1 << 20, Timeout: 10 * time.Second}
	if changeHTTP != nil {
		changeHTTP(&httpConf)
	}
	if dir == "" {
		dir = t.TempDir()
	}
	log := zerolog.Nop()
	if os.Getenv("CB_TEST_LOG") != "" {
		log = zerolog.New(os.Stderr)
	}
	reg := metrics.NewRegistry()
	st, err := stack.Start(context.Background(), stack.Options{
		Server:         embedded.Options{DataDir: dir, Port: -1},
		Store:          store,
		TokenInstances: n,
		Metrics:        reg,
		HTTP:           httpConf,
		Log:            log,
		Auth:           a,
	})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(st.ClientURL())
	if err != nil {
		st.Stop()
		t.Fatal(err)
	}
	s := &system{stack: st, nc: nc, c: client.New(nc), dir: dir, metrics: reg, bearer: bearer}
	t.Cleanup(s.stop)
	return s
}

func (s *system) stop() {
	if s.stack == nil {
		return
	}
	s.nc.Close()
	s.stack.Stop()
	s.stack = nil
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// jsonEqual reports whether a and b hold the same JSON value.
func jsonEqual(a json.RawMessage, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

const rpcTimeout = 10 * time.Second

func jsonBody(v any) ([]byte, error) { return json.Marshal(v) }

// stackJS is a JetStream handle on the test's client connection.
func (s *system) stackJS() jetstream.JetStream { return testkit.Must(jetstream.New(s.nc)) }

// records returns a token's transition records, read through its history.
func (s *system) records(t testing.TB, tokenID string) []flow.TransitionRecord {
	t.Helper()
	var out []flow.TransitionRecord
	for _, it := range testkit.Must(s.c.AllHistory(ctx(t), tokenID)) {
		out = append(out, it.Record)
	}
	return out
}

// fires returns a token's history events: its fired transitions.
func (s *system) fires(t testing.TB, tokenID string) []flow.HistoryEvent {
	t.Helper()
	var out []flow.HistoryEvent
	for _, it := range testkit.Must(s.c.AllHistory(ctx(t), tokenID)) {
		if it.Event != nil {
			out = append(out, *it.Event)
		}
	}
	return out
}
