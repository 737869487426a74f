package systemtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Three ways a client reaches the edge, each returning raw GraphQL
// results: POST /graphql, graphql-transport-ws and server-sent events.

// idle is how long a subscription reader waits for one more result.
const idle = 300 * time.Millisecond

// post sends a document with variables over HTTP and returns the body.
func (s *system) post(t testing.TB, query string, vars map[string]any) []byte {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.stack.GraphQL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/graphql-response+json")
	s.authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// wsClient speaks graphql-transport-ws to the edge, one operation at a time.
type wsClient struct {
	c    *websocket.Conn
	next int
}

// dialWS connects and completes the connection_init handshake.
func (s *system) dialWS(t testing.TB) *wsClient {
	t.Helper()
	cx := ctx(t)
	url := "ws" + strings.TrimPrefix(s.stack.GraphQL, "http")
	c, _, err := websocket.Dial(cx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { c.CloseNow() })
	w := &wsClient{c: c}
	init := map[string]any{"type": "connection_init"}
	if s.bearer != "" {
		init["payload"] = map[string]any{"authorization": "Bearer " + s.bearer}
	}
	w.send(t, init)
	if m := w.read(t, 10*time.Second); m == nil || m.Type != "connection_ack" {
		t.Fatalf("no connection_ack: %+v", m)
	}
	return w
}

type wsMessage struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

func (w *wsClient) send(t testing.TB, m any) {
	t.Helper()
	b, _ := json.Marshal(m)
	if err := w.c.Write(ctx(t), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// read returns the next message, or nil when none came within d. The
// server's pings are answered and skipped.
func (w *wsClient) read(t testing.TB, d time.Duration) *wsMessage {
	t.Helper()
	cx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		_, b, err := w.c.Read(cx)
		if err != nil {
			if cx.Err() != nil {
				return nil
			}
			t.Fatalf("websocket read: %v", err)
		}
		var m wsMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("undecodable message %s", b)
		}
		if m.Type != "ping" {
			return &m
		}
		w.send(t, map[string]any{"type": "pong"})
	}
}

// run subscribes with a document and returns its results: every result up
// to complete, or, for a stream that does not complete, up to max results
// or until none came for idle, and then completes the operation. A read
// that times out closes the socket (coder/websocket does so when a read
// is cancelled): use a fresh client for each stream that may not complete.
func (w *wsClient) run(t testing.TB, query string, vars map[string]any, max int) [][]byte {
	t.Helper()
	w.next++
	id := fmt.Sprint(w.next)
	w.send(t, map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars}})
	var out [][]byte
	wait := 10 * time.Second // the first result may replay history
	for len(out) < max {
		m := w.read(t, wait)
		if m == nil {
			return out // the socket is closed now
		}
		if m.ID != id {
			continue // the end of an earlier operation
		}
		switch m.Type {
		case "next":
			out = append(out, m.Payload)
			wait = idle
		case "complete":
			return out
		case "error":
			return append(out, []byte(fmt.Sprintf(`{"errors":%s}`, m.Payload)))
		}
	}
	w.send(t, map[string]any{"id": id, "type": "complete"})
	return out
}

// sse subscribes over server-sent events (distinct connections mode) and
// returns up to max results, or those that came until none came for idle.
func (s *system) sse(t testing.TB, query string, vars map[string]any, max int) [][]byte {
	t.Helper()
	cx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequestWithContext(cx, http.MethodPost, s.stack.GraphQL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	s.authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	results := make(chan []byte)
	go func() {
		defer close(results)
		lines := bufio.NewScanner(resp.Body)
		lines.Buffer(nil, 64<<20)
		for lines.Scan() {
			if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok && data != "" {
				select {
				case results <- []byte(data):
				case <-cx.Done():
					return
				}
			}
		}
	}()
	var out [][]byte
	wait := 10 * time.Second
	for len(out) < max {
		select {
		case r, ok := <-results:
			if !ok {
				return out
			}
			out = append(out, r)
			wait = idle
		case <-time.After(wait):
			return out
		}
	}
	return out
}

// authorize adds the system's credential to a GraphQL request.
func (s *system) authorize(req *http.Request) {
	if s.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+s.bearer)
	}
}
