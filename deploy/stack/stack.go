// Package stack runs the whole system in one process: an embedded
// nats-server with JetStream and every service on in-process connections.
// and the GraphQL edge. It is the one-command mode, and the fixture of the
// system tests.
package stack

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	edge "github.com/cbnats/circuitbreaker/edge/server"
	"github.com/cbnats/circuitbreaker/services/event"
	"github.com/cbnats/circuitbreaker/services/token"
	"github.com/cbnats/circuitbreaker/services/workflow"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/embedded"
)

// Options configure a Stack.
type Options struct {
	Server      embedded.Options
	Store       config.Store
	Concurrency int
	// TokenInstances is how many token services to run in the queue group
	// (default 1); more than one makes them race each other.
	TokenInstances int
	// HTTP configures the GraphQL edge; an empty Addr runs no edge.
	HTTP config.HTTP
	Log  zerolog.Logger
}

// Stack is a running system.
type Stack struct {
	Server *server.Server
	// GraphQL is the edge's GraphQL URL, or "" without an edge.
	GraphQL string
	conns   []*nats.Conn
	stops   []func()
}

// Start starts the server and the services.
func Start(ctx context.Context, o Options) (*Stack, error) {
	ns, err := embedded.Start(o.Server)
	if err != nil {
		return nil, err
	}
	s := &Stack{Server: ns}
	if err := s.startServices(ctx, o); err != nil {
		s.Stop()
		return nil, err
	}
	if o.HTTP.Addr != "" {
		if err := s.startEdge(o); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

func (s *Stack) startEdge(o Options) error {
	nc, err := s.Connect("edge")
	if err != nil {
		return err
	}
	srv, err := edge.New(nc, edge.OptionsFrom(o.HTTP, o.Log.With().Str("service", "edge").Logger()))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("stack: edge: %w", err)
	}
	s.GraphQL = "http://" + ln.Addr().String() + "/graphql"
	go func() { _ = srv.Serve(ln) }()
	s.stops = append(s.stops, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return nil
}

func (s *Stack) startServices(ctx context.Context, o Options) error {
	nc, err := s.Connect("workflow-service")
	if err != nil {
		return err
	}
	wf, err := workflow.Start(ctx, nc, workflow.Options{Store: o.Store, Concurrency: o.Concurrency,
		Log: o.Log.With().Str("service", "workflow").Logger()})
	if err != nil {
		return err
	}
	s.stops = append(s.stops, wf.Stop)
	if nc, err = s.Connect("event-service"); err != nil {
		return err
	}
	ev, err := event.Start(ctx, nc, event.Options{Store: o.Store, Concurrency: o.Concurrency,
		Log: o.Log.With().Str("service", "event").Logger()})
	if err != nil {
		return err
	}
	s.stops = append(s.stops, ev.Stop)
	for i := range max(o.TokenInstances, 1) {
		if nc, err = s.Connect(fmt.Sprintf("token-service-%d", i+1)); err != nil {
			return err
		}
		tk, err := token.Start(ctx, nc, token.Options{Store: o.Store, Concurrency: o.Concurrency,
			Log: o.Log.With().Str("service", "token").Logger()})
		if err != nil {
			return err
		}
		s.stops = append(s.stops, tk.Stop)
	}
	return nil
}

// Connect opens an in-process connection to the embedded server; the Stack
// closes it on Stop.
func (s *Stack) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(s.Server), nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("stack: connect %s: %w", name, err)
	}
	s.conns = append(s.conns, nc)
	return nc, nil
}

// ClientURL is the URL clients outside the process use, or "" when the
// server does not listen.
func (s *Stack) ClientURL() string {
	if s.Server.Addr() == nil {
		return ""
	}
	return s.Server.ClientURL()
}

// Stop stops the services (finishing requests in flight), closes the
// connections and shuts the server down.
func (s *Stack) Stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	for _, nc := range s.conns {
		nc.Close()
	}
	s.Server.Shutdown()
	s.Server.WaitForShutdown()
}
