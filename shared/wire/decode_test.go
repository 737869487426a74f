package wire

import (
	"errors"
	"strings"
	"testing"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// TestUnmarshalSpeaksJSON: a body that does not decode is BAD_USER_INPUT
// with a message in the client's terms: JSON keys and JSON types, never Go
// type names.
func TestUnmarshalSpeaksJSON(t *testing.T) {
	cases := []struct {
		name, body string
		into       any
		want       string
	}{
		{"syntax", `{`, &FireRequest{}, "invalid request body: invalid JSON at offset 1: unexpected end of JSON input"},
		{"trailing", `{}x`, &GetTokenRequest{}, "invalid JSON at offset 3"},
		{"not an object", `[]`, &FireRequest{}, "the body must be an object (got an array)"},
		{"string for revision", `{"expectedRevision":"x"}`, &FireRequest{},
			"field expectedRevision must be an integer between 0 and 18446744073709551615 (got a string)"},
		{"negative revision", `{"expectedRevision":-1}`, &UpdateTokenRequest{}, "field expectedRevision must be an integer between 0 and 18446744073709551615 (got -1)"},
		{"embedded page", `{"first":"x"}`, &ListTokensRequest{}, "field first must be an integer between -9223372036854775808 and 9223372036854775807 (got a string)"},
		{"huge first", `{"first":99999999999999999999}`, &ListWorkflowsRequest{}, "field first must be an integer"},
		{"nested", `{"transitions":[{"fromPlaces":"a"}]}`, &CreateWorkflowRequest{}, "field transitions.fromPlaces must be an array (got a string)"},
		{"number for id", `{"workflowId":5}`, &HistoryRequest{}, "field workflowId must be a string (got a number)"},
		{"time", `{"since":"yesterday"}`, &HistoryRequest{}, `"yesterday" is not an RFC 3339 time`},
		{"time not a string", `{"since":5}`, &HistoryRequest{}, "times are RFC 3339 strings"},
		{"bool", `{"replaceData":"yes"}`, &FireRequest{}, "field replaceData must be true or false (got a string)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Unmarshal([]byte(tc.body), tc.into)
			if !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (%v), want BAD_USER_INPUT containing %q", err, fail.KindOf(err), tc.want)
			}
			for _, leak := range []string{"Go ", "wire.", "json:", "uint64", "FireRequest", "Time.", "fields"} {
				if strings.Contains(err.Error(), leak) {
					t.Fatalf("message %q names %q", err, leak)
				}
			}
		})
	}
}

// TestFireRequestNewPlace: newPlace absent is no constraint; newPlace ""
// is refused; a given place decodes as before.
func TestFireRequestNewPlace(t *testing.T) {
	const tok = `"tokenId":"123e4567-e89b-12d3-a456-426614174000","transitionId":"go"`
	for _, tc := range []struct {
		body, want string
	}{
		{`{` + tok + `}`, ""},
		{`{` + tok + `,"newPlace":"b"}`, ""},
		{`{` + tok + `,"newPlace":""}`, "newPlace must not be empty"},
		{`{` + tok + `,"newPlace":">"}`, "Invalid place '>'"},
		{`{` + tok + `,"newPlace":null}`, ""},
	} {
		var r FireRequest
		if err := Unmarshal([]byte(tc.body), &r); err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		err := r.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && (!errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), tc.want))) {
			t.Fatalf("%s: Validate = %v, want %q", tc.body, err, tc.want)
		}
	}
	var r FireRequest
	if err := Unmarshal([]byte(`{`+tok+`,"newPlace":"b","data":{"x":1},"expectedRevision":3}`), &r); err != nil ||
		r.NewPlace != "b" || string(r.Data) != `{"x":1}` || r.ExpectedRevision != 3 || r.TransitionID != "go" {
		t.Fatalf("decoded %+v, %v", r, err)
	}
}

// TestValidators: the exported validators say what the endpoints say.
func TestValidators(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"wildcard workflow", ValidWorkflowID(">"), "Invalid workflow ID format"},
		{"empty workflow", ValidWorkflowID(""), "workflowId is required"},
		{"tenant workflow", ValidWorkflowID("acme::orders"), ""},
		{"token", ValidTokenID("abc"), "Invalid token ID format"},
		{"wildcard place", ValidPlace("*"), "Invalid place '*'"},
		{"empty place", ValidPlace(""), "place must not be empty"},
		{"place", ValidPlace("review"), ""},
	} {
		if (tc.want == "") != (tc.err == nil) || (tc.err != nil && (!errors.Is(tc.err, fail.ErrBadInput) || !strings.Contains(tc.err.Error(), tc.want))) {
			t.Errorf("%s: %v, want %q", tc.name, tc.err, tc.want)
		}
	}
}
