// Package natstest starts real NATS servers for tests, like httptest does
// for HTTP: an embedded nats-server with JetStream in t.TempDir(), listening
// on a random loopback port, shut down when the test ends.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cbnats/circuitbreaker/shared/embedded"
)

// Server starts a JetStream server storing in a fresh temporary directory.
func Server(t testing.TB) *server.Server {
	t.Helper()
	return ServerAt(t, t.TempDir())
}

// ServerAt starts a JetStream server storing in dir, so a test can restart
// a server on the same data.
func ServerAt(t testing.TB, dir string) *server.Server {
	t.Helper()
	ns, err := embedded.Start(embedded.Options{DataDir: dir, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// Connect opens a TCP connection to ns that is closed when the test ends.
func Connect(t testing.TB, ns *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
