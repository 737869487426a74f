package rules

import "encoding/json"

// builtinCompiled holds the compiled common rules. It is built once from a
// pure function and never modified; Compiled values are immutable.
var builtinCompiled = compileBuiltins()

// Builtins returns the 18 common rules of the original engine, keyed by name
// (each rule's id is its name). The map is fresh on every call.
func Builtins() map[string]Rule {
	rs := builtinRules()
	m := make(map[string]Rule, len(rs))
	for _, r := range rs {
		m[r.ID] = r
	}
	return m
}

// Builtin returns the compiled common rule called name.
func Builtin(name string) (*Compiled, bool) {
	c, ok := builtinCompiled[name]
	return c, ok
}

// compileBuiltins compiles every common rule; they are known to be valid.
func compileBuiltins() map[string]*Compiled {
	rs := builtinRules()
	m := make(map[string]*Compiled, len(rs))
	for _, r := range rs {
		c, err := Compile(r)
		if err != nil {
			panic("rules: invalid builtin rule: " + err.Error())
		}
		m[r.ID] = c
	}
	return m
}

// builtinRules lists the common rules in the seed's order.
func builtinRules() []Rule {
	return []Rule{
		exists("has_content", "content"),
		exists("has_title", "title"),
		exists("has_description", "description"),
		exists("has_reviewer", "reviewer"),
		exists("has_approver", "approver"),
		exists("has_assignee", "assignee"),
		exists("has_creator", "creator"),
		equals("status_approved", "status", `"approved"`),
		equals("status_rejected", "status", `"rejected"`),
		equals("status_pending", "status", `"pending"`),
		greater("high_priority", "priority", 5),
		greater("critical_priority", "priority", 8),
		equals("emergency_flag", "emergency", `true`),
		equals("tests_passed", "test_status", `"passed"`),
		equals("tests_failed", "test_status", `"failed"`),
		equals("security_approved", "security_status", `"approved"`),
		equals("security_flagged", "security_status", `"flagged"`),
		equals("admin_override", "admin_override", `true`),
	}
}

func exists(id, field string) Rule {
	return Rule{ID: id, Description: "Token has a '" + field + "' field",
		Condition: Condition{Type: FieldExists, Field: field}}
}

func equals(id, field, value string) Rule {
	return Rule{ID: id, Description: "Field '" + field + "' equals " + value,
		Condition: Condition{Type: FieldEquals, Field: field, Value: json.RawMessage(value)}}
}

func greater(id, field string, n int) Rule {
	v, _ := json.Marshal(n)
	return Rule{ID: id, Description: "Field '" + field + "' is greater than " + string(v),
		Condition: Condition{Type: FieldGreaterThan, Field: field, Value: v}}
}
