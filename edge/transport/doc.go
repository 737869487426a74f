// Package transport serves GraphQL subscriptions (and single-result
// operations) over streaming transports on top of the edge/gql executor:
//
//   - WebSocket speaks the graphql-transport-ws protocol of graphql-ws
//     (github.com/enisdenjo/graphql-ws, PROTOCOL.md).
//   - SSE speaks GraphQL over Server-Sent Events in the "distinct
//     connections" mode of graphql-sse: one request, one event stream.
//
// Both run each operation with gql.Schema.Subscribe under its own context,
// cancelled when the client completes the operation, disconnects or is
// dropped, so the source stream (a NATS subscription or JetStream consumer)
// is cleaned up. Memory per connection is bounded: each operation has an
// outbound buffer of Options.SendBuffer messages, and a client that lets it
// fill up is disconnected instead of slowing its sources or other clients.
//
// IsWebSocket and IsSSE tell the requests apart so all transports can share
// one path; Dispatch does that routing.
package transport
