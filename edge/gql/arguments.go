package gql

import (
	"fmt"
	"strconv"

	"github.com/vektah/gqlparser/v2/ast"
)

// coerceArgs implements the spec's CoerceArgumentValues for a field or
// directive: literals, variables and argument defaults.
func (s *Schema) coerceArgs(defs ast.ArgumentDefinitionList, args ast.ArgumentList, vars map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(defs))
	for _, def := range defs {
		arg := args.ForName(def.Name)
		present := arg != nil
		if present && arg.Value.Kind == ast.Variable {
			_, present = vars[arg.Value.Raw]
		}
		if !present {
			if err := s.argDefault(def, out); err != nil {
				return nil, err
			}
			continue
		}
		v, err := s.coerceLiteral(def.Type, arg.Value, vars)
		if err != nil {
			return nil, fmt.Errorf("Argument \"%s\" has invalid value: %w", def.Name, err)
		}
		if v == nil && def.Type.NonNull {
			return nil, fmt.Errorf("Argument \"%s\" of non-null type \"%s\" must not be null.", def.Name, def.Type)
		}
		out[def.Name] = v
	}
	return out, nil
}

// argDefault applies an absent argument's default or reports it missing.
func (s *Schema) argDefault(def *ast.ArgumentDefinition, out map[string]any) error {
	if def.DefaultValue != nil {
		v, err := s.coerceLiteral(def.Type, def.DefaultValue, nil)
		if err != nil {
			return err
		}
		out[def.Name] = v
		return nil
	}
	if def.Type.NonNull {
		return fmt.Errorf("Argument \"%s\" of required type \"%s\" was not provided.", def.Name, def.Type)
	}
	return nil
}

// coerceLiteral implements the spec's literal input coercion for t, with
// variables already coerced. A reference to an absent variable yields nil.
func (s *Schema) coerceLiteral(t *ast.Type, v *ast.Value, vars map[string]any) (any, error) {
	switch v.Kind {
	case ast.Variable:
		return vars[v.Raw], nil
	case ast.NullValue:
		if t.NonNull {
			return nil, fmt.Errorf("Expected value of non-null type \"%s\", found null.", t)
		}
		return nil, nil
	}
	if t.Elem != nil {
		return s.coerceListLiteral(t, v, vars)
	}
	def := s.schema.Types[t.NamedType]
	if def == nil {
		return nil, fmt.Errorf("unknown type %q", t.NamedType)
	}
	switch def.Kind {
	case ast.InputObject:
		return s.coerceObjectLiteral(def, v, vars)
	case ast.Enum:
		if v.Kind != ast.EnumValue || def.EnumValues.ForName(v.Raw) == nil {
			return nil, fmt.Errorf("Value %s does not exist in \"%s\" enum.", v.String(), def.Name)
		}
		return v.Raw, nil
	default:
		return coerceScalarLiteral(def.Name, v, vars)
	}
}

// coerceListLiteral coerces a list literal, or a single value into a list.
func (s *Schema) coerceListLiteral(t *ast.Type, v *ast.Value, vars map[string]any) (any, error) {
	if v.Kind != ast.ListValue {
		c, err := s.coerceLiteral(t.Elem, v, vars)
		if err != nil {
			return nil, err
		}
		return []any{c}, nil
	}
	out := make([]any, len(v.Children))
	for i, ch := range v.Children {
		c, err := s.coerceLiteral(t.Elem, ch.Value, vars)
		if err != nil {
			return nil, err
		}
		if c == nil && t.Elem.NonNull {
			return nil, fmt.Errorf("Expected value of non-null type \"%s\", found null.", t.Elem)
		}
		out[i] = c
	}
	return out, nil
}

// coerceObjectLiteral coerces an input object literal with field defaults
// and @oneOf.
func (s *Schema) coerceObjectLiteral(def *ast.Definition, v *ast.Value, vars map[string]any) (any, error) {
	if v.Kind != ast.ObjectValue {
		return nil, fmt.Errorf("Expected value of type \"%s\", found %s.", def.Name, v.String())
	}
	out := make(map[string]any, len(def.Fields))
	for _, f := range def.Fields {
		ch := v.Children.ForName(f.Name)
		present := ch != nil
		if present && ch.Kind == ast.Variable {
			_, present = vars[ch.Raw]
		}
		if !present {
			if err := s.defaultField(def, f, out, f.Name); err != nil {
				return nil, fmt.Errorf("%s", err.msg)
			}
			continue
		}
		c, err := s.coerceLiteral(f.Type, ch, vars)
		if err != nil {
			return nil, err
		}
		if c == nil && f.Type.NonNull {
			return nil, fmt.Errorf("Field \"%s.%s\" of non-null type \"%s\" must not be null.", def.Name, f.Name, f.Type)
		}
		out[f.Name] = c
	}
	if msg := checkOneOf(def, out); msg != "" {
		return nil, fmt.Errorf("%s", msg)
	}
	return out, nil
}

// coerceScalarLiteral coerces a scalar literal. Custom scalars get the
// literal as a JSON-like value.
func coerceScalarLiteral(name string, v *ast.Value, vars map[string]any) (any, error) {
	switch name {
	case "Int":
		if v.Kind == ast.IntValue {
			if n, err := strconv.ParseInt(v.Raw, 10, 32); err == nil {
				return n, nil
			}
		}
		return nil, fmt.Errorf("Int cannot represent non 32-bit signed integer value: %s", v.String())
	case "Float":
		if v.Kind == ast.IntValue || v.Kind == ast.FloatValue {
			return strconv.ParseFloat(v.Raw, 64)
		}
	case "String":
		if v.Kind == ast.StringValue || v.Kind == ast.BlockValue {
			return v.Raw, nil
		}
	case "Boolean":
		if v.Kind == ast.BooleanValue {
			return v.Raw == "true", nil
		}
	case "ID":
		if v.Kind == ast.StringValue || v.Kind == ast.IntValue {
			return v.Raw, nil
		}
	default:
		return literalJSON(v, vars)
	}
	return nil, fmt.Errorf("%s cannot represent value: %s", name, v.String())
}

// literalJSON converts any literal to a JSON-like value (for custom scalars).
func literalJSON(v *ast.Value, vars map[string]any) (any, error) {
	switch v.Kind {
	case ast.Variable:
		return vars[v.Raw], nil
	case ast.IntValue:
		return strconv.ParseInt(v.Raw, 10, 64)
	case ast.FloatValue:
		return strconv.ParseFloat(v.Raw, 64)
	case ast.BooleanValue:
		return v.Raw == "true", nil
	case ast.NullValue:
		return nil, nil
	case ast.ListValue:
		out := make([]any, len(v.Children))
		for i, ch := range v.Children {
			c, err := literalJSON(ch.Value, vars)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case ast.ObjectValue:
		out := make(map[string]any, len(v.Children))
		for _, ch := range v.Children {
			c, err := literalJSON(ch.Value, vars)
			if err != nil {
				return nil, err
			}
			out[ch.Name] = c
		}
		return out, nil
	default: // string, block string, enum
		return v.Raw, nil
	}
}
