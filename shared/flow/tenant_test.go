package flow

import "testing"

func TestValidWorkflowID(t *testing.T) {
	for id, want := range map[string]bool{
		"document_approval":           true,
		"tenant_a::document_approval": true,
		"a::b::c":                     false,
		"::x":                         false,
		"x::":                         false,
		"a:b":                         false,
		"a.b":                         false,
		"a::b.c":                      false,
		"":                            false,
	} {
		if got := ValidWorkflowID(id); got != want {
			t.Errorf("ValidWorkflowID(%q) = %v, want %v", id, got, want)
		}
	}
}
