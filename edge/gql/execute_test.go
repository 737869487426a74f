package gql_test

import (
	"testing"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

func TestExecuteGolden(t *testing.T) {
	runGolden(t, []goldenCase{
		{name: "leaves", query: `{ items(first: 3) { id name color price count tags createdAt meta } }`},
		{name: "aliases", query: `{ a: item(id: 1) { n: name id } b: item(id: "2") { name } missing: item(id: "9") { name } }`},
		{name: "fragments", query: `query Q { node(id: "1") { ...NodeF ... on Item { name ...ItemF } } search(text: "x") { __typename ... on Node { id } ... on User { login } ...ItemF } }
			fragment NodeF on Node { __typename id }
			fragment ItemF on Item { color }`},
		{name: "skip_include", vars: `{"yes": true, "no": false}`, query: `query ($yes: Boolean!, $no: Boolean!) {
			item(id: 1) { a: name @include(if: $yes) b: name @include(if: $no) c: name @skip(if: $yes) d: name @skip(if: false)
			... on Item @skip(if: $yes) { color } ...F @include(if: $yes) } }
			fragment F on Item { count }`},
		{name: "typename", query: `{ __typename items { __typename owner { __typename } } node(id: "u1") { __typename } }`},
		{name: "field_errors", query: `{ item(id: 1) { name failing panicking } }`},
		{name: "null_propagation_object", query: `{ item(id: 1) { name failingNonNull } items { id } }`},
		{name: "null_propagation_root", query: `{ items { id } broken { id } }`},
		{name: "null_propagation_list", query: `{ items { id failingNonNull } }`},
		{name: "list_paths", query: `{ list: items(first: 3) { id failing } }`},
		{name: "leaf_error", query: `{ badInt }`},
		{name: "memo_owner", query: `{ items(first: 3) { id owner { login items { id } } } }`},
		{name: "mutation_serial", query: `mutation { a: increment b: increment(by: 10) c: increment add: addItem(name: "x") { id name color } __typename }`},
		{name: "operation_by_name", op: "Two", query: `query One { __typename } query Two { items(first: 1) { id } }`},
		{name: "operation_ambiguous", query: `query One { __typename } query Two { __typename }`},
		{name: "operation_unknown", op: "Three", query: `query One { __typename }`},
		{name: "parse_error", query: `{ items { id `},
		{name: "validation_error", query: `{ nope items { id bogus } }`},
		{name: "subscription_via_execute", query: `subscription { ticks(count: 1) }`},
		{name: "defer_rejected", query: `{ ... @defer { items { id } } }`},
	})
}

func TestCoercionGolden(t *testing.T) {
	const echoVars = `query ($v: JSON, $c: Color, $w: DateTime, $n: Int, $f: Float, $s: String, $b: Boolean, $id: ID, $filter: ItemFilter, $list: [Int]) {
		echo(value: $v, color: $c, when: $w, n: $n, f: $f, s: $s, b: $b, id: $id, filter: $filter, list: $list) }`
	runGolden(t, []goldenCase{
		{name: "vars_all", query: echoVars, vars: `{"v": {"z": [1, 2.5, "x"], "a": null}, "c": "GREEN", "w": "2026-01-02T03:04:05Z", "n": 7, "f": 3, "s": "hé", "b": true, "id": 42, "filter": {"names": ["a"], "page": {}}, "list": 5}`},
		{name: "vars_defaults", query: `query ($filter: ItemFilter = {color: BLUE}, $n: Int = 3) { echo(filter: $filter, n: $n) }`},
		{name: "vars_absent", query: echoVars, vars: `{}`},
		{name: "literal_defaults", query: `{ echo(filter: {names: "solo", page: {after: "c"}}, list: [1, null, 3], id: 12, f: 1, value: {k: [1, "two", RED, null]}) items { id } }`},
		{name: "var_enum_case", query: `query ($c: Color) { echo(color: $c) }`, vars: `{"c": "green"}`},
		{name: "var_enum_type", query: `query ($c: Color) { echo(color: $c) }`, vars: `{"c": 1}`},
		{name: "var_required_missing", query: `query ($id: ID!) { item(id: $id) { id } }`, vars: `{}`},
		{name: "var_required_null", query: `query ($id: ID!) { item(id: $id) { id } }`, vars: `{"id": null}`},
		{name: "var_int_fraction", query: `query ($n: Int) { echo(n: $n) }`, vars: `{"n": 3.5}`},
		{name: "var_int_range", query: `query ($n: Int) { echo(n: $n) }`, vars: `{"n": 3000000000}`},
		{name: "var_int_string", query: `query ($n: Int) { echo(n: $n) }`, vars: `{"n": "3"}`},
		{name: "var_unknown_input_field", query: `query ($f: ItemFilter) { echo(filter: $f) }`, vars: `{"f": {"colour": "RED"}}`},
		{name: "var_nested_error", query: `query ($f: ItemFilter) { echo(filter: $f) }`, vars: `{"f": {"names": ["a", null]}}`},
		{name: "var_oneof_two_keys", query: `query ($by: Lookup!) { user(by: $by) { id } }`, vars: `{"by": {"id": "u1", "login": "ann"}}`},
		{name: "var_oneof_null", query: `query ($by: Lookup!) { user(by: $by) { id } }`, vars: `{"by": {"id": null}}`},
		{name: "var_oneof_ok", query: `query ($by: Lookup!) { user(by: $by) { id login } }`, vars: `{"by": {"login": "bob"}}`},
		{name: "literal_oneof", query: `{ user(by: {id: "u1"}) { login } }`},
		{name: "literal_oneof_two_keys", query: `{ user(by: {id: "u1", login: "x"}) { login } }`},
		{name: "var_many_errors", query: `query ($a: Int!, $b: String!, $c: Color) { echo(n: $a, s: $b, color: $c) }`, vars: `{"c": "PINK"}`},
	})
}

func TestLimitsGolden(t *testing.T) {
	runGolden(t, []goldenCase{
		{name: "limit_depth", limits: gql.Limits{MaxDepth: 3}, query: `{ items { owner { items { id } } } }`},
		{name: "limit_depth_fragment", limits: gql.Limits{MaxDepth: 2}, query: `{ items { ...F } } fragment F on Item { owner { id } }`},
		{name: "limit_depth_ok", limits: gql.Limits{MaxDepth: 3}, query: `{ items { owner { id } } __type(name: "User") { fields { type { ofType { ofType { name } } } } } }`},
		{name: "limit_aliases", limits: gql.Limits{MaxAliases: 2}, query: `{ a: __typename b: __typename c: __typename }`},
		{name: "limit_tokens", limits: gql.Limits{MaxTokens: 5}, query: `{ items { id name } }`},
		{name: "introspection_disabled", limits: gql.Limits{DisableIntrospection: true}, query: `{ __typename __schema { queryType { name } } }`},
	})
}

func TestIntrospectionGolden(t *testing.T) {
	runGolden(t, []goldenCase{
		{name: "introspection_type", query: `{ __type(name: "Item") { kind name description interfaces { name } possibleTypes { name }
			fields(includeDeprecated: true) { name isDeprecated deprecationReason args { name } type { kind name ofType { kind name ofType { kind name ofType { name } } } } } } }`},
		{name: "introspection_unknown_type", query: `{ __type(name: "Run🏃Swim🏊") { name } }`},
		{name: "introspection_enum", query: `{ a: __type(name: "Color") { enumValues { name } } b: __type(name: "Color") { enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } } }`},
		{name: "introspection_input", query: `{ f: __type(name: "ItemFilter") { isOneOf inputFields { name defaultValue } all: inputFields(includeDeprecated: true) { name isDeprecated } }
			l: __type(name: "Lookup") { isOneOf } i: __type(name: "Item") { isOneOf } d: __type(name: "DateTime") { kind specifiedByURL }
			u: __type(name: "SearchResult") { kind possibleTypes { name } } n: __type(name: "Node") { kind possibleTypes { name } interfaces { name } } }`},
		{name: "introspection_schema", query: `{ __schema { description queryType { name } mutationType { name } subscriptionType { name }
			directives { name description isRepeatable locations args { name type { name } defaultValue } } } }`},
		{name: "introspection_echo_args", query: `{ __type(name: "Query") { fields { name args { name } all: args(includeDeprecated: true) { name isDeprecated deprecationReason } } } }`},
	})
}
