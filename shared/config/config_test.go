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
