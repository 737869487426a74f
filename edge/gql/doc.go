// Package gql is a small, schema-agnostic GraphQL executor on top of
// github.com/vektah/gqlparser/v2.
//
// A Schema pairs SDL with resolvers keyed "Type.field". Execute runs queries
// and mutations, Subscribe runs subscriptions, and Handler serves GraphQL over
// HTTP. The pipeline is the spec's: parse (token limit) → validate (gqlparser
// rules plus depth, alias and introspection rules; cached per document) →
// select the operation → coerce variables → collect fields → resolve
// (concurrently where a resolver is not the cheap default) → complete values
// with null propagation → write ordered JSON.
//
// Resolved Go values complete as follows: nil (or a nil pointer, map or
// interface) is null; a nil slice for a list type is an empty list, never
// null — a resolver that means null returns an untyped nil; a leaf value
// behind pointers is serialised as the value it points to (*string is a
// String); an object may be a map[string]any or a struct (or a pointer to
// one) whose fields are read by their JSON names. A value its scalar cannot
// represent is a field error: deploy/systemtest's schema contract test
// selects every field of the real schema so such a mismatch is caught there.
//
// The package knows nothing about workflows or NATS.
package gql
