package gql

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
)

// serializeLeaf implements CompleteValue for scalars and enums, returning
// the value as JSON bytes.
func serializeLeaf(def *ast.Definition, v any) (json.RawMessage, error) {
	if def.Kind == ast.Enum {
		return serializeEnum(def, v)
	}
	switch def.Name {
	case "Int":
		return serializeInt(v)
	case "Float":
		f, ok := numberValue(v)
		if !ok || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("Float cannot represent non numeric value: %v", v)
		}
		return json.RawMessage(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case "String":
		return serializeString(v)
	case "Boolean":
		if b, ok := v.(bool); ok {
			return json.RawMessage(strconv.FormatBool(b)), nil
		}
		return nil, fmt.Errorf("Boolean cannot represent a non boolean value: %v", v)
	case "ID":
		return serializeID(v)
	default:
		return serializeCustom(v)
	}
}

// serializeEnum accepts a string (or string-kinded value) naming a value.
func serializeEnum(def *ast.Definition, v any) (json.RawMessage, error) {
	s, ok := stringValue(v)
	if !ok || def.EnumValues.ForName(s) == nil {
		return nil, fmt.Errorf("Enum \"%s\" cannot represent value: %v", def.Name, v)
	}
	return quoteJSON(s), nil
}

// serializeInt accepts integers (and whole floats) in the 32-bit range.
func serializeInt(v any) (json.RawMessage, error) {
	var n int64
	rv := reflect.ValueOf(v)
	switch {
	case rv.CanInt():
		n = rv.Int()
	case rv.CanUint() && rv.Uint() <= math.MaxInt64:
		n = int64(rv.Uint())
	default:
		f, ok := numberValue(v)
		if !ok || f != math.Trunc(f) || math.Abs(f) > math.MaxInt64/2 {
			return nil, fmt.Errorf("Int cannot represent non-integer value: %v", v)
		}
		n = int64(f)
	}
	if n > math.MaxInt32 || n < math.MinInt32 {
		return nil, fmt.Errorf("Int cannot represent non 32-bit signed integer value: %v", v)
	}
	return json.RawMessage(strconv.FormatInt(n, 10)), nil
}

// serializeString accepts strings, booleans and numbers, like graphql-js.
func serializeString(v any) (json.RawMessage, error) {
	if s, ok := stringValue(v); ok {
		return quoteJSON(s), nil
	}
	switch x := v.(type) {
	case bool:
		return quoteJSON(strconv.FormatBool(x)), nil
	case time.Time:
		return quoteJSON(x.Format(time.RFC3339Nano)), nil
	case json.Number:
		return quoteJSON(x.String()), nil
	}
	if f, ok := numberValue(v); ok {
		return quoteJSON(strconv.FormatFloat(f, 'g', -1, 64)), nil
	}
	return nil, fmt.Errorf("String cannot represent value: %v", v)
}

// serializeID accepts strings and integers.
func serializeID(v any) (json.RawMessage, error) {
	if s, ok := stringValue(v); ok {
		return quoteJSON(s), nil
	}
	rv := reflect.ValueOf(v)
	switch {
	case rv.CanInt():
		return quoteJSON(strconv.FormatInt(rv.Int(), 10)), nil
	case rv.CanUint():
		return quoteJSON(strconv.FormatUint(rv.Uint(), 10)), nil
	}
	if n, ok := v.(json.Number); ok {
		return quoteJSON(n.String()), nil
	}
	return nil, fmt.Errorf("ID cannot represent value: %v", v)
}

// serializeCustom writes a custom scalar: json.RawMessage verbatim,
// time.Time as RFC 3339, anything else with encoding/json.
func serializeCustom(v any) (json.RawMessage, error) {
	switch x := v.(type) {
	case json.RawMessage:
		if !json.Valid(x) {
			return nil, errors.New("custom scalar: invalid JSON")
		}
		return x, nil
	case time.Time:
		return quoteJSON(x.Format(time.RFC3339Nano)), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("custom scalar: %w", err)
	}
	return b, nil
}

// stringValue returns v as a string if it is one (or has string kind).
func stringValue(v any) (string, bool) {
	if s, ok := v.(string); ok {
		return s, true
	}
	if _, isNum := v.(json.Number); isNum {
		return "", false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.String {
		return rv.String(), true
	}
	return "", false
}

// numberValue returns any Go or JSON number as a float64.
func numberValue(v any) (float64, bool) {
	if n, ok := v.(json.Number); ok {
		f, err := n.Float64()
		return f, err == nil
	}
	rv := reflect.ValueOf(v)
	switch {
	case rv.CanInt():
		return float64(rv.Int()), true
	case rv.CanUint():
		return float64(rv.Uint()), true
	case rv.CanFloat():
		return rv.Float(), true
	}
	return 0, false
}
