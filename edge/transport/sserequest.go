package transport

import (
	"net/http"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

// readSSERequest decodes a GET or POST request. A non-zero status reports
// a problem with its message; for 405 the message is the Allow value.
func readSSERequest(w http.ResponseWriter, r *http.Request, l gql.Limits) (gql.Request, int, string) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return gql.Request{}, http.StatusMethodNotAllowed, "GET, POST"
	}
	req, status, msg := gql.ReadRequest(w, r, l.MaxBodyBytes)
	if status == 0 && r.Method == http.MethodGet && isMutation(req, l) {
		return req, http.StatusMethodNotAllowed, http.MethodPost
	}
	return req, status, msg
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
