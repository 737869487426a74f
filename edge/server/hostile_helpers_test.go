package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/natstest"
)

// The loopback addresses that tell clients apart: well-behaved clients
// dial from goodAddr, attackers from attackAddr (Linux routes 127/8).
const (
	goodAddr   = "127.0.0.1"
	attackAddr = "127.0.0.2"
)

// typename is the cheapest query: it touches neither NATS nor a service,
// so its latency is the edge's own.
const typename = `{"query":"{ __typename }"}`

// startEdge serves a new edge with o on a real listener on 127.0.0.1, so
// the http.Server's own timeouts apply, and returns its address. It is
// shut down when the test ends.
func startEdge(t *testing.T, o Options) string {
	t.Helper()
	return startEdgeOn(t, natstest.Connect(t, natstest.Server(t)), o)
}

// startEdgeOn is startEdge on the NATS connection nc.
func startEdgeOn(t *testing.T, nc *nats.Conn, o Options) string {
	t.Helper()
	o.Log = zerolog.Nop()
	srv, err := New(nc, o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", goodAddr+":0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// dialerFrom dials from the local IP address from.
func dialerFrom(from string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
}

// clientFrom is an HTTP client whose connections come from the local IP
// address from.
func clientFrom(from string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialerFrom(from).DialContext}}
}

// reply is an answered request: status, headers and GraphQL body.
type reply struct {
	status int
	header http.Header
	body   struct {
		Data   map[string]any
		Errors []struct {
			Message    string
			Extensions map[string]any
		}
	}
}

// code is the first error's extensions.code, or "".
func (r reply) code() string {
	if len(r.body.Errors) == 0 {
		return ""
	}
	c, _ := r.body.Errors[0].Extensions["code"].(string)
	return c
}

// post sends a GraphQL POST with c and decodes the answer.
func post(c *http.Client, addr, body string) (reply, error) {
	resp, err := c.Post("http://"+addr+"/graphql", "application/json", strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	raw, err := io.ReadAll(resp.Body)
	if err == nil && len(raw) > 0 {
		err = json.Unmarshal(raw, &r.body)
	}
	return r, err
}

// slowBodyHeaders starts a POST that declares a 1000-byte body.
const slowBodyHeaders = "POST /graphql HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"

// slowBody sends the declared body one byte every gap on c, until the
// server answers or closes the connection or ctx ends; sent is called
// after the headers and first byte are out.
func slowBody(ctx context.Context, c net.Conn, gap time.Duration, sent func()) {
	defer context.AfterFunc(ctx, func() { _ = c.Close() })()
	if _, err := io.WriteString(c, slowBodyHeaders); err != nil {
		return
	}
	buf := make([]byte, 1)
	for i := 0; i < 1000; i++ {
		if _, err := c.Write([]byte{' '}); err != nil {
			return
		}
		if i == 0 {
			sent()
		}
		_ = c.SetReadDeadline(time.Now().Add(gap))
		var ne net.Error
		if _, err := c.Read(buf); !errors.As(err, &ne) || !ne.Timeout() {
			return // answered or closed
		}
	}
}

// attack runs n slow-body attackers from attackAddr against addr until ctx
// ends, each opening a new connection gap after the server answers or
// closes its last one. It returns once every attacker has sent its first
// body byte, and wait returns once they have all stopped.
func attack(ctx context.Context, t *testing.T, addr string, n int, gap time.Duration) (wait func()) {
	t.Helper()
	var wg sync.WaitGroup
	var started sync.WaitGroup
	started.Add(n)
	for range n {
		var once sync.Once
		wg.Go(func() {
			defer once.Do(started.Done)
			for ctx.Err() == nil {
				c, err := dialerFrom(attackAddr).DialContext(ctx, "tcp", addr)
				if err == nil {
					slowBody(ctx, c, gap, func() { once.Do(started.Done) })
					_ = c.Close()
				}
				select {
				case <-ctx.Done():
				case <-time.After(gap):
				}
			}
		})
	}
	started.Wait()
	return wg.Wait
}

// queryFor runs typename queries one after another from goodAddr for d
// and returns their latencies and the count of each status.
func queryFor(t *testing.T, addr string, d time.Duration) ([]time.Duration, map[int]int) {
	t.Helper()
	c := clientFrom(goodAddr)
	defer c.CloseIdleConnections()
	var lat []time.Duration
	statuses := map[int]int{}
	for end := time.Now().Add(d); time.Now().Before(end); {
		start := time.Now()
		r, err := post(c, addr, typename)
		if err != nil {
			t.Fatalf("good client: %v", err)
		}
		lat = append(lat, time.Since(start))
		statuses[r.status]++
	}
	return lat, statuses
}

// percentile returns the p-th percentile (0 < p ≤ 100) of lat.
func percentile(lat []time.Duration, p float64) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// refused returns cb_http_refused_total for reason.
func refused(reg *metrics.Registry, why reason) int {
	var b bytes.Buffer
	_, _ = reg.WriteTo(&b)
	var n int
	prefix := fmt.Sprintf("cb_http_refused_total{reason=%q} ", string(why))
	for _, line := range strings.Split(b.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			_, _ = fmt.Sscan(rest, &n)
		}
	}
	return n
}

// eventually polls cond every 20 ms until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
