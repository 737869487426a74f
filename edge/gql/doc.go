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
// The package knows nothing about workflows or NATS.
package gql
