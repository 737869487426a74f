package systemtest

import (
	"encoding/json"
	"strings"
	"testing"
)

// gqlResult is a GraphQL response as a client sees it.
type gqlResult struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// code returns the first error's extensions.code, or "".
func (r *gqlResult) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// gql posts a query with variables to the edge and decodes the response.
func (s *system) gql(t testing.TB, query string, vars map[string]any) *gqlResult {
	t.Helper()
	raw := s.post(t, query, vars)
	var r gqlResult
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("undecodable body %s", raw)
	}
	return &r
}

// ok runs a query that must succeed and decodes data[field] into out.
func (s *system) ok(t testing.TB, query string, vars map[string]any, field string, out any) {
	t.Helper()
	r := s.gql(t, query, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %+v\nquery: %s", r.Errors, query)
	}
	if err := json.Unmarshal(r.Data[field], out); err != nil {
		t.Fatalf("data.%s: %v (%s)", field, err, r.Data[field])
	}
}

// fails runs a query that must fail with code and a message containing msg.
func (s *system) fails(t testing.TB, query string, vars map[string]any, code, msg string) {
	t.Helper()
	r := s.gql(t, query, vars)
	if len(r.Errors) == 0 {
		t.Fatalf("no error, want %s containing %q; data %s", code, msg, r.Data)
	}
	if r.code() != code || !strings.Contains(r.Errors[0].Message, msg) {
		t.Fatalf("got %+v, want %s containing %q", r.Errors, code, msg)
	}
}

type gqlToken struct {
	ID                string          `json:"id"`
	Place             string          `json:"place"`
	Data              json.RawMessage `json:"data"`
	NatsSequence      string          `json:"natsSequence"`
	NatsSubject       string          `json:"natsSubject"`
	NatsTimestamp     string          `json:"natsTimestamp"`
	TransitionHistory []struct {
		FromPlace, ToPlace, TransitionID, TriggeredBy, NatsSequence string
		Metadata                                                    json.RawMessage
	} `json:"transitionHistory"`
	History []struct{ Transition, FromPlace, ToPlace string } `json:"history"`
}

const tokenFields = `id place data natsSequence natsSubject natsTimestamp
  transitionHistory { fromPlace toPlace transitionId timestamp triggeredBy natsSequence metadata }
  history { transition fromPlace toPlace timestamp }`

func inPlace(t testing.TB, s *system, wf, place string) []gqlToken {
	var toks []gqlToken
	s.ok(t, `query($w:String!,$p:String!){ tokensInPlace(workflowId:$w, placeId:$p) { `+tokenFields+` } }`,
		map[string]any{"w": wf, "p": place}, "tokensInPlace", &toks)
	return toks
}
