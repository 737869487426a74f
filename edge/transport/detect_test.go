package transport

import (
	"net/http"
	"testing"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		ws     bool
		sse    bool
	}{
		{"websocket", http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}, true, false},
		{"websocket mixed case in a list", http.Header{"Upgrade": {"h2c, WebSocket"}}, true, false},
		{"sse", http.Header{"Accept": {"text/event-stream"}}, false, true},
		{"sse among others", http.Header{"Accept": {"application/json;q=0.9, Text/Event-Stream;q=1"}}, false, true},
		{"plain json", http.Header{"Accept": {"application/graphql-response+json, application/json"}}, false, false},
		{"urql query", http.Header{"Accept": {"application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed"}}, false, false},
		{"urql subscription", http.Header{"Accept": {"text/event-stream, multipart/mixed"}}, false, true},
		{"json preferred by q", http.Header{"Accept": {"text/event-stream;q=0.5, application/json"}}, false, false},
		{"sse first on a tie", http.Header{"Accept": {"text/event-stream, application/json"}}, false, true},
		{"sse refused", http.Header{"Accept": {"text/event-stream;q=0"}}, false, false},
		{"sse in a second header", http.Header{"Accept": {"multipart/mixed", "text/event-stream"}}, false, true},
		{"none", http.Header{}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{Header: tt.header}
			if got := IsWebSocket(r); got != tt.ws {
				t.Errorf("IsWebSocket = %v; want %v", got, tt.ws)
			}
			if got := IsSSE(r); got != tt.sse {
				t.Errorf("IsSSE = %v; want %v", got, tt.sse)
			}
		})
	}
}

func TestDispatchFallsThroughToHTTP(t *testing.T) {
	ts := newTestServer(t, Options{})
	req, _ := http.NewRequest(http.MethodGet, ts.url+"?query=%7B%20hello%20%7D", nil)
	req.Header.Set("Accept", "application/json")
	resp := do(t, req)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("got %d %q from the HTTP handler", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
