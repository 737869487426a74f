package transport

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

// readSSERequest decodes a GET or POST request. A non-zero status reports
// a problem with its message; for 405 the message is the Allow value.
func readSSERequest(w http.ResponseWriter, r *http.Request, l gql.Limits) (gql.Request, int, string) {
	switch r.Method {
	case http.MethodGet:
		req, status, msg := requestFromQuery(r)
		if status == 0 && isMutation(req, l) {
			return req, http.StatusMethodNotAllowed, http.MethodPost
		}
		return req, status, msg
	case http.MethodPost:
		return requestFromBody(w, r, l.MaxBodyBytes)
	}
	return gql.Request{}, http.StatusMethodNotAllowed, "GET, POST"
}

// requestFromBody decodes a JSON POST body.
func requestFromBody(w http.ResponseWriter, r *http.Request, maxBody int64) (gql.Request, int, string) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != mediaJSON {
		return gql.Request{}, http.StatusUnsupportedMediaType, "Content-Type must be " + mediaJSON + "."
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return gql.Request{}, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body exceeds %d bytes.", maxBody)
	}
	if err != nil {
		return gql.Request{}, http.StatusBadRequest, "Cannot read request body."
	}
	var raw map[string]any
	if err := decodeJSON(body, &raw); err != nil || raw == nil {
		return gql.Request{}, http.StatusBadRequest, "Request body must be a JSON object."
	}
	return requestFromParams(raw["query"], raw["operationName"], raw["variables"], raw["extensions"])
}

// requestFromQuery decodes GET query parameters; empty means absent.
func requestFromQuery(r *http.Request) (gql.Request, int, string) {
	q := r.URL.Query()
	param := func(name string) (any, error) {
		s := q.Get(name)
		if s == "" {
			return nil, nil
		}
		if name == "query" || name == "operationName" {
			return s, nil
		}
		var v any
		err := decodeJSON([]byte(s), &v)
		return v, err
	}
	query, _ := param("query")
	opName, _ := param("operationName")
	vars, err := param("variables")
	if err != nil {
		return gql.Request{}, http.StatusBadRequest, "The variables parameter must be a JSON object."
	}
	ext, err := param("extensions")
	if err != nil {
		return gql.Request{}, http.StatusBadRequest, "The extensions parameter must be a JSON object."
	}
	return requestFromParams(query, opName, vars, ext)
}

// requestFromParams checks parameter types: query a non-empty string,
// operationName a string or null, variables and extensions objects or null.
func requestFromParams(query, opName, vars, ext any) (gql.Request, int, string) {
	var req gql.Request
	var ok bool
	if req.Query, ok = query.(string); !ok || req.Query == "" {
		return req, http.StatusBadRequest, "The query parameter must be a non-empty string."
	}
	if opName != nil {
		if req.OperationName, ok = opName.(string); !ok {
			return req, http.StatusBadRequest, "The operationName parameter must be a string."
		}
	}
	if vars != nil {
		if req.Variables, ok = vars.(map[string]any); !ok {
			return req, http.StatusBadRequest, "The variables parameter must be an object."
		}
	}
	if ext != nil {
		if req.Extensions, ok = ext.(map[string]any); !ok {
			return req, http.StatusBadRequest, "The extensions parameter must be an object."
		}
	}
	return req, 0, ""
}

// isMutation reports whether req selects a mutation. A document that does
// not parse is not one: the executor reports its errors.
func isMutation(req gql.Request, l gql.Limits) bool {
	maxTokens := l.MaxTokens
	if maxTokens <= 0 {
		maxTokens = gql.DefaultMaxTokens
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: req.Query}, maxTokens)
	if err != nil {
		return false
	}
	var op *ast.OperationDefinition
	if req.OperationName == "" && len(doc.Operations) == 1 {
		op = doc.Operations[0]
	} else if req.OperationName != "" {
		op = doc.Operations.ForName(req.OperationName)
	}
	return op != nil && op.Operation == ast.Mutation
}
