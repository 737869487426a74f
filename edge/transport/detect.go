package transport

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// IsWebSocket reports whether r asks to upgrade to a WebSocket.
func IsWebSocket(r *http.Request) bool {
	return headerHasToken(r.Header, "Upgrade", "websocket")
}

// IsSSE reports whether r prefers text/event-stream to a JSON response:
// its Accept lists text/event-stream with a quality higher than any JSON
// type's, or equal and earlier. So graphql-sse and EventSource requests
// ("Accept: text/event-stream") are SSE, while urql's queries, which
// accept "application/graphql-response+json, …, application/json,
// text/event-stream, multipart/mixed", stay plain GraphQL over HTTP.
func IsSSE(r *http.Request) bool {
	sse, json := acceptQualities(r)
	return sse > json
}

// acceptsEventStream reports whether r accepts text/event-stream at all.
func acceptsEventStream(r *http.Request) bool {
	sse, _ := acceptQualities(r)
	return sse > 0
}

// acceptQualities returns the Accept quality of text/event-stream and the
// best one of the JSON types, each nudged down by its position so that an
// earlier entry wins a tie; 0 when absent.
func acceptQualities(r *http.Request) (sse, json float64) {
	pos := 0
	for _, h := range r.Header.Values("Accept") {
		for _, part := range strings.Split(h, ",") {
			pos++
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if s, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(s, 64); err != nil || q <= 0 {
					continue
				}
			}
			q -= float64(pos) * 1e-6 // q has at most 3 decimals
			switch mt {
			case mediaEventStream:
				sse = max(sse, q)
			case mediaJSON, "application/graphql-response+json", "application/graphql+json":
				json = max(json, q)
			}
		}
	}
	return sse, json
}

// Dispatch serves WebSocket upgrades with ws, requests preferring
// text/event-stream (IsSSE) with sse and everything else with next, so all
// three can share one path such as /graphql.
func Dispatch(next, ws, sse http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case IsWebSocket(r):
			ws.ServeHTTP(w, r)
		case IsSSE(r):
			sse.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// headerHasToken reports whether a comma-separated header holds token
// (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
