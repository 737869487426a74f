package config

import (
	"flag"
	"testing"
	"time"
)

func TestFlagsFallBackToEnvironment(t *testing.T) {
	env := map[string]string{"NATS_URL": "nats://a:1", "NATS_MAX_AGE": "3600", "CB_REPLICAS": "3"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := &Flags{FS: fs, Getenv: func(k string) string { return env[k] }}
	var n NATS
	var s Store
	n.Register(f, "nats://default:4222")
	s.Register(f)
	if err := fs.Parse([]string{"--replicas", "5"}); err != nil || f.Err() != nil {
		t.Fatal(err, f.Err())
	}
	if n.URL != "nats://a:1" || s.EventMaxAge != time.Hour || s.Replicas != 5 || s.DedupeWindow != 2*time.Minute {
		t.Fatalf("url %s age %v replicas %d window %v", n.URL, s.EventMaxAge, s.Replicas, s.DedupeWindow)
	}
}

func TestBadEnvironmentValueIsAnError(t *testing.T) {
	f := &Flags{FS: flag.NewFlagSet("t", flag.ContinueOnError), Getenv: func(string) string { return "many" }}
	var s Store
	s.Register(f)
	if f.Err() == nil {
		t.Fatal("no error for CB_REPLICAS=many")
	}
}

func TestOrigins(t *testing.T) {
	h := HTTP{CORS: " https://a.example , ,*"}
	if got := h.Origins(); len(got) != 2 || got[0] != "https://a.example" || got[1] != "*" {
		t.Fatalf("origins = %q", got)
	}
}

// TestHTTPGuardFlags: the hostile-input limits have public-deployment
// defaults and fall back to the environment like every other flag.
func TestHTTPGuardFlags(t *testing.T) {
	env := map[string]string{"CB_HTTP_BODY_TIMEOUT": "3", "CB_MAX_PER_CLIENT": "0"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := &Flags{FS: fs, Getenv: func(k string) string { return env[k] }}
	var h HTTP
	h.Register(f, "127.0.0.1:4000", "")
	if err := fs.Parse([]string{"--max-body-reads", "10"}); err != nil || f.Err() != nil {
		t.Fatal(err, f.Err())
	}
	want := HTTP{HeaderTimeout: 5 * time.Second, BodyTimeout: 3 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10, MaxPerClient: 0, MaxBodyReads: 10}
	got := HTTP{HeaderTimeout: h.HeaderTimeout, BodyTimeout: h.BodyTimeout, WriteTimeout: h.WriteTimeout,
		IdleTimeout: h.IdleTimeout, MaxHeaderBytes: h.MaxHeaderBytes, MaxPerClient: h.MaxPerClient, MaxBodyReads: h.MaxBodyReads}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}
