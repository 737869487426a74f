package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cbnats/circuitbreaker/edge/transport/internal/tickschema"
)

func TestWebSocketSubscription(t *testing.T) {
	ts := newTestServer(t, Options{})
	c := ts.dial(t)
	c.init()
	c.subscribe("1", "subscription { ticks(n: 3) }")
	for i := 1; i <= 3; i++ {
		c.expect("next", "1", fmt.Sprintf(`{"data":{"ticks":%d}}`, i))
	}
	c.expect("complete", "1", "")
	eventually(t, "source finished", func() bool { return ts.fx.Finished() == 1 })
	// The id is free again once completed.
	c.subscribe("1", "subscription { ticks(n: 1) }")
	c.expect("next", "1", `{"data":{"ticks":1}}`)
	c.expect("complete", "1", "")
}

func TestWebSocketSingleResult(t *testing.T) {
	tests := []struct {
		name, query, want string
	}{
		{"query", "{ hello }", `{"data":{"hello":"world"}}`},
		{"mutation", "mutation { bump }", `{"data":{"bump":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestServer(t, Options{}).dial(t)
			c.init()
			c.subscribe("q", tt.query)
			c.expect("next", "q", tt.want)
			c.expect("complete", "q", "")
		})
	}
}

func TestWebSocketOperationErrors(t *testing.T) {
	tests := []struct {
		name, query, want string
	}{
		{"validation", "subscription { nope }", `[{"message":"Cannot query field \"nope\" on type \"Subscription\".","locations":[{"line":1,"column":16}],"extensions":{"code":"GRAPHQL_VALIDATION_FAILED"}}]`},
		{"parse", "subscription {", ""},
		{"source", "subscription { failing }", `[{"message":"tickschema: source unavailable","locations":[{"line":1,"column":16}],"path":["failing"],"extensions":{"code":"INTERNAL"}}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestServer(t, Options{}).dial(t)
			c.init()
			c.subscribe("e", tt.query)
			c.expect("error", "e", tt.want)
			// No complete follows an error; the connection stays usable.
			c.send(map[string]any{"type": "ping"})
			c.expect("pong", "", "")
		})
	}
}

func TestWebSocketPingPong(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: 20 * time.Millisecond})
	c := ts.dial(t)
	c.send(map[string]any{"type": "ping", "payload": map[string]any{"k": "v"}})
	c.expect("pong", "", `{"k":"v"}`)
	c.send(map[string]any{"type": "ping"})
	if m := c.expect("pong", "", ""); m.Payload != nil {
		t.Fatalf("pong payload %s; want none", m.Payload)
	}
	c.send(map[string]any{"type": "pong"}) // unsolicited heartbeat: ignored
	c.init()
	c.expect("ping", "", "") // the server's own keep-alive
	c.send(map[string]any{"type": "pong"})
}

func TestWebSocketCloseCodes(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		run  func(c *wsClient)
		want websocket.StatusCode
	}{
		{"init timeout", Options{InitTimeout: 30 * time.Millisecond}, func(*wsClient) {}, CloseInitTimeout},
		{"subscribe before init", Options{}, func(c *wsClient) { c.subscribe("1", "subscription { ticks(n: 1) }") }, CloseUnauthorized},
		{"duplicate id", Options{}, func(c *wsClient) {
			c.init()
			c.subscribe("a", "subscription { ticks(n: -1, everyMs: 5) }")
			c.subscribe("a", "subscription { ticks(n: 1) }")
		}, CloseSubscriberAlreadyExists},
		{"second init", Options{}, func(c *wsClient) {
			c.init()
			c.send(map[string]any{"type": "connection_init"})
		}, CloseTooManyInitRequests},
		{"forbidden", Options{OnConnect: func(ctx context.Context, _ *http.Request, p map[string]any) (context.Context, error) {
			if p["token"] != "secret" {
				return nil, errors.New("bad token")
			}
			return ctx, nil
		}}, func(c *wsClient) {
			c.send(map[string]any{"type": "connection_init", "payload": map[string]any{"token": "guess"}})
		}, CloseForbidden},
		{"not json", Options{}, func(c *wsClient) { c.sendRaw("{") }, CloseBadRequest},
		{"no type", Options{}, func(c *wsClient) { c.sendRaw(`{"id":"1"}`) }, CloseBadRequest},
		{"unknown type", Options{}, func(c *wsClient) { c.sendRaw(`{"type":"start","id":"1"}`) }, CloseBadRequest},
		{"server message type", Options{}, func(c *wsClient) { c.sendRaw(`{"type":"next","id":"1","payload":{}}`) }, CloseBadRequest},
		{"numeric id", Options{}, func(c *wsClient) {
			c.init()
			c.sendRaw(`{"type":"subscribe","id":1,"payload":{"query":"{ hello }"}}`)
		}, CloseBadRequest},
		{"missing query", Options{}, func(c *wsClient) {
			c.init()
			c.sendRaw(`{"type":"subscribe","id":"1","payload":{}}`)
		}, CloseBadRequest},
		{"init payload not an object", Options{}, func(c *wsClient) { c.sendRaw(`{"type":"connection_init","payload":"x"}`) }, CloseBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestServer(t, tt.opts).dial(t)
			tt.run(c)
			c.expectClose(tt.want)
		})
	}
}

func TestWebSocketSubprotocolRequired(t *testing.T) {
	c := newTestServer(t, Options{}).dial(t, "graphql-ws")
	c.expectClose(CloseSubprotocolNotAccepted)
}

func TestWebSocketOnConnectContext(t *testing.T) {
	ts := newTestServer(t, Options{OnConnect: func(ctx context.Context, _ *http.Request, p map[string]any) (context.Context, error) {
		name, _ := p["user"].(string)
		return tickschema.WithUser(ctx, name), nil
	}})
	c := ts.dial(t)
	c.send(map[string]any{"type": "connection_init", "payload": map[string]any{"user": "ann"}})
	c.expect("connection_ack", "", "")
	c.subscribe("1", "{ user }")
	c.expect("next", "1", `{"data":{"user":"ann"}}`)
	c.expect("complete", "1", "")
}

func TestWebSocketCompleteCancelsSource(t *testing.T) {
	ts := newTestServer(t, Options{})
	c := ts.dial(t)
	c.init()
	c.subscribe("1", "subscription { ticks(n: -1, everyMs: 2) }")
	c.expect("next", "1", `{"data":{"ticks":1}}`)
	c.send(map[string]any{"type": "complete", "id": "1"})
	eventually(t, "source cancelled", func() bool { return ts.fx.Cancelled() == 1 })
	// Late messages for a completed id are ignored; no complete is echoed.
	c.send(map[string]any{"type": "complete", "id": "1"})
	c.send(map[string]any{"type": "ping"})
	for {
		m := c.read()
		if m.Type == "pong" {
			break
		}
		if m.Type != "next" || m.ID != "1" {
			t.Fatalf("got %s %q after complete", m.Type, m.ID)
		}
	}
}

func TestWebSocketCloseCancelsAllSources(t *testing.T) {
	ts := newTestServer(t, Options{})
	c := ts.dial(t)
	c.init()
	for _, id := range []string{"a", "b", "c"} {
		c.subscribe(id, "subscription { ticks(n: -1, everyMs: 5) }")
	}
	seen := map[string]bool{}
	for len(seen) < 3 {
		m := c.read()
		if m.Type != "next" {
			t.Fatalf("got %s; want next", m.Type)
		}
		seen[m.ID] = true
	}
	if err := c.c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "all sources cancelled", func() bool { return ts.fx.Cancelled() == 3 && ts.fx.Active() == 0 })
}

func TestWebSocketMaxSubscriptions(t *testing.T) {
	ts := newTestServer(t, Options{MaxSubscriptions: 1})
	c := ts.dial(t)
	c.init()
	c.subscribe("a", "subscription { ticks(n: -1, everyMs: 5) }")
	c.subscribe("b", "subscription { ticks(n: 1) }")
	for {
		m := c.read()
		if m.ID == "b" {
			if m.Type != "error" || !jsonContains(m.Payload, CodeTooManySubscriptions) {
				t.Fatalf("got %s %s; want error %s", m.Type, m.Payload, CodeTooManySubscriptions)
			}
			break
		}
	}
}

func TestWebSocketSlowClientDropped(t *testing.T) {
	ts := newTestServer(t, Options{SendBuffer: 4, WriteTimeout: 200 * time.Millisecond})
	slow := ts.dial(t)
	slow.init()
	// 64 KiB per event fills the socket buffers quickly; slow never reads again.
	slow.subscribe("s", "subscription { blobs(size: 65536) }")

	fast := ts.dial(t)
	fast.init()
	fast.subscribe("f", "subscription { ticks(n: 500) }")
	for i := 1; i <= 500; i++ {
		fast.expect("next", "f", fmt.Sprintf(`{"data":{"ticks":%d}}`, i))
	}
	fast.expect("complete", "f", "")

	eventually(t, "slow client's source cancelled", func() bool { return ts.fx.Cancelled() == 1 && ts.fx.Active() == 0 })
	// The slow client finds its connection closed after the buffered data.
	for {
		_, err := slow.tryRead()
		if err == nil {
			continue
		}
		if code := websocket.CloseStatus(err); code != CloseTryAgainLater && code != -1 {
			t.Fatalf("slow client closed with %d; want %d or a dropped connection", code, CloseTryAgainLater)
		}
		break
	}
}

// jsonContains reports whether the JSON text holds s (as an encoded string).
func jsonContains(raw json.RawMessage, s string) bool {
	b, _ := json.Marshal(s)
	return strings.Contains(string(raw), string(b))
}

func TestWebSocketBurstKeepsFastClient(t *testing.T) {
	ts := newTestServer(t, Options{SendBuffer: 1})
	c := ts.dial(t)
	c.init()
	c.subscribe("b", "subscription { ticks(n: 1000) }")
	for i := 1; i <= 1000; i++ {
		c.expect("next", "b", fmt.Sprintf(`{"data":{"ticks":%d}}`, i))
	}
	c.expect("complete", "b", "")
}

func TestWebSocketServerShutdown(t *testing.T) {
	ts := newTestServer(t, Options{})
	c := ts.dial(t)
	c.init()
	c.subscribe("1", "subscription { ticks(n: -1, everyMs: 5) }")
	c.expect("next", "1", `{"data":{"ticks":1}}`)
	ts.shutdown()
	c.expectClose(websocket.StatusGoingAway)
	eventually(t, "source cancelled", func() bool { return ts.fx.Cancelled() == 1 })
}
