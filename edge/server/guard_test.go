package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/config"
)

func TestLimitRefusesBeyondMaxInFlight(t *testing.T) {
	g := newGuard(Options{MaxInFlight: 1}.withDefaults())
	entered, hold := make(chan struct{}, 1), make(chan struct{})
	h := g.limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-hold
		}
	}))
	done := make(chan struct{})
	go func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/hold", nil)); close(done) }()
	<-entered
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	var body reply
	_ = json.Unmarshal(rec.Body.Bytes(), &body.body)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || body.code() != "UNAVAILABLE" {
		t.Fatalf("second request: %d, Retry-After %q, body %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	close(hold)
	<-done
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("after release: %d", rec.Code)
	}
}

func TestClientKey(t *testing.T) {
	cases := []struct{ name, remote, want string }{
		{"IPv4", "192.0.2.7:5000", "192.0.2.7/32"},
		{"IPv4-mapped IPv6", "[::ffff:192.0.2.7]:5000", "192.0.2.7/32"},
		{"IPv6 by /64", "[2001:db8:1:2:aaaa::1]:5000", "2001:db8:1:2::/64"},
		{"IPv6 with a zone", "[fe80::1%eth0]:5000", "fe80::/64"},
		{"unparsable", "pipe", "invalid Prefix"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := clientKey(tc.remote).String(); got != tc.want {
				t.Fatalf("clientKey(%q) = %s, want %s", tc.remote, got, tc.want)
			}
		})
	}
}

func TestClientSlotsFreeTheirAddress(t *testing.T) {
	c := newClientSlots(1)
	a, b := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32")
	if !c.acquire(a) || c.acquire(a) || !c.acquire(b) {
		t.Fatal("one slot per address")
	}
	c.release(a)
	c.release(b)
	if len(c.n) != 0 || !c.acquire(a) {
		t.Fatalf("after release: %v", c.n)
	}
}

// TestOptionsFromConfiguration: 0 in the configuration means no limit for
// the per-client and body-read caps, zero timeouts get the defaults, and
// the write timeout leaves room for a whole body and execution.
func TestOptionsFromConfiguration(t *testing.T) {
	o := OptionsFrom(config.HTTP{Timeout: time.Minute}, nil, zerolog.Nop()).withDefaults()
	if o.MaxPerClient != -1 || o.MaxBodyReads != -1 {
		t.Fatalf("caps %d, %d; want no limit", o.MaxPerClient, o.MaxBodyReads)
	}
	if o.BodyTimeout != DefaultBodyTimeout || o.ReadHeaderTimeout != DefaultReadHeaderTimeout || o.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Fatalf("defaults not applied: %+v", o)
	}
	if want := DefaultBodyTimeout + time.Minute + time.Second; o.WriteTimeout != want {
		t.Fatalf("write timeout %v, want %v", o.WriteTimeout, want)
	}
	d := Options{}.withDefaults()
	if d.MaxPerClient != DefaultMaxPerClient || d.MaxBodyReads != DefaultMaxBodyReads || d.WriteTimeout != DefaultWriteTimeout {
		t.Fatalf("zero Options: %+v", d)
	}
}
