package securitytest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// TestMutualTLS makes certificates with tls/gen-certs.sh, starts the server
// from tls.conf and checks that a process needs both its client
// certificate and its password, and that permissions still apply.
func TestMutualTLS(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	conf := filepath.Join(natsDir(t), "tls.conf")
	dir := t.TempDir()
	certs := filepath.Join(dir, "tls", "certs")
	out, err := exec.Command("bash", filepath.Join(natsDir(t), "tls", "gen-certs.sh"), certs).CombinedOutput()
	if err != nil {
		t.Fatalf("gen-certs.sh: %v\n%s", err, out)
	}
	pw := setPasswords(t)
	t.Chdir(dir) // tls.conf names its certificates relative to the working directory
	ns := startServerFile(t, conf)
	url := strings.Replace(ns.ClientURL(), "nats://", "tls://", 1)
	ca := nats.RootCAs(filepath.Join(certs, "ca.pem"))
	cert := func(user string) nats.Option {
		return nats.ClientCert(filepath.Join(certs, user+".pem"), filepath.Join(certs, user+"-key.pem"))
	}

	if _, err := dial(url, "edge", pw["edge"], ca, nats.Timeout(2*time.Second)); err == nil {
		t.Fatal("connected without a client certificate")
	}
	if _, err := dial(url, "edge", "wrong", ca, cert("edge"), nats.Timeout(2*time.Second)); err == nil {
		t.Fatal("connected with a certificate and a wrong password")
	}

	token, err := dial(url, "token", pw["token"], ca, cert("token"))
	if err != nil {
		t.Fatalf("token over mutual TLS: %v", err)
	}
	defer token.Close()
	if _, err := token.QueueSubscribe(subjects.TokenGet.Pattern(), subjects.QueueGroup, func(m *nats.Msg) { _ = m.Respond([]byte("ok")) }); err != nil {
		t.Fatal(err)
	}
	if err := token.Flush(); err != nil {
		t.Fatal(err)
	}
	edge, err := dial(url, "edge", pw["edge"], ca, cert("edge"))
	if err != nil {
		t.Fatalf("edge over mutual TLS: %v", err)
	}
	defer edge.Close()
	if m, err := edge.Request(subjects.TokenGet.In("acme"), nil, 2*time.Second); err != nil || string(m.Data) != "ok" {
		t.Fatalf("request over TLS: %v", err)
	}
	deniedPublish(t, edge, "workflows.doc.events.lifecycle")

	acme, err := dial(url, "tenant-acme", pw["tenant-acme"], ca, cert("tenant-acme"))
	if err != nil {
		t.Fatalf("tenant-acme over mutual TLS: %v", err)
	}
	defer acme.Close()
	if m, err := acme.Request(subjects.TokenGet.In("acme"), nil, 2*time.Second); err != nil || string(m.Data) != "ok" {
		t.Fatalf("tenant request over TLS: %v", err)
	}
	deniedRequest(t, acme, subjects.TokenGet.In("beta"), nil)
}
