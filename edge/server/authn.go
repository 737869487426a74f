package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/edge/gql"
)

// CodeUnauthenticated is the extensions.code of a request without valid
// credentials.
const CodeUnauthenticated = "UNAUTHENTICATED"

// authenticate requires credentials on GraphQL requests when the edge has
// an Authenticator: the identity goes into the request's context, and a
// JWT's expiry ends the request (a subscription ends at it). WebSocket
// upgrades pass: graphql-ws sends its credentials in connection_init
// (wsConnect). Without an Authenticator every request passes.
func (s *Server) authenticate(next http.Handler) http.Handler {
	a := s.opts.Auth
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			next.ServeHTTP(w, r)
			return
		}
		id, err := a.Authenticate(r.Header.Get("Authorization"))
		if err != nil {
			unauthenticated(w, err)
			return
		}
		noteIdentity(r.Context(), id)
		ctx, cancel := untilExpiry(auth.WithIdentity(r.Context(), id), id)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// wsConnect admits a graphql-ws connection by the authorization in its
// connection_init payload; a refusal closes it with 4403. SSE requests
// come authenticated by their header already (authenticate).
func (s *Server) wsConnect(ctx context.Context, _ *http.Request, payload map[string]any) (context.Context, error) {
	if _, ok := auth.FromContext(ctx); ok {
		return ctx, nil
	}
	header, _ := payload["authorization"].(string)
	if header == "" {
		header, _ = payload["Authorization"].(string)
	}
	id, err := s.opts.Auth.Authenticate(header)
	if err != nil {
		return nil, err
	}
	noteIdentity(ctx, id)
	ctx, _ = untilExpiry(auth.WithIdentity(ctx, id), id) // ends with the connection's context at the latest
	return ctx, nil
}

// untilExpiry ends ctx when id's credential expires (never for API keys).
func untilExpiry(ctx context.Context, id auth.Identity) (context.Context, context.CancelFunc) {
	if id.Expires.IsZero() {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, id.Expires)
}

// unauthenticated answers 401 with a GraphQL-over-HTTP error body.
func unauthenticated(w http.ResponseWriter, err error) {
	msg := "Invalid credentials."
	if errors.Is(err, auth.ErrMissing) {
		msg = "Authentication required: send Authorization: Bearer <API key or JWT>."
	}
	body, _ := json.Marshal(&gql.Response{Errors: []*gql.Error{{Message: msg, Extensions: map[string]any{"code": CodeUnauthenticated}}}})
	w.Header().Set("WWW-Authenticate", `Bearer realm="circuit-breaker"`)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write(body)
}

// adminOnly serves next to admins only, unless open.
func (s *Server) adminOnly(next http.Handler) http.Handler {
	a := s.opts.Auth
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.MetricsOpen() {
			next.ServeHTTP(w, r)
			return
		}
		id, err := a.Authenticate(r.Header.Get("Authorization"))
		if err != nil {
			unauthenticated(w, err)
			return
		}
		noteIdentity(r.Context(), id)
		if id.Role < auth.Admin {
			http.Error(w, "forbidden: /metrics is for admins", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
