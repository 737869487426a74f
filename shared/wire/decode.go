package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// Unmarshal decodes the JSON request body b into v. A body that does not
// decode is fail.BadInput "invalid request body: …", in the client's terms
// (DescribeJSONError).
func Unmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fail.Wrap(fail.BadInput, err, "invalid request body: "+DescribeJSONError(err))
	}
	return nil
}

// DescribeJSONError says why encoding/json refused a document, in the
// terms of the client that sent it: where the syntax broke, or which JSON
// field needs which JSON type. It never names a Go type or package.
func DescribeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tm *time.ParseError
	var fe *fail.Error
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at offset %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("the body must be %s (got %s)", jsonType(typ.Type), got(typ.Value))
		}
		return fmt.Sprintf("field %s must be %s (got %s)", jsonPath(typ.Field), jsonType(typ.Type), got(typ.Value))
	case errors.As(err, &tm):
		return fmt.Sprintf("%q is not an RFC 3339 time", tm.Value)
	case errors.As(err, &fe):
		return fe.Message
	}
	return "a value has the wrong JSON type or format (times are RFC 3339 strings)"
}

// jsonPath turns the field path of a decode error into JSON keys: an
// embedded struct adds its Go name (capitalised; every JSON key of the
// wire starts in lower case) to the path, but no key to the JSON.
func jsonPath(path string) string {
	segs := strings.Split(path, ".")
	keys := segs[:0]
	for i, s := range segs {
		if i < len(segs)-1 && s != "" && unicode.IsUpper(rune(s[0])) {
			continue
		}
		keys = append(keys, s)
	}
	return strings.Join(keys, ".")
}

// jsonType names the JSON a Go type decodes from.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := t.Bits()
		return fmt.Sprintf("an integer between %d and %d", int64(-1)<<(bits-1), int64(math.MaxInt64)>>(64-bits))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("an integer between 0 and %d", uint64(math.MaxUint64)>>(64-t.Bits()))
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a different JSON value"
}

// got renders the JSON value a decode error reports: a kind ("string"),
// or a number that did not fit ("number -1").
func got(v string) string {
	if n, ok := strings.CutPrefix(v, "number "); ok {
		return n
	}
	switch v {
	case "array", "object":
		return "an " + v
	case "bool":
		return "a boolean"
	}
	return "a " + v
}

// UnmarshalJSON decodes a FireRequest, recording whether newPlace was
// given, so that an explicit "" is refused instead of read as absent.
func (r *FireRequest) UnmarshalJSON(b []byte) error {
	type fields FireRequest // without this method
	in := struct {
		*fields
		NewPlace *string `json:"newPlace"` // shadows fields.NewPlace
	}{fields: (*fields)(r)}
	if err := json.Unmarshal(b, &in); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			typ.Struct, typ.Field = "FireRequest", strings.TrimPrefix(typ.Field, "fields.")
		}
		return err
	}
	r.NewPlace, r.newPlaceGiven = "", in.NewPlace != nil
	if in.NewPlace != nil {
		r.NewPlace = *in.NewPlace
	}
	return nil
}
