package gql_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

const (
	grJSON = "application/graphql-response+json"
	plain  = "application/json"
)

// httpCase is one row of the status matrix (GRAPHQL_NOTES §2.2).
type httpCase struct {
	name        string
	method      string
	target      string // URL path and query
	contentType string
	accept      string
	body        string
	wantStatus  int
	wantType    string // media type without parameters
	wantAllow   string
	wantData    bool // body has a "data" key
}

func TestHandlerStatusMatrix(t *testing.T) {
	get := func(q string) string { return "/graphql?query=" + url.QueryEscape(q) }
	cases := []httpCase{
		{name: "post ok json", body: `{"query":"{ __typename }"}`, accept: plain, wantStatus: 200, wantType: plain, wantData: true},
		{name: "post ok gr+json", body: `{"query":"{ __typename }"}`, accept: grJSON, wantStatus: 200, wantType: grJSON, wantData: true},
		{name: "no accept means json", body: `{"query":"{ __typename }"}`, wantStatus: 200, wantType: plain, wantData: true},
		{name: "star accept means json", body: `{"query":"{ __typename }"}`, accept: "*/*", wantStatus: 200, wantType: plain, wantData: true},
		{name: "q values pick json", body: `{"query":"{ __typename }"}`, accept: grJSON + ";q=0.5, application/json", wantStatus: 200, wantType: plain, wantData: true},
		{name: "recommended accept", body: `{"query":"{ __typename }"}`, accept: grJSON + ", application/json;q=0.9", wantStatus: 200, wantType: grJSON, wantData: true},
		{name: "not acceptable", body: `{"query":"{ __typename }"}`, accept: "text/html", wantStatus: 406, wantType: plain},
		{name: "charset content type", contentType: "application/json; charset=utf-8", body: `{"query":"{ __typename }"}`, wantStatus: 200, wantType: plain, wantData: true},
		{name: "partial data 200", body: `{"query":"{ item(id: 1) { failing } }"}`, accept: grJSON, wantStatus: 200, wantType: grJSON, wantData: true},
		{name: "parse error gr+json", body: `{"query":"{"}`, accept: grJSON, wantStatus: 400, wantType: grJSON},
		{name: "parse error legacy", body: `{"query":"{"}`, accept: plain, wantStatus: 200, wantType: plain},
		{name: "validation gr+json", body: `{"query":"{ nope }"}`, accept: grJSON, wantStatus: 400, wantType: grJSON},
		{name: "validation legacy", body: `{"query":"{ nope }"}`, accept: plain, wantStatus: 200, wantType: plain},
		{name: "variables gr+json", body: `{"query":"query ($id: ID!) { item(id: $id) { id } }","variables":{"id":null}}`, accept: grJSON, wantStatus: 400, wantType: grJSON},
		{name: "variables legacy", body: `{"query":"query ($id: ID!) { item(id: $id) { id } }","variables":{"id":null}}`, accept: plain, wantStatus: 200, wantType: plain},
		{name: "operation unknown gr+json", body: `{"query":"query A { __typename }","operationName":"B"}`, accept: grJSON, wantStatus: 400, wantType: grJSON},
		{name: "null params allowed", body: `{"query":"{ __typename }","operationName":null,"variables":null,"extensions":null}`, wantStatus: 200, wantType: plain, wantData: true},
		{name: "unknown keys ignored", body: `{"query":"{ __typename }","foo":1}`, wantStatus: 200, wantType: plain, wantData: true},
		{name: "body not json", body: `{ "not json`, accept: grJSON, wantStatus: 400, wantType: grJSON},
		{name: "body empty", body: ``, wantStatus: 400, wantType: plain},
		{name: "body array (batching)", body: `[{"query":"{ __typename }"}]`, wantStatus: 400, wantType: plain},
		{name: "query missing", body: `{"notquery":"{ __typename }"}`, accept: grJSON, wantStatus: 400, wantType: grJSON},
		{name: "query not string", body: `{"query":{"obj":1}}`, wantStatus: 400, wantType: plain},
		{name: "variables not object", body: `{"query":"{ __typename }","variables":"x"}`, wantStatus: 400, wantType: plain},
		{name: "body too large", body: `{"query":"{ __typename }` + strings.Repeat(" ", 2<<20) + `"}`, wantStatus: 413, wantType: plain},
		{name: "no content type", contentType: "-", body: `{"query":"{ __typename }"}`, wantStatus: 415, wantType: plain},
		{name: "form content type", contentType: "application/x-www-form-urlencoded", body: `query=x`, wantStatus: 415, wantType: plain},
		{name: "get query", method: "GET", target: get("{ __typename }"), wantStatus: 200, wantType: plain, wantData: true},
		{name: "get variables", method: "GET", target: get("query ($id: ID!) { item(id: $id) { id } }") + "&variables=" + url.QueryEscape(`{"id":"1"}`), accept: grJSON, wantStatus: 200, wantType: grJSON, wantData: true},
		{name: "get bad variables", method: "GET", target: get("{ __typename }") + "&variables=%7B", wantStatus: 400, wantType: plain},
		{name: "get mutation", method: "GET", target: get("mutation { __typename }"), accept: grJSON, wantStatus: 405, wantType: grJSON, wantAllow: "POST"},
		{name: "get subscription", method: "GET", target: get("subscription { ticks(count: 1) }"), wantStatus: 405, wantType: plain, wantAllow: "POST"},
		{name: "post subscription", body: `{"query":"subscription { ticks(count: 1) }"}`, wantStatus: 400, wantType: plain},
		{name: "put", method: "PUT", body: `{"query":"{ __typename }"}`, wantStatus: 405, wantType: plain, wantAllow: "GET, POST"},
		{name: "timeout is a field error", body: `{"query":"{ slow(ms: 5000) }"}`, wantStatus: 200, wantType: plain, wantData: true},
	}
	h := newFixture(t).Schema.Handler(gql.HandlerOptions{Limits: gql.Limits{Timeout: 50e6}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkHTTP(t, h, tc) })
	}
}

func TestHandlerGETDisabled(t *testing.T) {
	no := false
	h := newFixture(t).Schema.Handler(gql.HandlerOptions{AllowGET: &no})
	checkHTTP(t, h, httpCase{method: "GET", target: "/graphql?query=%7B__typename%7D", wantStatus: 405, wantType: plain, wantAllow: "POST"})
}

// checkHTTP sends tc to h and checks status, headers and the data key.
func checkHTTP(t *testing.T, h http.Handler, tc httpCase) {
	t.Helper()
	method, target := tc.method, tc.target
	if method == "" {
		method = "POST"
	}
	if target == "" {
		target = "/graphql"
	}
	r := httptest.NewRequest(method, target, strings.NewReader(tc.body))
	switch {
	case tc.contentType == "" && method == "POST":
		r.Header.Set("Content-Type", "application/json")
	case tc.contentType != "" && tc.contentType != "-":
		r.Header.Set("Content-Type", tc.contentType)
	}
	if tc.accept != "" {
		r.Header.Set("Accept", tc.accept)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := w.Result()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != tc.wantStatus {
		t.Errorf("status = %d, want %d; body %s", res.StatusCode, tc.wantStatus, body)
	}
	if want := tc.wantType + "; charset=utf-8"; res.Header.Get("Content-Type") != want {
		t.Errorf("Content-Type = %q, want %q", res.Header.Get("Content-Type"), want)
	}
	if got := res.Header.Get("Allow"); got != tc.wantAllow {
		t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, body)
	}
	if _, has := m["data"]; has != tc.wantData {
		t.Errorf("has data = %v, want %v; body %s", has, tc.wantData, body)
	}
	if !tc.wantData || res.StatusCode != 200 {
		if _, has := m["errors"]; !has {
			t.Errorf("no errors in %s", body)
		}
	}
}
