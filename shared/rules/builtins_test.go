package rules

import (
	"encoding/json"
	"testing"
)

func TestBuiltins(t *testing.T) {
	tests := []struct {
		name, metadata, data string
		want                 bool
	}{
		{"has_content", `{}`, `{"content":"x"}`, true},
		{"has_content", `{}`, `{}`, false},
		{"has_title", `{"title":"t"}`, `{}`, true},
		{"has_description", `{}`, `{"description":""}`, true},
		{"has_reviewer", `{}`, `{"reviewer":"bob"}`, true},
		{"has_approver", `{}`, `{"approver":null}`, true},
		{"has_assignee", `{}`, `{}`, false},
		{"has_creator", `{"creator":"ann"}`, `{}`, true},
		{"status_approved", `{}`, `{"status":"approved"}`, true},
		{"status_approved", `{"status":"pending"}`, `{"status":"approved"}`, true},
		{"status_rejected", `{}`, `{"status":"approved"}`, false},
		{"status_pending", `{"status":"pending"}`, `{}`, true},
		{"high_priority", `{}`, `{"priority":6}`, true},
		{"high_priority", `{}`, `{"priority":5}`, false},
		{"high_priority", `{}`, `{"priority":"high"}`, false},
		{"critical_priority", `{}`, `{"priority":9}`, true},
		{"critical_priority", `{}`, `{"priority":8}`, false},
		{"emergency_flag", `{"emergency":true}`, `{}`, true},
		{"emergency_flag", `{"emergency":"true"}`, `{}`, false},
		{"tests_passed", `{}`, `{"test_status":"passed"}`, true},
		{"tests_failed", `{}`, `{"test_status":"passed"}`, false},
		{"security_approved", `{}`, `{"security_status":"approved"}`, true},
		{"security_flagged", `{}`, `{"security_status":"flagged"}`, true},
		{"admin_override", `{}`, `{"admin_override":true}`, true},
		{"admin_override", `{}`, `{"admin_override":false}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := Builtin(tc.name)
			if !ok {
				t.Fatalf("builtin %q missing", tc.name)
			}
			res := c.Evaluate(facts(t, tc.metadata, tc.data))
			if res.Passed != tc.want || res.RuleID != tc.name {
				t.Errorf("got %+v, want passed=%v", res, tc.want)
			}
		})
	}
}

func TestBuiltinsComplete(t *testing.T) {
	names := []string{
		"has_content", "has_title", "has_description", "has_reviewer", "has_approver",
		"has_assignee", "has_creator", "status_approved", "status_rejected", "status_pending",
		"high_priority", "critical_priority", "emergency_flag", "tests_passed", "tests_failed",
		"security_approved", "security_flagged", "admin_override",
	}
	all := Builtins()
	if len(all) != len(names) {
		t.Errorf("got %d builtins, want %d", len(all), len(names))
	}
	for _, n := range names {
		if r, ok := all[n]; !ok || r.ID != n {
			t.Errorf("builtin %q missing or misnamed", n)
		}
	}
	delete(all, "has_title")
	if _, ok := Builtins()["has_title"]; !ok {
		t.Error("Builtins must return a fresh map")
	}
	if _, ok := Builtin("nope"); ok {
		t.Error("unknown builtin found")
	}
}

func FuzzCompileEvaluate(f *testing.F) {
	f.Add(`{"id":"r","condition":{"type":"FieldEquals","field":"a.0.b","value":{"x":1}}}`, `{"a":1}`, `{"a":[{"b":{"x":1.0}}]}`)
	f.Add(`{"id":"r","condition":{"type":"Expression","script":"data.a > 1 || metadata.b == nil"}}`, `{}`, `{"a":2}`)
	f.Add(`{"id":"r","condition":{"type":"And","rules":[{"id":"n","condition":{"type":"Not","rule":{"id":"c","condition":{"type":"FieldContains","field":"t","substring":"x"}}}}]}}`, `{"t":["x"]}`, `5`)
	f.Add(`{"id":"r","condition":{"type":"FieldGreaterThan","field":"n","value":1e400}}`, `{"n":-1e400}`, `null`)
	f.Fuzz(func(t *testing.T, ruleJSON, metadata, data string) {
		var r Rule
		if err := json.Unmarshal([]byte(ruleJSON), &r); err != nil {
			return
		}
		c, err := Compile(r)
		if err != nil {
			return
		}
		fs, err := NewFacts(json.RawMessage(metadata), json.RawMessage(data))
		if err != nil {
			return
		}
		res := c.Evaluate(fs)
		if res.RuleID != r.ID || res.Explanation == "" {
			t.Fatalf("bad result %+v", res)
		}
	})
}
