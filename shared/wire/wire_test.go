package wire

import (
	"encoding/json"
	"testing"
)

func TestRawTokenPageHasTokenPageJSON(t *testing.T) {
	for _, p := range []*RawTokenPage{
		{Items: []json.RawMessage{}},
		{Items: []json.RawMessage{[]byte(`{"id":"a","place":"x"}`), []byte(`{"id":"b","place":"y"}`)}, Next: "42"},
	} {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var got TokenPage
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if len(got.Items) != len(p.Items) || got.Next != p.Next {
			t.Fatalf("%s decoded to %+v", b, got)
		}
		if len(p.Items) == 2 && (got.Items[1].ID != "b" || got.Items[0].Place != "x") {
			t.Fatalf("items = %+v", got.Items)
		}
	}
}
