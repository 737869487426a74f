package gql

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// object is a completed object: response keys in selection order.
type object struct {
	keys []string
	vals []any // nil, json.RawMessage, []any or *object
}

// writeJSON encodes a completed value tree.
func writeJSON(v any) json.RawMessage {
	var b bytes.Buffer
	writeValue(&b, v)
	return b.Bytes()
}

// writeValue appends one completed value to b.
func writeValue(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case json.RawMessage:
		b.Write(x)
	case *object:
		if x == nil {
			b.WriteString("null")
			return
		}
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(quoteJSON(k))
			b.WriteByte(':')
			writeValue(b, x.vals[i])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, it := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeValue(b, it)
		}
		b.WriteByte(']')
	}
}

// quoteJSON returns s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func quoteJSON(s string) json.RawMessage {
	if !needsEscape(s) {
		out := make([]byte, 0, len(s)+2)
		out = append(out, '"')
		out = append(out, s...)
		return append(out, '"')
	}
	out, _ := json.Marshal(strings.ToValidUTF8(s, "\uFFFD"))
	return out
}

// needsEscape reports whether s needs JSON escaping (or is not valid UTF-8).
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// MarshalJSON writes the response with "errors" first and "data" only when
// HasData is set.
func (r *Response) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(r.Errors) > 0 {
		errs, err := json.Marshal(r.Errors)
		if err != nil {
			return nil, err
		}
		b.WriteString(`"errors":`)
		b.Write(errs)
	}
	if r.HasData {
		if len(r.Errors) > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"data":`)
		if len(r.Data) == 0 {
			b.WriteString("null")
		} else {
			b.Write(r.Data)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// sortErrors orders errors by location, then path, so responses are
// deterministic despite concurrent resolution.
func sortErrors(errs []*Error) {
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if c := compareLocations(a.Locations, b.Locations); c != 0 {
			return c
		}
		return comparePaths(a.Path, b.Path)
	})
}

// compareLocations compares the first locations of two errors.
func compareLocations(a, b []Location) int {
	if len(a) == 0 || len(b) == 0 {
		return len(a) - len(b)
	}
	if a[0].Line != b[0].Line {
		return a[0].Line - b[0].Line
	}
	return a[0].Column - b[0].Column
}

// comparePaths compares response paths element-wise; ints numerically.
func comparePaths(a, b []any) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ai, aInt := a[i].(int)
		bi, bInt := b[i].(int)
		switch {
		case aInt && bInt && ai != bi:
			return ai - bi
		case !aInt || !bInt:
			if c := strings.Compare(toString(a[i]), toString(b[i])); c != 0 {
				return c
			}
		}
	}
	return len(a) - len(b)
}

// toString renders a path element.
func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
