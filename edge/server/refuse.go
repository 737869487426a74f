package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/shared/fail"
)

// CodeTooManyRequests is the extensions.code of a 429: the client has too
// many requests in progress.
const CodeTooManyRequests = "TOO_MANY_REQUESTS"

// reason is why the guard turned a request away; it labels
// cb_http_refused_total.
type reason string

// The reasons.
const (
	refusedPerClient      reason = "per_client"      // 429
	refusedBodyReads      reason = "body_reads"      // 503
	refusedInFlight       reason = "in_flight"       // 503
	refusedBodyTimeout    reason = "body_timeout"    // 408
	refusedBodyUnreadable reason = "body_unreadable" // 400
	refusedBodyTooLarge   reason = "body_too_large"  // 413, answered by the GraphQL handler
)

// refuse counts the refusal and answers it as a GraphQL-over-HTTP request
// error: {"errors":[{"message":…,"extensions":{"code":…}}]}, with
// Retry-After when retrying soon may work. Every refusal but in_flight
// comes before the body has been read: the edge then stops reading from
// the client and closes the connection after the answer, rather than wait
// while net/http reads the rest of the body.
func (g *guard) refuse(w http.ResponseWriter, why reason) {
	g.refused.Inc(string(why))
	status, code, msg := g.describe(why)
	if why != refusedInFlight {
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	body, _ := json.Marshal(&gql.Response{Errors: []*gql.Error{{Message: msg, Extensions: map[string]any{"code": code}}}})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// describe returns the status, extensions.code and message of a refusal.
func (g *guard) describe(why reason) (int, string, string) {
	switch why {
	case refusedPerClient:
		return http.StatusTooManyRequests, CodeTooManyRequests,
			fmt.Sprintf("Too many requests in progress from your address (at most %d); retry later.", g.clients.max)
	case refusedBodyReads:
		return http.StatusServiceUnavailable, fail.Unavailable.String(), "The edge is receiving too many request bodies; retry later."
	case refusedInFlight:
		return http.StatusServiceUnavailable, fail.Unavailable.String(), "The edge is overloaded; retry later."
	case refusedBodyTimeout:
		return http.StatusRequestTimeout, gql.CodeBadRequest,
			fmt.Sprintf("Request body not received within %v; the connection is closed.", g.bodyTimeout)
	default:
		return http.StatusBadRequest, gql.CodeBadRequest, "Cannot read request body."
	}
}
