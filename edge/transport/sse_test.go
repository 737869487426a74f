package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/edge/transport/internal/tickschema"
)

// sseEvent is one parsed event; comment events have Event ":".
type sseEvent struct{ Event, Data string }

// post sends query as a JSON POST accepting text/event-stream.
func (ts *testServer) post(t *testing.T, ctx context.Context, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "text/event-stream")
	return do(t, req)
}

// get sends a GET accepting text/event-stream with the given parameters.
func (ts *testServer) get(t *testing.T, ctx context.Context, params url.Values) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+"?"+params.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	return do(t, req)
}

// do sends req and closes the response body at cleanup.
func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// sseReader reads events from a response body.
type sseReader struct{ sc *bufio.Scanner }

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 4<<20)
	return &sseReader{sc: sc}
}

// next returns the next event, or io.EOF.
func (r *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	seen := false
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case line == "":
			if seen {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
			ev.Event, seen = ":", true
		case strings.HasPrefix(line, "event:"):
			ev.Event, seen = strings.TrimSpace(strings.TrimPrefix(line, "event:")), true
		case strings.HasPrefix(line, "data:"):
			ev.Data, seen = strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "), true
		}
	}
	if err := r.sc.Err(); err != nil {
		return ev, err
	}
	return ev, io.EOF
}

// readAll returns all non-comment events until the stream ends.
func readAll(t *testing.T, resp *http.Response) []sseEvent {
	t.Helper()
	var evs []sseEvent
	r := newSSEReader(resp.Body)
	for {
		ev, err := r.next()
		if errors.Is(err, io.EOF) {
			return evs
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Event != ":" {
			evs = append(evs, ev)
		}
	}
}

// expectEvents checks the status, content type and exact events.
func expectEvents(t *testing.T, resp *http.Response, want ...sseEvent) {
	t.Helper()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got := readAll(t, resp)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
}

func next(data string) sseEvent { return sseEvent{"next", data} }

var complete = sseEvent{"complete", ""}

func TestSSESubscription(t *testing.T) {
	ts := newTestServer(t, Options{})
	resp := ts.post(t, context.Background(), `{"query":"subscription($n: Int!) { ticks(n: $n) }","variables":{"n":3}}`)
	expectEvents(t, resp, next(`{"data":{"ticks":1}}`), next(`{"data":{"ticks":2}}`), next(`{"data":{"ticks":3}}`), complete)
	eventually(t, "source finished", func() bool { return ts.fx.Finished() == 1 })
}

func TestSSEGet(t *testing.T) {
	ts := newTestServer(t, Options{})
	resp := ts.get(t, context.Background(), url.Values{"query": {"subscription T($n: Int!) { ticks(n: $n) }"}, "variables": {`{"n":2}`}, "operationName": {"T"}})
	expectEvents(t, resp, next(`{"data":{"ticks":1}}`), next(`{"data":{"ticks":2}}`), complete)
}

func TestSSESingleResult(t *testing.T) {
	ts := newTestServer(t, Options{})
	expectEvents(t, ts.post(t, context.Background(), `{"query":"{ hello }"}`), next(`{"data":{"hello":"world"}}`), complete)
	expectEvents(t, ts.post(t, context.Background(), `{"query":"mutation { bump }"}`), next(`{"data":{"bump":1}}`), complete)
}

func TestSSEStreamedErrors(t *testing.T) {
	ts := newTestServer(t, Options{})
	tests := []struct{ name, body, want string }{
		{"validation", `{"query":"subscription { nope }"}`, `{"errors":[{"message":"Cannot query field \"nope\" on type \"Subscription\".","locations":[{"line":1,"column":16}],"extensions":{"code":"GRAPHQL_VALIDATION_FAILED"}}]}`},
		{"variables", `{"query":"subscription($n: Int!) { ticks(n: $n) }"}`, ""},
		{"source", `{"query":"subscription { failing }"}`, `{"errors":[{"message":"tickschema: source unavailable","locations":[{"line":1,"column":16}],"path":["failing"],"extensions":{"code":"INTERNAL"}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := readAll(t, ts.post(t, context.Background(), tt.body))
			if len(evs) != 2 || evs[0].Event != "next" || !strings.HasPrefix(evs[0].Data, `{"errors":[`) || evs[1] != complete {
				t.Fatalf("events %v; want next with errors, complete", evs)
			}
			if tt.want != "" && evs[0].Data != tt.want {
				t.Fatalf("data\n got %s\nwant %s", evs[0].Data, tt.want)
			}
		})
	}
}

func TestSSERejectedRequests(t *testing.T) {
	ts := newTestServer(t, Options{})
	tests := []struct {
		name        string
		method, ct  string
		body, query string
		status      int
		allow       string
	}{
		{"parse error", "POST", "application/json", `{"query":"subscription {"}`, "", 400, ""},
		{"unknown operation", "POST", "application/json", `{"query":"subscription A { ticks(n: 1) }","operationName":"B"}`, "", 400, ""},
		{"no query", "POST", "application/json", `{"variables":{}}`, "", 400, ""},
		{"not json", "POST", "application/json", `{`, "", 400, ""},
		{"variables not an object", "POST", "application/json", `{"query":"{ hello }","variables":[1]}`, "", 400, ""},
		{"wrong content type", "POST", "text/plain", `{"query":"{ hello }"}`, "", 415, ""},
		{"mutation over GET", "GET", "", "", "query=" + url.QueryEscape("mutation { bump }"), 405, "POST"},
		{"PUT", "PUT", "application/json", `{"query":"{ hello }"}`, "", 405, "GET, POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, ts.url+"?"+tt.query, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "text/event-stream")
			if tt.ct != "" {
				req.Header.Set("Content-Type", tt.ct)
			}
			resp := do(t, req)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" || !strings.HasPrefix(string(body), `{"errors":[{"message":`) {
				t.Fatalf("got %d %q %s; want %d JSON errors", resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.status)
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Fatalf("Allow %q; want %q", got, tt.allow)
			}
		})
	}
	if ts.fx.Started() != 0 {
		t.Fatalf("%d sources started for rejected requests", ts.fx.Started())
	}
}

func TestSSEOnConnect(t *testing.T) {
	ts := newTestServer(t, Options{OnConnect: func(ctx context.Context, r *http.Request, _ map[string]any) (context.Context, error) {
		if r.Header.Get("Authorization") != "Bearer ann" {
			return nil, errors.New("no user")
		}
		return tickschema.WithUser(ctx, "ann"), nil
	}})
	resp := ts.post(t, context.Background(), `{"query":"{ user }"}`)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d; want 403", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.url, strings.NewReader(`{"query":"{ user }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer ann")
	expectEvents(t, do(t, req), next(`{"data":{"user":"ann"}}`), complete)
}

func TestSSEDisconnectCancelsSource(t *testing.T) {
	ts := newTestServer(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := ts.post(t, ctx, `{"query":"subscription { ticks(n: -1, everyMs: 2) }"}`)
	r := newSSEReader(resp.Body)
	for {
		ev, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Event == "next" {
			break
		}
	}
	cancel()
	eventually(t, "source cancelled", func() bool { return ts.fx.Cancelled() == 1 })
}

func TestSSEKeepAlive(t *testing.T) {
	ts := newTestServer(t, Options{KeepAlive: 5 * time.Millisecond})
	resp := ts.post(t, context.Background(), `{"query":"subscription { ticks(n: 2, everyMs: 50) }"}`)
	r := newSSEReader(resp.Body)
	comments := 0
	for {
		ev, err := r.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Event == ":" {
			comments++
		}
	}
	if comments < 2 { // the opening comment plus at least one keep-alive
		t.Fatalf("%d comments; want keep-alives", comments)
	}
}

func TestSSESlowClientDropped(t *testing.T) {
	ts := newTestServer(t, Options{SendBuffer: 4, WriteTimeout: 200 * time.Millisecond})
	resp := ts.post(t, context.Background(), `{"query":"subscription { blobs(size: 65536) }"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The body is not read: the server's buffer overflows and it ends the
	// stream, cancelling the source, while other clients are served.
	expectEvents(t, ts.post(t, context.Background(), `{"query":"subscription { ticks(n: 2) }"}`), next(`{"data":{"ticks":1}}`), next(`{"data":{"ticks":2}}`), complete)
	eventually(t, "slow client's source cancelled", func() bool { return ts.fx.Cancelled() == 1 && ts.fx.Active() == 0 })
	// Reading now finds the stream cut off (possibly mid-chunk), never a
	// complete event.
	r := newSSEReader(resp.Body)
	for {
		ev, err := r.next()
		if err != nil {
			break
		}
		if ev == complete {
			t.Fatal("slow stream ended with complete; want it cut off")
		}
	}
}

func TestSSEServerShutdown(t *testing.T) {
	ts := newTestServer(t, Options{})
	resp := ts.post(t, context.Background(), `{"query":"subscription { ticks(n: -1, everyMs: 5) }"}`)
	r := newSSEReader(resp.Body)
	for {
		ev, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Event == "next" {
			break
		}
	}
	ts.shutdown()
	for {
		ev, err := r.next()
		if err != nil {
			break // the stream ends; no complete is sent
		}
		if ev == complete {
			t.Fatal("complete sent on shutdown")
		}
	}
	eventually(t, "source cancelled", func() bool { return ts.fx.Cancelled() == 1 })
}

func TestSSENotAcceptable(t *testing.T) {
	fx, err := tickschema.New()
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query":"{ hello }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	SSE(fx.Schema, Options{}).ServeHTTP(rec, req)
	if rec.Code != http.StatusNotAcceptable {
		t.Fatalf("status %d; want 406", rec.Code)
	}
}
