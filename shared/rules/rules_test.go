package rules

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// facts builds Facts from JSON text or fails the test.
func facts(t testing.TB, metadata, data string) Facts {
	t.Helper()
	f, err := NewFacts(json.RawMessage(metadata), json.RawMessage(data))
	if err != nil {
		t.Fatalf("NewFacts: %v", err)
	}
	return f
}

// mustCompile compiles a rule given as JSON or fails the test.
func mustCompile(t testing.TB, ruleJSON string) *Compiled {
	t.Helper()
	var r Rule
	if err := json.Unmarshal([]byte(ruleJSON), &r); err != nil {
		t.Fatalf("unmarshal rule: %v", err)
	}
	c, err := Compile(r)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return c
}

func TestEvaluate(t *testing.T) {
	const md = `{"status":"approved","priority":3,"review":{"score":8.5},"dotted.key":1,"n":null}`
	const data = `{"priority":9,"title":"Quarterly report","tags":["urgent","finance"],"items":[{"name":"Laptop","qty":1}],"status":"draft","one":1.0}`
	tests := []struct {
		name, rule string
		want       bool
		explain    string
	}{
		{"exists in metadata", `{"id":"r","condition":{"type":"FieldExists","field":"status"}}`, true, "Field 'status' exists"},
		{"exists in data", `{"id":"r","condition":{"type":"FieldExists","field":"title"}}`, true, "Field 'title' exists"},
		{"null counts as present", `{"id":"r","condition":{"type":"FieldExists","field":"n"}}`, true, "Field 'n' exists"},
		{"does not exist", `{"id":"r","condition":{"type":"FieldExists","field":"nope"}}`, false, "Field 'nope' does not exist"},
		{"dotted path", `{"id":"r","condition":{"type":"FieldExists","field":"review.score"}}`, true, "Field 'review.score' exists"},
		{"dotted path missing", `{"id":"r","condition":{"type":"FieldExists","field":"review.score.x"}}`, false, "Field 'review.score.x' does not exist"},
		{"literal dotted key", `{"id":"r","condition":{"type":"FieldExists","field":"dotted.key"}}`, true, ""},
		{"array index", `{"id":"r","condition":{"type":"FieldEquals","field":"items.0.name","value":"Laptop"}}`, true, `Field 'items.0.name' equals "Laptop"`},
		{"array index out of range", `{"id":"r","condition":{"type":"FieldExists","field":"items.1.name"}}`, false, ""},
		{"equals metadata", `{"id":"r","condition":{"type":"FieldEquals","field":"status","value":"approved"}}`, true, `Field 'status' equals "approved"`},
		{"equals data when metadata differs", `{"id":"r","condition":{"type":"FieldEquals","field":"status","value":"draft"}}`, true, `Field 'status' equals "draft"`},
		{"not equal", `{"id":"r","condition":{"type":"FieldEquals","field":"status","value":"rejected"}}`, false, `Field 'status' does not equal "rejected" (found "approved")`},
		{"equals missing", `{"id":"r","condition":{"type":"FieldEquals","field":"x","value":1}}`, false, `Field 'x' does not exist (expected 1)`},
		{"equals numeric 1 == 1.0", `{"id":"r","condition":{"type":"FieldEquals","field":"one","value":1}}`, true, ""},
		{"equals deep", `{"id":"r","condition":{"type":"FieldEquals","field":"tags","value":["urgent","finance"]}}`, true, ""},
		{"equals object", `{"id":"r","condition":{"type":"FieldEquals","field":"review","value":{"score":8.50}}}`, true, ""},
		{"equals null", `{"id":"r","condition":{"type":"FieldEquals","field":"n","value":null}}`, true, ""},
		{"greater uses metadata first", `{"id":"r","condition":{"type":"FieldGreaterThan","field":"priority","value":5}}`, false, "Field 'priority' (3) is not greater than 5"},
		{"less uses metadata first", `{"id":"r","condition":{"type":"FieldLessThan","field":"priority","value":5}}`, true, "Field 'priority' (3) is less than 5"},
		{"greater nested", `{"id":"r","condition":{"type":"FieldGreaterThan","field":"review.score","value":8}}`, true, "Field 'review.score' (8.5) is greater than 8"},
		{"greater not a number", `{"id":"r","condition":{"type":"FieldGreaterThan","field":"title","value":1}}`, false, `Field 'title' is not a number (found "Quarterly report")`},
		{"greater missing", `{"id":"r","condition":{"type":"FieldGreaterThan","field":"x","value":1}}`, false, "Field 'x' does not exist (expected a number greater than 1)"},
		{"contains string", `{"id":"r","condition":{"type":"FieldContains","field":"title","substring":"report"}}`, true, `Field 'title' contains "report"`},
		{"contains string no", `{"id":"r","condition":{"type":"FieldContains","field":"title","substring":"memo"}}`, false, `Field 'title' does not contain "memo"`},
		{"contains array element", `{"id":"r","condition":{"type":"FieldContains","field":"tags","substring":"urgent"}}`, true, ""},
		{"contains array no partial", `{"id":"r","condition":{"type":"FieldContains","field":"tags","substring":"urg"}}`, false, ""},
		{"contains wrong type", `{"id":"r","condition":{"type":"FieldContains","field":"priority","substring":"3"}}`, false, "Field 'priority' is neither a string nor an array (found 3)"},
		{"and", `{"id":"r","condition":{"type":"And","rules":[
			{"id":"a","condition":{"type":"FieldExists","field":"title"}},
			{"id":"b","condition":{"type":"FieldExists","field":"status"}},
			{"id":"c","condition":{"type":"FieldExists","field":"nope"}}]}}`, false, "AND: 2 of 3 rules passed"},
		{"and empty", `{"id":"r","condition":{"type":"And"}}`, true, "AND: 0 of 0 rules passed"},
		{"or", `{"id":"r","condition":{"type":"Or","rules":[
			{"id":"a","condition":{"type":"FieldExists","field":"nope"}},
			{"id":"b","condition":{"type":"FieldExists","field":"status"}}]}}`, true, "OR: 1 of 2 rules passed"},
		{"or empty", `{"id":"r","condition":{"type":"Or","rules":[]}}`, false, "OR: 0 of 0 rules passed"},
		{"not fails", `{"id":"r","condition":{"type":"Not","rule":{"id":"inner","condition":{"type":"FieldExists","field":"title"}}}}`, false, "NOT: nested rule 'inner' passed (so NOT fails)"},
		{"not passes", `{"id":"r","condition":{"type":"Not","rule":{"id":"inner","condition":{"type":"FieldExists","field":"x"}}}}`, true, "NOT: nested rule 'inner' failed (so NOT passes)"},
		{"expression true", `{"id":"r","condition":{"type":"Expression","script":"data.priority > 5 && metadata.status == \"approved\""}}`, true, `Expression 'data.priority > 5 && metadata.status == "approved"' evaluated to true`},
		{"expression float", `{"id":"r","condition":{"type":"Expression","script":"metadata.review.score >= 8.5"}}`, true, ""},
		{"expression builtin", `{"id":"r","condition":{"type":"Expression","script":"\"urgent\" in data.tags && len(data.items) == 1"}}`, true, ""},
		{"expression false", `{"id":"r","condition":{"type":"Expression","script":"data.priority < 5"}}`, false, "Expression 'data.priority < 5' evaluated to false"},
		{"expression runtime error", `{"id":"r","condition":{"type":"Expression","script":"data.missing > 5"}}`, false, "Expression 'data.missing > 5' failed: "},
	}
	f := facts(t, md, data)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := mustCompile(t, tc.rule).Evaluate(f)
			if res.Passed != tc.want {
				t.Errorf("passed = %v, want %v (%s)", res.Passed, tc.want, res.Explanation)
			}
			if res.RuleID != "r" {
				t.Errorf("rule id = %q", res.RuleID)
			}
			if !strings.HasPrefix(res.Explanation, tc.explain) {
				t.Errorf("explanation = %q, want prefix %q", res.Explanation, tc.explain)
			}
		})
	}
}

func TestEvaluateSubResults(t *testing.T) {
	c := mustCompile(t, `{"id":"all","condition":{"type":"And","rules":[
		{"id":"a","condition":{"type":"FieldExists","field":"x"}},
		{"id":"b","condition":{"type":"Not","rule":{"id":"c","condition":{"type":"FieldExists","field":"x"}}}}]}}`)
	res := c.Evaluate(facts(t, `{"x":1}`, ``))
	if len(res.SubResults) != 2 || res.SubResults[1].RuleID != "b" || len(res.SubResults[1].SubResults) != 1 {
		t.Fatalf("unexpected sub results: %+v", res)
	}
	if !res.SubResults[0].Passed || res.SubResults[1].Passed {
		t.Errorf("unexpected outcomes: %+v", res.SubResults)
	}
}

func TestCompileErrors(t *testing.T) {
	deep := `{"id":"r","condition":{"type":"FieldExists","field":"x"}}`
	for range MaxDepth {
		deep = `{"id":"r","condition":{"type":"Not","rule":` + deep + `}}`
	}
	tests := []struct{ name, rule, want string }{
		{"unknown type", `{"id":"r1","condition":{"type":"Foo"}}`, "rule 'r1': unknown condition type 'Foo'"},
		{"missing type", `{"id":"r1","condition":{}}`, "rule 'r1': condition type is missing"},
		{"empty id", `{"condition":{"type":"FieldExists","field":"x"}}`, "rule id must not be empty"},
		{"empty nested id", `{"id":"p","condition":{"type":"And","rules":[{"condition":{"type":"And"}}]}}`, "rule 'p': nested rule id must not be empty"},
		{"missing field", `{"id":"r","condition":{"type":"FieldExists"}}`, "rule 'r': FieldExists needs a field"},
		{"empty segment", `{"id":"r","condition":{"type":"FieldExists","field":"a..b"}}`, "rule 'r': field 'a..b' has an empty path segment"},
		{"equals no value", `{"id":"r","condition":{"type":"FieldEquals","field":"a"}}`, "rule 'r': FieldEquals needs a value"},
		{"greater no value", `{"id":"r","condition":{"type":"FieldGreaterThan","field":"a"}}`, "rule 'r': FieldGreaterThan needs a numeric value"},
		{"less string value", `{"id":"r","condition":{"type":"FieldLessThan","field":"a","value":"5"}}`, `rule 'r': FieldLessThan needs a numeric value, got "5"`},
		{"contains no substring", `{"id":"r","condition":{"type":"FieldContains","field":"a"}}`, "rule 'r': FieldContains needs a substring"},
		{"not without rule", `{"id":"r","condition":{"type":"Not"}}`, "rule 'r': Not needs a nested rule"},
		{"nested error names nested rule", `{"id":"r","condition":{"type":"Or","rules":[{"id":"q","condition":{"type":"Bar"}}]}}`, "rule 'q': unknown condition type 'Bar'"},
		{"too deep", deep, "rule 'r': rules nest deeper than 32 levels"},
		{"empty script", `{"id":"r","condition":{"type":"Expression"}}`, "rule 'r': Expression needs a script"},
		{"syntax error", `{"id":"r","condition":{"type":"Expression","script":"data.x >"}}`, "rule 'r': invalid expression: "},
		{"not a bool", `{"id":"r","condition":{"type":"Expression","script":"1 + 2"}}`, "rule 'r': invalid expression: "},
		{"unknown variable", `{"id":"r","condition":{"type":"Expression","script":"env.HOME == \"x\""}}`, "rule 'r': invalid expression: "},
		{"long script", `{"id":"r","condition":{"type":"Expression","script":"` + strings.Repeat("1", MaxScriptLen+1) + `"}}`, "rule 'r': script is longer than 4096 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Rule
			if err := json.Unmarshal([]byte(tc.rule), &r); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			_, err := Compile(r)
			if !errors.Is(err, fail.ErrBadInput) {
				t.Fatalf("got %v, want BadInput", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %q, want prefix %q", err, tc.want)
			}
		})
	}
}

func TestNewFacts(t *testing.T) {
	tests := []struct {
		name, md, data string
		ok             bool
	}{
		{"defaults", ``, ``, true},
		{"null metadata", `null`, `[1]`, true},
		{"scalar data", `{}`, `"x"`, true},
		{"metadata not object", `[1]`, `{}`, false},
		{"bad metadata", `{`, `{}`, false},
		{"bad data", `{}`, `{"a":}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := NewFacts(json.RawMessage(tc.md), json.RawMessage(tc.data))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, fail.ErrBadInput) {
				t.Errorf("want BadInput, got %v", err)
			}
			if err == nil && f.Metadata == nil {
				t.Error("metadata is nil")
			}
		})
	}
}

func TestRuleJSONRoundTrip(t *testing.T) {
	in := `{"id":"r","description":"d","condition":{"type":"Not","rule":{"id":"q","condition":{"type":"FieldEquals","field":"a.b","value":{"x":[1,2]}}}}}`
	var r Rule
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("got %s\nwant %s", out, in)
	}
}

func TestConcurrentEvaluate(t *testing.T) {
	c := mustCompile(t, `{"id":"r","condition":{"type":"Expression","script":"data.n > 1"}}`)
	f := facts(t, `{}`, `{"n":2}`)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if !c.Evaluate(f).Passed {
					t.Error("expected pass")
				}
			}
		})
	}
	wg.Wait()
}
