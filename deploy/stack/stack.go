// Package stack runs the whole system in one process: the workflow, token
// and event services and the GraphQL edge, on an embedded nats-server with
// JetStream (in-process connections) or on an external NATS. It is the
// one-command mode and the fixture of the system tests.
package stack

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/edge/auth"
	edge "github.com/cbnats/circuitbreaker/edge/server"
	"github.com/cbnats/circuitbreaker/services/event"
	"github.com/cbnats/circuitbreaker/services/token"
	"github.com/cbnats/circuitbreaker/services/workflow"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/embedded"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/rpc"
)

// Options configure a Stack.
type Options struct {
	// Server configures the embedded server; unused when Dial is set.
	Server embedded.Options
	// Dial, when set, connects each component (named "workflow", "token",
	// "event", "edge") to an external NATS instead of an embedded server.
	// The edge dials twice: requests, and the streams of subscriptions.
	Dial        func(component string) (*nats.Conn, error)
	Store       config.Store
	Concurrency int
	// TokenInstances is how many token services to run in the queue group
	// (default 1); more than one makes them race each other.
	TokenInstances int
	// HTTP configures the GraphQL edge; an empty Addr runs no edge.
	HTTP config.HTTP
	// Auth, when set, authenticates the edge's clients (edge/auth).
	Auth *auth.Authenticator
	// Metrics collects every component's metrics (served by the edge at
	// /metrics); a fresh registry when nil.
	Metrics *metrics.Registry
	Log     zerolog.Logger
}

// Stack is a running system.
type Stack struct {
	// Server is the embedded server, or nil on an external NATS.
	Server *server.Server
	// GraphQL is the edge's GraphQL URL, or "" without an edge.
	GraphQL string
	dial    func(string) (*nats.Conn, error)
	conns   []*nats.Conn
	stops   []func()
}

// Start starts the server (unless external) and the components.
func Start(ctx context.Context, o Options) (*Stack, error) {
	s := &Stack{dial: o.Dial}
	if s.dial == nil {
		ns, err := embedded.Start(o.Server)
		if err != nil {
			return nil, err
		}
		s.Server = ns
		s.dial = func(name string) (*nats.Conn, error) {
			return nats.Connect("", nats.InProcessServer(ns), nats.Name(name), nats.MaxReconnects(-1))
		}
	}
	if err := s.start(ctx, o); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Stack) start(ctx context.Context, o Options) error {
	if o.Metrics == nil {
		o.Metrics = metrics.NewRegistry()
	}
	sub := func(name string) zerolog.Logger { return o.Log.With().Str("component", name).Logger() }
	steps := []func() error{
		func() error {
			return s.run("workflow", func(nc *nats.Conn) (func(), error) {
				i, err := workflow.Start(ctx, nc, rpc.ServiceOptions{Store: o.Store, Concurrency: o.Concurrency, Metrics: o.Metrics, Log: sub("workflow")})
				return stopper(i, err)
			})
		},
		func() error {
			return s.run("event", func(nc *nats.Conn) (func(), error) {
				i, err := event.Start(ctx, nc, rpc.ServiceOptions{Store: o.Store, Concurrency: o.Concurrency, Metrics: o.Metrics, Log: sub("event")})
				return stopper(i, err)
			})
		},
	}
	for range max(o.TokenInstances, 1) {
		steps = append(steps, func() error {
			return s.run("token", func(nc *nats.Conn) (func(), error) {
				i, err := token.Start(ctx, nc, rpc.ServiceOptions{Store: o.Store, Concurrency: o.Concurrency, Metrics: o.Metrics, Log: sub("token")})
				return stopper(i, err)
			})
		})
	}
	if o.HTTP.Addr != "" {
		steps = append(steps, func() error {
			return s.run("edge", func(nc *nats.Conn) (func(), error) { return s.startEdge(nc, o.HTTP, o.Auth, o.Metrics, sub("edge")) })
		})
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// stopper returns the Stop of a started component.
func stopper[T interface{ Stop() }](i T, err error) (func(), error) {
	if err != nil {
		return nil, err
	}
	return i.Stop, nil
}

// run connects a component and starts it; Stop stops it in reverse order.
func (s *Stack) run(name string, start func(*nats.Conn) (func(), error)) error {
	nc, err := s.Connect(name)
	if err != nil {
		return err
	}
	stop, err := start(nc)
	if err != nil {
		return fmt.Errorf("stack: %s: %w", name, err)
	}
	s.stops = append(s.stops, stop)
	// Once the server has the component's subscriptions, it serves.
	return nc.Flush()
}

func (s *Stack) startEdge(nc *nats.Conn, h config.HTTP, a *auth.Authenticator, reg *metrics.Registry, log zerolog.Logger) (func(), error) {
	o := edge.OptionsFrom(h, reg, log)
	o.Auth = a
	liveNC, err := s.Connect("edge") // the edge's second connection: subscription traffic apart from request replies
	if err != nil {
		return nil, err
	}
	o.LiveConn = liveNC
	srv, err := edge.New(nc, o)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", h.Addr)
	if err != nil {
		return nil, err
	}
	s.GraphQL = "http://" + ln.Addr().String() + "/graphql"
	go func() { _ = srv.Serve(ln) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// Connect opens a connection for a component; the Stack closes it on Stop.
func (s *Stack) Connect(name string) (*nats.Conn, error) {
	nc, err := s.dial(name)
	if err != nil {
		return nil, fmt.Errorf("stack: connect %s: %w", name, err)
	}
	s.conns = append(s.conns, nc)
	return nc, nil
}

// ClientURL is the URL clients outside the process use, or "" when the
// embedded server does not listen (or the NATS is external).
func (s *Stack) ClientURL() string {
	if s.Server == nil || s.Server.Addr() == nil {
		return ""
	}
	return s.Server.ClientURL()
}

// Stop stops the components in reverse order (the edge first: stop intake,
// then the services, finishing requests in flight), closes the connections
// and shuts the embedded server down.
func (s *Stack) Stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	for _, nc := range s.conns {
		nc.Close()
	}
	if s.Server != nil {
		s.Server.Shutdown()
		s.Server.WaitForShutdown()
	}
}
