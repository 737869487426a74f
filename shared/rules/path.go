package rules

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/cbnats/circuitbreaker/shared/mergepatch"
)

// find looks a field up in the metadata first, then in the data.
func (f Facts) find(field string, path []string) (any, bool) {
	if v, ok := lookup(f.Metadata, field, path); ok {
		return v, true
	}
	return lookup(f.Data, field, path)
}

// lookup returns the value at a dotted path in root. A top-level key equal to
// the whole field name wins, so keys that contain dots stay reachable.
// Segments that are decimal integers index into arrays.
func lookup(root any, field string, path []string) (any, bool) {
	if m, ok := root.(map[string]any); ok {
		if v, ok := m[field]; ok {
			return v, true
		}
	}
	cur := root
	for _, seg := range path {
		switch node := cur.(type) {
		case map[string]any:
			v, ok := node[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(node) {
				return nil, false
			}
			cur = node[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// asNumber converts a decoded JSON number (or a Go number) to a float64.
func asNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, false
		}
		return f, true
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// jsonEqual is deep JSON equality; numbers compare by value, so 1 == 1.0.
func jsonEqual(a, b any) bool {
	if an, ok := asNumber(a); ok {
		bn, ok := asNumber(b)
		return ok && numEqual(a, b, an, bn)
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool, string:
		return a == b
	case []any:
		return sliceEqual(x, b)
	case map[string]any:
		return mapEqual(x, b)
	}
	return false
}

// numEqual compares two numbers exactly when both are integers that fit an
// int64, and as float64 otherwise.
func numEqual(a, b any, af, bf float64) bool {
	ai, aok := asInt(a)
	bi, bok := asInt(b)
	if aok && bok {
		return ai == bi
	}
	return af == bf
}

// asInt returns v as an int64 when it is an integer that fits.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		i, err := strconv.ParseInt(string(x), 10, 64)
		return i, err == nil
	case int:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

func sliceEqual(a []any, other any) bool {
	b, ok := other.([]any)
	if !ok || len(a) != len(b) {
		return false
	}
	for i := range a {
		if !jsonEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

func mapEqual(a map[string]any, other any) bool {
	b, ok := other.(map[string]any)
	if !ok || len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok || !jsonEqual(av, bv) {
			return false
		}
	}
	return true
}

// shortJSON renders v as compact JSON, clipped for explanations.
func shortJSON(v any) string {
	b, err := mergepatch.Encode(v)
	if err != nil {
		return "?"
	}
	return clip(string(b))
}
