package gql

import (
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// introTypeField resolves __Type fields.
func (s *Schema) introTypeField(t *introType, field string, withDeprecated bool) any {
	if t.def == nil {
		return s.wrapperField(t.t, field)
	}
	d := t.def
	switch field {
	case "kind":
		return string(d.Kind)
	case "name":
		return d.Name
	case "description":
		return nilIfEmpty(d.Description)
	case "specifiedByURL":
		return specifiedBy(d)
	case "fields":
		return s.typeFields(d, withDeprecated)
	case "interfaces":
		return s.interfaces(d)
	case "possibleTypes":
		return s.possibleTypes(d)
	case "enumValues":
		return enumValues(d, withDeprecated)
	case "inputFields":
		return inputFields(d, withDeprecated)
	case "isOneOf":
		if d.Kind != ast.InputObject {
			return nil
		}
		return d.Directives.ForName("oneOf") != nil
	}
	return nil
}

// wrapperField resolves __Type fields of a LIST or NON_NULL wrapper.
func (s *Schema) wrapperField(t *ast.Type, field string) any {
	switch field {
	case "kind":
		if t.NonNull {
			return "NON_NULL"
		}
		return "LIST"
	case "ofType":
		if t.NonNull {
			inner := *t
			inner.NonNull = false
			return typeRef(s.schema, &inner)
		}
		return typeRef(s.schema, t.Elem)
	}
	return nil
}

// specifiedBy returns a scalar's @specifiedBy url, or nil.
func specifiedBy(d *ast.Definition) any {
	if d.Kind != ast.Scalar {
		return nil
	}
	if dir := d.Directives.ForName("specifiedBy"); dir != nil {
		if a := dir.Arguments.ForName("url"); a != nil {
			return a.Value.Raw
		}
	}
	return nil
}

// typeFields lists an object's or interface's fields, without the
// introspection meta-fields.
func (s *Schema) typeFields(d *ast.Definition, withDeprecated bool) any {
	if d.Kind != ast.Object && d.Kind != ast.Interface {
		return nil
	}
	out := []*ast.FieldDefinition{}
	for _, f := range d.Fields {
		if strings.HasPrefix(f.Name, "__") {
			continue
		}
		if dep, _ := deprecation(f.Directives); dep && !withDeprecated {
			continue
		}
		out = append(out, f)
	}
	return out
}

// interfaces lists the interfaces an object or interface implements.
func (s *Schema) interfaces(d *ast.Definition) any {
	if d.Kind != ast.Object && d.Kind != ast.Interface {
		return nil
	}
	out := []*introType{}
	for _, name := range d.Interfaces {
		out = append(out, &introType{def: s.schema.Types[name]})
	}
	return out
}

// possibleTypes lists the object types of an interface or union.
func (s *Schema) possibleTypes(d *ast.Definition) any {
	if !d.IsAbstractType() {
		return nil
	}
	out := []*introType{}
	for _, pt := range s.schema.PossibleTypes[d.Name] {
		out = append(out, &introType{def: pt})
	}
	return out
}

// enumValues lists an enum's values.
func enumValues(d *ast.Definition, withDeprecated bool) any {
	if d.Kind != ast.Enum {
		return nil
	}
	out := []*ast.EnumValueDefinition{}
	for _, v := range d.EnumValues {
		if dep, _ := deprecation(v.Directives); dep && !withDeprecated {
			continue
		}
		out = append(out, v)
	}
	return out
}

// inputFields lists an input object's fields.
func inputFields(d *ast.Definition, withDeprecated bool) any {
	if d.Kind != ast.InputObject {
		return nil
	}
	out := []*introInput{}
	for _, f := range d.Fields {
		if dep, _ := deprecation(f.Directives); dep && !withDeprecated {
			continue
		}
		out = append(out, &introInput{f.Name, f.Description, f.Type, f.DefaultValue, f.Directives})
	}
	return out
}

// argInputs converts argument definitions to __InputValues.
func argInputs(args ast.ArgumentDefinitionList, withDeprecated bool) []*introInput {
	out := []*introInput{}
	for _, a := range args {
		if dep, _ := deprecation(a.Directives); dep && !withDeprecated {
			continue
		}
		out = append(out, &introInput{a.Name, a.Description, a.Type, a.DefaultValue, a.Directives})
	}
	return out
}

// introField resolves __Field fields.
func (s *Schema) introField(f *ast.FieldDefinition, field string, withDeprecated bool) any {
	switch field {
	case "name":
		return f.Name
	case "description":
		return nilIfEmpty(f.Description)
	case "args":
		return argInputs(f.Arguments, withDeprecated)
	case "type":
		return typeRef(s.schema, f.Type)
	case "isDeprecated":
		dep, _ := deprecation(f.Directives)
		return dep
	case "deprecationReason":
		_, reason := deprecation(f.Directives)
		return reason
	}
	return nil
}

// introInputField resolves __InputValue fields.
func (s *Schema) introInputField(in *introInput, field string) any {
	switch field {
	case "name":
		return in.name
	case "description":
		return nilIfEmpty(in.desc)
	case "type":
		return typeRef(s.schema, in.typ)
	case "defaultValue":
		if in.defVal == nil {
			return nil
		}
		return in.defVal.String()
	case "isDeprecated":
		dep, _ := deprecation(in.dirs)
		return dep
	case "deprecationReason":
		_, reason := deprecation(in.dirs)
		return reason
	}
	return nil
}

// introEnumValue resolves __EnumValue fields.
func introEnumValue(v *ast.EnumValueDefinition, field string) any {
	switch field {
	case "name":
		return v.Name
	case "description":
		return nilIfEmpty(v.Description)
	case "isDeprecated":
		dep, _ := deprecation(v.Directives)
		return dep
	case "deprecationReason":
		_, reason := deprecation(v.Directives)
		return reason
	}
	return nil
}

// introDirective resolves __Directive fields.
func (s *Schema) introDirective(d *ast.DirectiveDefinition, field string, withDeprecated bool) any {
	switch field {
	case "name":
		return d.Name
	case "description":
		return nilIfEmpty(d.Description)
	case "isRepeatable":
		return d.IsRepeatable
	case "locations":
		out := make([]string, len(d.Locations))
		for i, l := range d.Locations {
			out[i] = string(l)
		}
		return out
	case "args":
		return argInputs(d.Arguments, withDeprecated)
	}
	return nil
}
