package event

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Version is the event service's semantic version.
const Version = "0.1.0"

const (
	historyRequest = `{workflowId, tokenId?, eventTypes?: [type], afterSequence?, since?: RFC 3339, until?: RFC 3339, first?: int (≤1000)}`
	eventPage      = `{items: [{sequence, subject, time, event: {event_type, workflow_id, token_id?, place?, from_place?, to_place?, transition_id?, timestamp, triggered_by, nats_sequence, revision?}}], next?: afterSequence}`
	subscription   = `{workflowId, name, stream, consumer, filter, maxDeliver, pending, ackPending, redelivered, ackFloor}`
)

// Start registers the event service's endpoints on nc; requests run on srv.
func (s *Service) Start(nc *nats.Conn, srv *rpc.Server) (micro.Service, error) {
	return rpc.AddService(nc, rpc.Service{
		Name:        subjects.EventService,
		Version:     Version,
		Description: "Workflow events: history, replay, statistics and durable subscriptions",
	}, []rpc.Spec{
		{Name: "history", Subject: subjects.EventHistory, Handler: rpc.Endpoint(srv, s.history),
			Description: "A workflow's (or one token's) events in stream order, paginated by sequence, filtered by type and time",
			Request:     historyRequest, Response: eventPage},
		{Name: "replay", Subject: subjects.EventReplay, Handler: rpc.Endpoint(srv, s.replay),
			Description: "Events from a sequence or a time on (history with a required start)",
			Request:     historyRequest, Response: eventPage},
		{Name: "stats", Subject: subjects.EventStats, Handler: rpc.Endpoint(srv, s.stats),
			Description: "Tokens per place, events per type, transitions per minute over a recent window",
			Request:     `{workflowId, windowMinutes?: int (default 60)}`,
			Response:    `{workflowId, tokens, tokensPerPlace, events, eventsPerType, windowMinutes, transitionsInWindow, transitionsPerMinute}`},
		{Name: "subscribe", Subject: subjects.EventSubscribe, Handler: rpc.Endpoint(srv, s.subscribe),
			Description: "Create (or find) a named durable subscription to a workflow's events; consume it with JetStream, explicit ack. At most --event-max-subscriptions (default 100) per workflow: more are refused with code 429, RESOURCE_EXHAUSTED",
			Request:     `{workflowId, name, deliver?: new|all|sequence, startSequence?}`, Response: subscription},
		{Name: "subscriptions", Subject: subjects.EventSubscriptions, Handler: rpc.Endpoint(srv, s.listSubscriptions),
			Description: "A workflow's durable subscriptions and their progress",
			Request:     `{workflowId}`, Response: `{items: [` + subscription + `]}`},
		{Name: "unsubscribe", Subject: subjects.EventUnsubscribe, Handler: rpc.Endpoint(srv, s.unsubscribe),
			Description: "Delete a durable subscription", Request: `{workflowId, name}`, Response: `{workflowId, name}`},
	}, srv)
}
