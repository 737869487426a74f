package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/natstest"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// TestSlowBodiesDoNotStarveOtherClients: 200 connections sending their
// declared body one byte every 500 ms, more than MaxInFlight, used to hold
// every in-flight slot so that everyone else got 503. Bodies are now read
// before a request takes a slot, and cut off after the body timeout, so a
// well-behaved client on another address is served at once throughout;
// with the per-client cap most attackers are refused with 429 at once.
func TestSlowBodiesDoNotStarveOtherClients(t *testing.T) {
	cases := []struct {
		name         string
		maxPerClient int
		refusedMost  reason
	}{
		{"per-client cap", 0, refusedPerClient},
		{"no per-client cap", -1, refusedBodyTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := metrics.NewRegistry()
			addr := startEdge(t, Options{MaxInFlight: 100, MaxPerClient: tc.maxPerClient, BodyTimeout: time.Second, Metrics: reg})
			ctx, stop := context.WithCancel(context.Background())
			wait := attack(ctx, t, addr, 200, 500*time.Millisecond)
			lat, statuses := queryFor(t, addr, 2500*time.Millisecond)
			stop()
			wait()
			p50, p99 := percentile(lat, 50), percentile(lat, 99)
			t.Logf("good client during the attack: %d queries, p50 %v, p99 %v, max %v; statuses %v; refused: per_client %d, body_timeout %d",
				len(lat), p50, p99, percentile(lat, 100), statuses, refused(reg, refusedPerClient), refused(reg, refusedBodyTimeout))
			if statuses[http.StatusOK] != len(lat) {
				t.Errorf("good client statuses %v, want only 200", statuses)
			}
			if p99 > 100*time.Millisecond {
				t.Errorf("good client p99 %v, want < 100ms", p99)
			}
			if refused(reg, tc.refusedMost) == 0 || refused(reg, refusedBodyTimeout) == 0 {
				t.Errorf("attackers were not refused (%s, body_timeout)", tc.refusedMost)
			}
		})
	}
}

// TestTooManyRequestsFromOneAddress: a client address with MaxPerClient
// requests in progress gets 429, Retry-After and a GraphQL error body for
// more, while other addresses are served; its slots free up when its
// requests end.
func TestTooManyRequestsFromOneAddress(t *testing.T) {
	reg := metrics.NewRegistry()
	addr := startEdge(t, Options{MaxPerClient: 2, BodyTimeout: 5 * time.Second, Metrics: reg})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for range 2 {
		c, err := dialerFrom(goodAddr).DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() { slowBody(ctx, c, time.Minute, func() {}); done <- struct{}{} }()
	}
	c := clientFrom(goodAddr)
	var r reply
	eventually(t, "a 429", func() bool {
		var err error
		r, err = post(c, addr, typename)
		return err == nil && r.status == http.StatusTooManyRequests
	})
	if r.header.Get("Retry-After") != "1" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || r.code() != CodeTooManyRequests {
		t.Fatalf("429 with headers %v, body %+v", r.header, r.body)
	}
	if resp := slowRequest(t, addr, slowBodyHeaders+" "); resp.StatusCode != http.StatusTooManyRequests || !resp.Close {
		t.Fatalf("a slow sender over the cap: %d, close %v; want 429 at once and the connection closed", resp.StatusCode, resp.Close)
	}
	if other, err := post(clientFrom(attackAddr), addr, typename); err != nil || other.status != http.StatusOK {
		t.Fatalf("another address: %+v, %v", other, err)
	}
	stop()
	<-done
	<-done
	eventually(t, "slots freed", func() bool {
		r, err := post(c, addr, typename)
		return err == nil && r.status == http.StatusOK
	})
	if refused(reg, refusedPerClient) == 0 {
		t.Fatal("refusal not counted")
	}
}

// TestSlowBodyGets408: a body not sent within the body timeout is answered
// 408 with a GraphQL error, and the connection is closed.
func TestSlowBodyGets408(t *testing.T) {
	addr := startEdge(t, Options{BodyTimeout: 300 * time.Millisecond})
	start := time.Now()
	resp := slowRequest(t, addr, slowBodyHeaders+`{"query"`)
	took := time.Since(start)
	var body reply
	if err := json.NewDecoder(resp.Body).Decode(&body.body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestTimeout || body.code() != "BAD_REQUEST" || !resp.Close {
		t.Fatalf("status %d, close %v, body %+v", resp.StatusCode, resp.Close, body.body)
	}
	if took < 250*time.Millisecond || took > 3*time.Second {
		t.Fatalf("answered after %v, want about 300ms", took)
	}
}

// TestUnreadBodiesAreBounded: a body no handler reads, such as a CORS
// preflight's, is discarded by net/http under the body timeout too,
// instead of holding the connection for as long as the client trickles.
func TestUnreadBodiesAreBounded(t *testing.T) {
	addr := startEdge(t, Options{BodyTimeout: 300 * time.Millisecond, CORSOrigins: []string{"*"}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	preflight := "OPTIONS /graphql HTTP/1.1\r\nHost: edge\r\nOrigin: https://app.example\r\n" +
		"Access-Control-Request-Method: POST\r\nContent-Length: 1000\r\n\r\n "
	if _, err := io.WriteString(c, preflight); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, c) // until the server closes the connection
	if took := time.Since(start); err != nil || took > 3*time.Second {
		t.Fatalf("connection held for %v: %v", took, err)
	}
}

// slowRequest sends raw, a request whose body is not all there, on a new
// connection and reads the answer, which must come within 5s; the
// connection must then be closed.
func slowRequest(t *testing.T, addr, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after the answer: %v", err)
	}
	return resp
}

// TestSlowHeadersAreCutOff: a client sending its headers a line at a time
// (slowloris) has its connection closed after ReadHeaderTimeout.
func TestSlowHeadersAreCutOff(t *testing.T) {
	addr := startEdge(t, Options{ReadHeaderTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		_, _ = io.WriteString(c, "GET /health HTTP/1.1\r\nHost: edge\r\n")
		for i := 0; ctx.Err() == nil; i++ {
			time.Sleep(100 * time.Millisecond)
			if _, err := io.WriteString(c, "X-Slow: "+strings.Repeat("a", i)+"\r\n"); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	took := time.Since(start)
	if n > 0 || !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("read %d bytes, %v: connection not closed", n, err)
	}
	if took < 250*time.Millisecond || took > 2*time.Second {
		t.Fatalf("closed after %v, want about 300ms", took)
	}
}

// TestOversizedHeadersGet431: headers over MaxHeaderBytes are refused.
func TestOversizedHeadersGet431(t *testing.T) {
	addr := startEdge(t, Options{MaxHeaderBytes: 4 << 10})
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/health", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// TestBodyDeadlineEndsWithTheBody: a request whose body came in time may
// take longer than the body timeout to execute; the body's read deadline
// must not cut it off (a regression guard: both the guard and net/http
// lift it once the body is in).
func TestBodyDeadlineEndsWithTheBody(t *testing.T) {
	ns := natstest.Server(t)
	svc := natstest.Connect(t, ns)
	page, _ := json.Marshal(map[string]any{"items": []any{}})
	if _, err := svc.Subscribe(subjects.WorkflowList.In(subjects.AllTenants), func(m *nats.Msg) {
		time.Sleep(500 * time.Millisecond)
		_ = m.Respond(page)
	}); err != nil {
		t.Fatal(err)
	}
	addr := startEdgeOn(t, natstest.Connect(t, ns), Options{BodyTimeout: 200 * time.Millisecond})
	r, err := post(clientFrom(goodAddr), addr, `{"query":"{ workflows { id } }"}`)
	if err != nil || r.status != http.StatusOK || len(r.body.Errors) != 0 {
		t.Fatalf("status %d, body %+v, %v", r.status, r.body, err)
	}
}

// TestSubscriptionsOutliveTheWriteTimeout: a WebSocket upgraded on a
// keep-alive connection that carried a plain request, and so that
// request's write deadline, keeps working after the deadline has passed
// (a regression guard: both the guard and net/http's Hijack clear it).
func TestSubscriptionsOutliveTheWriteTimeout(t *testing.T) {
	o := Options{BodyTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond}
	o.Limits.Timeout = 200 * time.Millisecond // write deadline: 1.3s after the headers
	addr := startEdge(t, o)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	plain := "POST /graphql HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(typename)) + "\r\n\r\n" + typename
	if _, err := io.WriteString(c, plain); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("plain request: %v, %+v", err, resp)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	// The upgrade goes over the same connection.
	reuse := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return c, nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/graphql", &websocket.DialOptions{HTTPClient: &http.Client{Transport: reuse}, Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	exchange(ctx, t, ws, `{"type":"connection_init"}`, "connection_ack")
	time.Sleep(1500 * time.Millisecond) // past the plain request's write deadline
	exchange(ctx, t, ws, `{"type":"ping"}`, "pong")
}

// exchange sends msg on ws and expects a message of type want back.
func exchange(ctx context.Context, t *testing.T, ws *websocket.Conn, msg, want string) {
	t.Helper()
	if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("send %s: %v", msg, err)
	}
	_, b, err := ws.Read(ctx)
	var got struct{ Type string }
	if err != nil || json.Unmarshal(b, &got) != nil || got.Type != want {
		t.Fatalf("after %s got %s, %v; want %s", msg, b, err, want)
	}
}
