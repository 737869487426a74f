package gql

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/vektah/gqlparser/v2/ast"
)

// maxVariableErrors caps the variable errors reported for one request.
const maxVariableErrors = 50

// coerceVariables implements the spec's CoerceVariableValues for op.
// Errors are request errors in graphql-js wording, located at the variable
// definition and without a path.
func (s *Schema) coerceVariables(op *ast.OperationDefinition, in map[string]any) (map[string]any, []*Error) {
	out := make(map[string]any, len(op.VariableDefinitions))
	var errs []*Error
	for _, def := range op.VariableDefinitions {
		if len(errs) >= maxVariableErrors {
			break
		}
		if msg := s.coerceVariable(def, in, out); msg != "" {
			errs = append(errs, newError(CodeBadUserInput, msg, location(def.Position)...))
		}
	}
	return out, errs
}

// coerceVariable coerces one variable into out, returning an error message.
func (s *Schema) coerceVariable(def *ast.VariableDefinition, in, out map[string]any) string {
	name := def.Variable
	v, ok := in[name]
	if !ok {
		if def.DefaultValue != nil {
			c, err := s.coerceLiteral(def.Type, def.DefaultValue, nil)
			if err != nil {
				return fmt.Sprintf("Variable \"$%s\" has invalid default value: %v", name, err)
			}
			out[name] = c
		} else if def.Type.NonNull {
			return fmt.Sprintf("Variable \"$%s\" of required type \"%s\" was not provided.", name, def.Type)
		}
		return ""
	}
	if v == nil && def.Type.NonNull {
		return fmt.Sprintf("Variable \"$%s\" of non-null type \"%s\" must not be null.", name, def.Type)
	}
	c, err := s.coerceInput(def.Type, v, name)
	if err != nil {
		return fmt.Sprintf("Variable \"$%s\" got invalid value %s%s", name, jsonText(v), err.suffix(name))
	}
	out[name] = c
	return ""
}

// inputError is a coercion failure at a path inside a variable's value.
type inputError struct {
	path string // e.g. "input.items[1].name"; the variable name alone at the top
	msg  string
}

// suffix formats the error after the offending value.
func (e *inputError) suffix(root string) string {
	if e.path == root {
		return "; " + e.msg
	}
	return fmt.Sprintf(" at \"%s\"; %s", e.path, e.msg)
}

// jsonText renders v for messages.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// coerceInput implements the spec's CoerceInputValue for a JSON value.
func (s *Schema) coerceInput(t *ast.Type, v any, path string) (any, *inputError) {
	if v == nil {
		if t.NonNull {
			return nil, &inputError{path, fmt.Sprintf("Expected non-nullable type \"%s\" not to be null.", t)}
		}
		return nil, nil
	}
	if t.Elem != nil {
		items, ok := v.([]any)
		if !ok {
			c, err := s.coerceInput(t.Elem, v, path)
			if err != nil {
				return nil, err
			}
			return []any{c}, nil
		}
		out := make([]any, len(items))
		for i, it := range items {
			c, err := s.coerceInput(t.Elem, it, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	def := s.schema.Types[t.NamedType]
	switch def.Kind {
	case ast.Enum:
		return coerceEnumInput(def, v, path)
	case ast.InputObject:
		return s.coerceObjectInput(def, v, path)
	default:
		c, msg := coerceScalarInput(def.Name, v)
		if msg != "" {
			return nil, &inputError{path, msg}
		}
		return c, nil
	}
}

// coerceEnumInput accepts only the exact name of a value of def.
func coerceEnumInput(def *ast.Definition, v any, path string) (any, *inputError) {
	str, ok := v.(string)
	if !ok {
		return nil, &inputError{path, fmt.Sprintf("Enum \"%s\" cannot represent non-string value: %s.", def.Name, jsonText(v))}
	}
	if def.EnumValues.ForName(str) == nil {
		return nil, &inputError{path, fmt.Sprintf("Value \"%s\" does not exist in \"%s\" enum.", str, def.Name)}
	}
	return str, nil
}

// coerceObjectInput coerces an input object: unknown fields, required
// fields, field defaults and @oneOf.
func (s *Schema) coerceObjectInput(def *ast.Definition, v any, path string) (any, *inputError) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &inputError{path, fmt.Sprintf("Expected type \"%s\" to be an object.", def.Name)}
	}
	for k := range m {
		if def.Fields.ForName(k) == nil {
			return nil, &inputError{path, fmt.Sprintf("Field \"%s\" is not defined by type \"%s\".", k, def.Name)}
		}
	}
	out := make(map[string]any, len(def.Fields))
	for _, f := range def.Fields {
		fv, present := m[f.Name]
		if !present {
			if err := s.defaultField(def, f, out, path); err != nil {
				return nil, err
			}
			continue
		}
		c, err := s.coerceInput(f.Type, fv, path+"."+f.Name)
		if err != nil {
			return nil, err
		}
		out[f.Name] = c
	}
	if msg := checkOneOf(def, out); msg != "" {
		return nil, &inputError{path, msg}
	}
	return out, nil
}

// defaultField fills an absent input field from its default, or reports a
// missing required field.
func (s *Schema) defaultField(def *ast.Definition, f *ast.FieldDefinition, out map[string]any, path string) *inputError {
	if f.DefaultValue != nil {
		c, err := s.coerceLiteral(f.Type, f.DefaultValue, nil)
		if err != nil {
			return &inputError{path, err.Error()}
		}
		out[f.Name] = c
		return nil
	}
	if f.Type.NonNull {
		return &inputError{path, fmt.Sprintf("Field \"%s.%s\" of required type \"%s\" was not provided.", def.Name, f.Name, f.Type)}
	}
	return nil
}

// checkOneOf enforces @oneOf: exactly one field, and it is not null.
func checkOneOf(def *ast.Definition, m map[string]any) string {
	if def.Directives.ForName("oneOf") == nil {
		return ""
	}
	if len(m) != 1 {
		return fmt.Sprintf("Exactly one key must be specified for OneOf type \"%s\".", def.Name)
	}
	for k, v := range m {
		if v == nil {
			return fmt.Sprintf("Field \"%s.%s\" must be non-null.", def.Name, k)
		}
	}
	return ""
}

// coerceScalarInput coerces a JSON value to a built-in scalar; custom
// scalars pass through unchanged. It returns an error message on failure.
func coerceScalarInput(name string, v any) (any, string) {
	switch name {
	case "Int":
		return coerceIntInput(v)
	case "Float":
		if f, ok := toFloat(v); ok && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f, ""
		}
		return nil, fmt.Sprintf("Float cannot represent non numeric value: %s", jsonText(v))
	case "String":
		if str, ok := v.(string); ok {
			return str, ""
		}
		return nil, fmt.Sprintf("String cannot represent a non string value: %s", jsonText(v))
	case "Boolean":
		if b, ok := v.(bool); ok {
			return b, ""
		}
		return nil, fmt.Sprintf("Boolean cannot represent a non boolean value: %s", jsonText(v))
	case "ID":
		return coerceIDInput(v)
	default:
		return v, ""
	}
}

// coerceIntInput accepts whole numbers in the 32-bit range.
func coerceIntInput(v any) (any, string) {
	f, ok := toFloat(v)
	if !ok {
		return nil, fmt.Sprintf("Int cannot represent non-integer value: %s", jsonText(v))
	}
	if n, ok := v.(json.Number); ok {
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			f = float64(i)
		}
	}
	if f != math.Trunc(f) || math.IsInf(f, 0) {
		return nil, fmt.Sprintf("Int cannot represent non-integer value: %s", jsonText(v))
	}
	if f > math.MaxInt32 || f < math.MinInt32 {
		return nil, fmt.Sprintf("Int cannot represent non 32-bit signed integer value: %s", jsonText(v))
	}
	return int64(f), ""
}

// coerceIDInput accepts strings and integers, returning a string.
func coerceIDInput(v any) (any, string) {
	switch x := v.(type) {
	case string:
		return x, ""
	case json.Number:
		if _, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return string(x), ""
		}
	case int, int32, int64:
		return fmt.Sprint(x), ""
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10), ""
		}
	}
	return nil, fmt.Sprintf("ID cannot represent value: %s", jsonText(v))
}

// toFloat converts a JSON or Go number to float64.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}
