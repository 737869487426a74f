package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/cbnats/circuitbreaker/shared/natstest"
)

func noEnv(string) string { return "" }

func TestProbeService(t *testing.T) {
	ns := natstest.Server(t)
	nc := natstest.Connect(t, ns)
	if _, err := nc.Subscribe("$SRV.PING.token", func(m *nats.Msg) { _ = m.Respond([]byte(`{}`)) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"--nats", ns.ClientURL(), "token"}, noEnv, io.Discard); err != nil {
		t.Fatalf("token answers: %v", err)
	}
	if err := run([]string{"--nats", ns.ClientURL(), "--timeout", "300ms", "event"}, noEnv, io.Discard); err == nil {
		t.Fatal("healthy without an event service")
	}
	env := map[string]string{"NATS_URL": ns.ClientURL()}
	if err := run([]string{"token"}, func(k string) string { return env[k] }, io.Discard); err != nil {
		t.Fatalf("NATS_URL from the environment: %v", err)
	}
}

func TestProbeHTTP(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
	defer srv.Close()
	if err := run([]string{"--http", srv.URL + "/ready"}, noEnv, io.Discard); err != nil {
		t.Fatalf("200: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := run([]string{"--http", srv.URL + "/ready"}, noEnv, io.Discard); err == nil {
		t.Fatal("503 is healthy")
	}
}

func TestUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"nothing":  nil,
		"both":     {"--http", "http://x", "token"},
		"two":      {"token", "event"},
		"bad flag": {"--nope"},
	} {
		if err := run(args, noEnv, io.Discard); err == nil {
			t.Errorf("%s: no usage error", name)
		}
	}
}
