package mergepatch

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

func TestApplyRFC7396AppendixA(t *testing.T) {
	tests := []struct {
		name, doc, patch, want string
	}{
		{"replace member", `{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{"add member", `{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{"delete member", `{"a":"b"}`, `{"a":null}`, `{}`},
		{"delete one of two", `{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{"array replaced by string", `{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{"string replaced by array", `{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{"nested merge", `{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{"array of objects replaced", `{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{"array replaces array", `["a","b"]`, `["c","d"]`, `["c","d"]`},
		{"array replaces object", `{"a":"b"}`, `["c"]`, `["c"]`},
		{"null replaces object", `{"a":"foo"}`, `null`, `null`},
		{"string replaces object", `{"a":"foo"}`, `"bar"`, `"bar"`},
		{"existing null kept", `{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{"object replaces array", `[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{"nulls inside new object dropped", `{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
		{"nil doc", ``, `{"a":1}`, `{"a":1}`},
		{"numbers exact", `{"n":12345678901234567890}`, `{"m":1.50}`, `{"m":1.50,"n":12345678901234567890}`},
		{"no html escaping", `{}`, `{"a":"<b>&"}`, `{"a":"<b>&"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Apply(json.RawMessage(tc.doc), json.RawMessage(tc.patch))
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name, doc, patch string
	}{
		{"malformed doc", `{"a":`, `{}`},
		{"malformed patch", `{}`, `{"a"}`},
		{"empty patch", `{}`, ``},
		{"trailing data", `{}`, `{} {}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Apply(json.RawMessage(tc.doc), json.RawMessage(tc.patch))
			if !errors.Is(err, fail.ErrBadInput) {
				t.Fatalf("got %v, want a BadInput error", err)
			}
		})
	}
}

func FuzzMergePatch(f *testing.F) {
	f.Add([]byte(`{"a":{"b":"c"}}`), []byte(`{"a":{"b":"d","c":null}}`))
	f.Add([]byte(`[1,2]`), []byte(`{"a":"b","c":null}`))
	f.Add([]byte(``), []byte(`null`))
	f.Add([]byte(`{"n":1e400}`), []byte(`{"x":[1,{"y":null}]}`))
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		out, err := Apply(doc, patch)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q", out)
		}
		again, err := Apply(out, patch)
		if err != nil {
			t.Fatalf("re-applying patch: %v", err)
		}
		if string(again) != string(out) {
			t.Fatalf("patch not idempotent: %s then %s", out, again)
		}
	})
}
