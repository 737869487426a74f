package gql_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/edge/gql/internal/testschema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenCase is one request whose response is compared with
// testdata/<name>.json.
type goldenCase struct {
	name   string
	query  string
	vars   string // JSON object, optional
	op     string
	limits gql.Limits
}

// newFixture builds a fresh test schema.
func newFixture(t testing.TB) *testschema.Fixture {
	t.Helper()
	fx, err := testschema.New()
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

// decodeVars decodes a variables JSON object with UseNumber, as the HTTP
// handler does.
func decodeVars(t testing.TB, s string) map[string]any {
	t.Helper()
	if s == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("variables %q: %v", s, err)
	}
	return m
}

// runGolden executes each case and compares (or, with -update, writes)
// the indented response.
func runGolden(t *testing.T, cases []goldenCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			req := gql.Request{Query: tc.query, OperationName: tc.op, Variables: decodeVars(t, tc.vars)}
			resp := fx.Schema.Execute(context.Background(), req, tc.limits)
			checkGolden(t, tc.name, resp)
		})
	}
}

// checkGolden compares resp with testdata/<name>.json.
func checkGolden(t *testing.T, name string, resp *gql.Response) {
	t.Helper()
	raw, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := json.Indent(&got, raw, "", "  "); err != nil {
		t.Fatalf("response is not valid JSON: %v\n%s", err, raw)
	}
	got.WriteByte('\n')
	file := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.WriteFile(file, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("response differs from %s:\n got: %s\nwant: %s", file, got.Bytes(), want)
	}
}
