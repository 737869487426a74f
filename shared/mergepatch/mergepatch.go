// Package mergepatch implements RFC 7396 JSON Merge Patch on raw JSON
// documents. Numbers are decoded as json.Number so they round-trip exactly,
// and the output is deterministic (object keys sorted).
package mergepatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// Apply returns doc with patch applied as an RFC 7396 merge patch. A patch
// that is not a JSON object replaces doc; members of a patch object whose
// value is null delete the member; nested objects merge recursively. A nil or
// empty doc counts as JSON null. Malformed JSON gives a fail.BadInput error.
func Apply(doc, patch json.RawMessage) (json.RawMessage, error) {
	target, err := decodeDoc(doc)
	if err != nil {
		return nil, fail.New(fail.BadInput, "invalid JSON document: %v", err)
	}
	if len(bytes.TrimSpace(patch)) == 0 {
		return nil, fail.New(fail.BadInput, "invalid JSON merge patch: empty")
	}
	p, err := Decode(patch)
	if err != nil {
		return nil, fail.New(fail.BadInput, "invalid JSON merge patch: %v", err)
	}
	return Encode(merge(target, p))
}

// decodeDoc decodes doc, treating nil or blank input as JSON null.
func decodeDoc(doc json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, nil
	}
	return Decode(doc)
}

// merge applies patch to target following the MergePatch pseudo code of
// RFC 7396 section 2. It may modify target, which callers own.
func merge(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = make(map[string]any, len(pm))
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = merge(tm[k], v)
	}
	return tm
}

// Decode decodes exactly one JSON value from raw, with numbers as
// json.Number. Trailing data after the value is an error.
func Decode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

// Encode encodes v compactly without HTML escaping; map keys come out sorted.
func Encode(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fail.New(fail.BadInput, "cannot encode JSON: %v", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
