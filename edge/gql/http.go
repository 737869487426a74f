package gql

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/vektah/gqlparser/v2/ast"
)

// HandlerOptions configures Handler. The zero value is useful.
type HandlerOptions struct {
	Limits Limits
	// AllowGET enables GET requests (queries only). nil means true;
	// point it at false to answer GET with 405.
	AllowGET *bool
}

// Media types negotiated by the handler.
const (
	mediaGraphQLJSON = "application/graphql-response+json"
	mediaJSON        = "application/json"
)

// Handler serves GraphQL over HTTP (POST and GET; queries and mutations)
// following the status-code matrix in GRAPHQL_NOTES §2.2: with
// application/graphql-response+json, request errors get 400; a legacy
// application/json client gets 200 for them. Malformed requests get 400.
// It does not serve GraphiQL, WebSocket or SSE.
func (s *Schema) Handler(o HandlerOptions) http.Handler {
	l := o.Limits.withDefaults()
	allowGET := o.AllowGET == nil || *o.AllowGET
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serveHTTP(w, r, l, allowGET)
	})
}

// serveHTTP handles one request; see Handler.
func (s *Schema) serveHTTP(w http.ResponseWriter, r *http.Request, l Limits, allowGET bool) {
	if r.Method != http.MethodPost && (r.Method != http.MethodGet || !allowGET) {
		w.Header().Set("Allow", allowed(allowGET))
		writeHTTPError(w, mediaJSON, http.StatusMethodNotAllowed, CodeBadRequest, "Method "+r.Method+" is not allowed; use "+allowed(allowGET)+".")
		return
	}
	media, ok := negotiate(r.Header.Values("Accept"))
	if !ok {
		writeHTTPError(w, mediaJSON, http.StatusNotAcceptable, CodeBadRequest, "None of the Accept types is supported; accept "+mediaGraphQLJSON+" or "+mediaJSON+".")
		return
	}
	req, status, msg := ReadRequest(w, r, l.MaxBodyBytes)
	if status != 0 {
		writeHTTPError(w, media, status, CodeBadRequest, msg)
		return
	}
	s.executeHTTP(w, r, req, l, media)
}

// allowed returns the Allow header value.
func allowed(get bool) string {
	if get {
		return "GET, POST"
	}
	return "POST"
}

// executeHTTP prepares and executes req and writes the response.
func (s *Schema) executeHTTP(w http.ResponseWriter, r *http.Request, req Request, l Limits, media string) {
	p, resp := s.prepare(req, l)
	if resp != nil {
		writeResponse(w, media, requestErrorStatus(media), resp)
		return
	}
	if r.Method == http.MethodGet && p.op.Operation != ast.Query {
		w.Header().Set("Allow", "POST")
		writeHTTPError(w, media, http.StatusMethodNotAllowed, CodeBadRequest, "Only queries can be sent with GET; use POST for "+string(p.op.Operation)+"s.")
		return
	}
	if p.op.Operation == ast.Subscription {
		writeHTTPError(w, media, http.StatusBadRequest, CodeBadRequest, "Subscriptions need a streaming transport (WebSocket or SSE).")
		return
	}
	ctx, cancel := contextWithTimeout(r, l)
	defer cancel()
	writeResponse(w, media, http.StatusOK, s.execute(withMemo(ctx), p, nil))
}

// requestErrorStatus is the status of a parse, validation, operation or
// variable error: 400 for graphql-response+json, 200 for legacy JSON.
func requestErrorStatus(media string) int {
	if media == mediaGraphQLJSON {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// writeHTTPError writes a request error with the given status.
func writeHTTPError(w http.ResponseWriter, media string, status int, code, msg string) {
	writeResponse(w, media, status, requestError(code, msg))
}

// writeResponse writes resp as JSON with the negotiated content type.
func writeResponse(w http.ResponseWriter, media string, status int, resp *Response) {
	body, err := json.Marshal(resp)
	if err != nil {
		status = http.StatusInternalServerError
		media = mediaJSON
		body = []byte(`{"errors":[{"message":"internal error: encoding response","extensions":{"code":"INTERNAL"}}]}`)
	}
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// isTooLarge reports whether err comes from http.MaxBytesReader.
func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
