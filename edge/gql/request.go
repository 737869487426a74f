package gql

import (
	"encoding/json"
	"errors"
	"time"
)

// Request is one GraphQL request.
type Request struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
	Extensions    map[string]any `json:"extensions,omitempty"`
}

// Response is one GraphQL response. Data is ordered JSON; when HasData is
// false the response is a request error and has no "data" key.
type Response struct {
	Data    json.RawMessage
	Errors  []*Error
	HasData bool
}

// Location is a 1-based position in the request document.
type Location struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// Error is a GraphQL error in the spec's shape.
type Error struct {
	Message    string         `json:"message"`
	Locations  []Location     `json:"locations,omitempty"`
	Path       []any          `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// Error implements error.
func (e *Error) Error() string { return e.Message }

// Error codes put in extensions.code.
const (
	CodeParseFailed      = "GRAPHQL_PARSE_FAILED"
	CodeValidationFailed = "GRAPHQL_VALIDATION_FAILED"
	CodeBadUserInput     = "BAD_USER_INPUT"
	CodeOperationFailed  = "OPERATION_RESOLUTION_FAILURE"
	CodeBadRequest       = "BAD_REQUEST"
	CodeInternal         = "INTERNAL"
	CodeTimeout          = "TIMEOUT"
)

// Limits bounds the work one request may cause. The zero value means the
// defaults.
type Limits struct {
	MaxTokens  int // parser tokens; default 2000
	MaxDepth   int // field nesting, introspection excluded; default 15
	MaxAliases int // aliased fields per document; default 30
	MaxFields  int // fields one operation selects with fragments expanded; default 5000
	// OnRefused, when set, is told the limit (tokens, depth, fields or
	// aliases) that refused a request's document, for metrics.
	OnRefused    func(limit string)
	MaxBodyBytes int64         // HTTP body; default 1 MiB
	Timeout      time.Duration // per request; default 10s
	// DisableIntrospection rejects __schema and __type in validation.
	// Introspection is on by default.
	DisableIntrospection bool
}

// Limit defaults.
const (
	DefaultMaxTokens    = 2000
	DefaultMaxDepth     = 15
	DefaultMaxAliases   = 30
	DefaultMaxBodyBytes = 1 << 20
	DefaultTimeout      = 10 * time.Second
)

// withDefaults returns l with zero fields replaced by defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxTokens <= 0 {
		l.MaxTokens = DefaultMaxTokens
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxFields <= 0 {
		l.MaxFields = DefaultMaxFields
	}
	if l.MaxAliases <= 0 {
		l.MaxAliases = DefaultMaxAliases
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	return l
}

// requestError builds a response carrying one request error.
func requestError(code, msg string, locs ...Location) *Response {
	return &Response{Errors: []*Error{newError(code, msg, locs...)}}
}

// newError builds an error with extensions.code set.
func newError(code, msg string, locs ...Location) *Error {
	return &Error{Message: msg, Locations: locs, Extensions: map[string]any{"code": code}}
}

// errPanic is the field error for a recovered resolver panic; the panic
// value is not exposed to clients.
var errPanic = errors.New("internal error")
