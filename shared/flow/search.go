package flow

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Search attributes: keys of a token's data or metadata that a workflow
// declares searchable. Storage keeps an index entry per token and
// attribute (its value encoded into a subject token), written in the same
// atomic batch as the token's state, so a search finds tokens by value at
// the cost of the answer, never by reading every token.

// The types of search attributes.
const (
	Keyword = "KEYWORD" // a JSON string of at most MaxKeywordLen bytes
	Number  = "NUMBER"  // a JSON number
	Bool    = "BOOL"    // true or false
	Time    = "TIME"    // an RFC 3339 string
)

// Bounds of search attributes.
const (
	MaxSearchAttributes = 16
	MaxKeywordLen       = 128
)

// SearchAttribute is one searchable key: a path into the token's data or
// metadata ("data.priority", "metadata.department", "data.customer.tier")
// and the type of its values. A token whose value at the path is missing
// or of another type is not indexed for it.
type SearchAttribute struct {
	Path string `json:"path"`
	Type string `json:"type"`
}

// Key is the attribute's name in index subjects: its path with ':' for '.'.
func (a SearchAttribute) Key() string { return strings.ReplaceAll(a.Path, ".", ":") }

// check describes what is wrong with the attribute, or "".
func (a SearchAttribute) check() string {
	root, rest, ok := strings.Cut(a.Path, ".")
	if !ok || (root != "data" && root != "metadata") {
		return fmt.Sprintf("search attribute '%s': the path starts with data. or metadata.", a.Path)
	}
	for _, seg := range strings.Split(rest, ".") {
		if !ValidName(seg) {
			return fmt.Sprintf("search attribute '%s': %s", a.Path, unsafeName("key", seg))
		}
	}
	switch a.Type {
	case Keyword, Number, Bool, Time:
		return ""
	}
	return fmt.Sprintf("search attribute '%s': type '%s' is not KEYWORD, NUMBER, BOOL or TIME", a.Path, a.Type)
}

func (d *Definition) checkSearchAttributes() string {
	if len(d.SearchAttributes) > MaxSearchAttributes {
		return fmt.Sprintf("at most %d search attributes", MaxSearchAttributes)
	}
	seen := map[string]bool{}
	for _, a := range d.SearchAttributes {
		if msg := a.check(); msg != "" {
			return msg
		}
		if seen[a.Path] {
			return fmt.Sprintf("search attribute '%s' is declared twice", a.Path)
		}
		seen[a.Path] = true
	}
	return ""
}

// SearchAttribute returns the declared attribute at path.
func (d *Definition) SearchAttribute(path string) (SearchAttribute, bool) {
	for _, a := range d.SearchAttributes {
		if a.Path == path {
			return a, true
		}
	}
	return SearchAttribute{}, false
}

// AddedSearchAttributes are the paths of the attributes next declares
// that prev does not (an attribute whose type changed counts as added):
// existing tokens lack their index entries.
func AddedSearchAttributes(prev, next *Definition) []string {
	var out []string
	for _, a := range next.SearchAttributes {
		if !slices.Contains(prev.SearchAttributes, a) {
			out = append(out, a.Path)
		}
	}
	return out
}

// Lookup returns the JSON value at the attribute's path in t, or nil.
func (a SearchAttribute) Lookup(t *Token) json.RawMessage {
	root, rest, _ := strings.Cut(a.Path, ".")
	doc := t.Data
	if root == "metadata" {
		doc = t.Metadata
	}
	for _, seg := range strings.Split(rest, ".") {
		var obj map[string]json.RawMessage
		if json.Unmarshal(doc, &obj) != nil {
			return nil
		}
		if doc = obj[seg]; doc == nil {
			return nil
		}
	}
	return doc
}

// IndexValue is the index encoding of t's value for the attribute, and
// whether t has one of the attribute's type.
func (a SearchAttribute) IndexValue(t *Token) (string, bool) {
	v := a.Lookup(t)
	if v == nil {
		return "", false
	}
	s, err := a.Encode(v)
	return s, err == nil
}

// Encode is the index encoding of a JSON value of the attribute's type: a
// subject-safe token whose byte order is the values' order for numbers
// and times (so ranges compare encodings).
func (a SearchAttribute) Encode(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	switch a.Type {
	case Keyword:
		var s string
		if json.Unmarshal(v, &s) != nil || len(s) > MaxKeywordLen {
			return "", fmt.Errorf("%s wants a string of at most %d bytes", a.Path, MaxKeywordLen)
		}
		return "k" + hex.EncodeToString([]byte(s)), nil
	case Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || v[0] == '"' {
			return "", fmt.Errorf("%s wants a number", a.Path)
		}
		return "n" + sortable(f), nil
	case Bool:
		switch string(v) {
		case "true":
			return "t", nil
		case "false":
			return "f", nil
		}
		return "", fmt.Errorf("%s wants true or false", a.Path)
	case Time:
		var s string
		if json.Unmarshal(v, &s) != nil {
			return "", fmt.Errorf("%s wants an RFC 3339 time", a.Path)
		}
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return "", fmt.Errorf("%s wants an RFC 3339 time", a.Path)
		}
		return "n" + fmt.Sprintf("%016x", uint64(at.UnixNano())^(1<<63)), nil
	}
	return "", fmt.Errorf("%s has no type", a.Path)
}

// sortable encodes f as 16 hex digits whose order is f's order.
func sortable(f float64) string {
	b := math.Float64bits(f)
	if f >= 0 {
		b |= 1 << 63
	} else {
		b = ^b
	}
	return fmt.Sprintf("%016x", b)
}
