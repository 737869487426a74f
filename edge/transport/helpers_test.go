package transport

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/edge/transport/internal/tickschema"
)

// waitFor bounds every wait in these tests.
const waitFor = 10 * time.Second

// testServer serves a fresh tickschema fixture on /graphql with all three
// transports.
type testServer struct {
	fx  *tickschema.Fixture
	srv *httptest.Server
	url string // http://…/graphql
	// shutdown cancels every request context, as a server shutting down
	// does with its BaseContext.
	shutdown context.CancelFunc
}

// newTestServer starts a server with o; it is closed by t.Cleanup.
func newTestServer(t *testing.T, o Options) *testServer {
	t.Helper()
	fx, err := tickschema.New()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/graphql", Dispatch(fx.Schema.Handler(gql.HandlerOptions{}), WebSocket(fx.Schema, o), SSE(fx.Schema, o)))
	base, shutdown := context.WithCancel(context.Background())
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	t.Cleanup(func() {
		shutdown()
		srv.Close()
	})
	return &testServer{fx: fx, srv: srv, url: srv.URL + "/graphql", shutdown: shutdown}
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// wsMsg is a graphql-transport-ws message as the client sees it.
type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wsClient is a raw graphql-transport-ws client for protocol tests.
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

// dial opens a WebSocket with the graphql-transport-ws subprotocol (or the
// given ones).
func (ts *testServer) dial(t *testing.T, subprotocols ...string) *wsClient {
	t.Helper()
	if subprotocols == nil {
		subprotocols = []string{Subprotocol}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.url, "http"), &websocket.DialOptions{Subprotocols: subprotocols})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(4 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &wsClient{t: t, c: c}
}

// sendRaw writes a text message.
func (c *wsClient) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// send writes m as JSON.
func (c *wsClient) send(m any) {
	c.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// subscribe sends a subscribe message for query.
func (c *wsClient) subscribe(id, query string) {
	c.t.Helper()
	c.send(map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": query}})
}

// read reads one message.
func (c *wsClient) read() wsMsg {
	c.t.Helper()
	m, err := c.tryRead()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

// tryRead reads one message or returns the read error.
func (c *wsClient) tryRead() (wsMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, b, err := c.c.Read(ctx)
	if err != nil {
		return wsMsg{}, err
	}
	var m wsMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return wsMsg{}, err
	}
	return m, nil
}

// expect reads one message and checks its type, id and payload ("" skips
// the payload check).
func (c *wsClient) expect(typ, id, payload string) wsMsg {
	c.t.Helper()
	m := c.read()
	if m.Type != typ || m.ID != id || (payload != "" && string(m.Payload) != payload) {
		c.t.Fatalf("got %s id=%q payload=%s; want %s id=%q payload=%s", m.Type, m.ID, m.Payload, typ, id, payload)
	}
	return m
}

// init sends connection_init and expects connection_ack.
func (c *wsClient) init() {
	c.t.Helper()
	c.send(map[string]any{"type": "connection_init"})
	c.expect("connection_ack", "", "")
}

// expectClose reads until the server closes and checks the code.
func (c *wsClient) expectClose(code websocket.StatusCode) {
	c.t.Helper()
	for {
		_, err := c.tryRead()
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("read error %v; want close %d", err, code)
		}
		if ce.Code != code {
			c.t.Fatalf("closed with %d %q; want %d", ce.Code, ce.Reason, code)
		}
		return
	}
}
