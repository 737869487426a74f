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
		Description: "Workflow events: history, replay, statistics, analytics, health and durable subscriptions",
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
		{Name: "analytics", Subject: subjects.EventAnalytics, Handler: rpc.Endpoint(srv, s.analytics),
			Description: "A workflow's analytics: tokens per place, time in place (average, p50, p95), transitions and completions per period, throughput over a window; folded incrementally from its events, exactly once",
			Request:     `{workflowId, window?: "1h"|"24h"|"7d"… (default 24h, at most 30d)}`,
			Response:    `{workflowId, totalTokens, liveTokens, tokensPerPlace, averageTransitionTime, transitions, places, completion, throughput, periods, events, lastSequence, coversHistory, since}`},
		{Name: "workflowhealth", Subject: subjects.EventWorkflowHealth, Handler: rpc.Endpoint(srv, s.workflowHealth),
			Description: "A workflow's stream, event subscriptions and their lag, events per minute, and the token service's error rate and work time",
			Request:     `{workflowId}`,
			Response:    `{workflowId, streamName, messageCount, bytes, firstSequence, lastSequence, consumers, leader, replicas, inSync, consumerLag, subscriptions, throughputPerMinute, errorRate, avgProcessingTime, serviceRequests, serviceInstances}`},
		{Name: "systemhealth", Subject: subjects.EventSystemHealth, Handler: rpc.Endpoint(srv, s.systemHealth),
			Description: "JetStream and the servers as this account sees them ($JS.API.INFO, stream list, $SYS.REQ.ACCOUNT.PING.STATZ); every tenant's scope only",
			Request:     `{}`,
			Response:    `{connectedServers, servers, totalStreams, totalConsumers, totalMessages, totalBytes, systemResources, clusterStatus, apiRequests, apiErrors}`},
		{Name: "performance", Subject: subjects.EventPerformance, Handler: rpc.Endpoint(srv, s.performance),
			Description: "Messages and bytes per second, request latency p50/p95/p99 and error rate of every service instance, connections, per-stream rates, over a recent time range sampled by this instance; every tenant's scope only",
			Request:     `{timeRange?: "5m"|"1h" (default and at most 1h)}`,
			Response:    `{timeRange, measuredSeconds, messagesPerSecond, bytesPerSecond, messagesOutPerSecond, bytesOutPerSecond, avgLatency, p50Latency, p95Latency, p99Latency, requests, errorRate, connectionCount, streamMetrics, since}`},
		{Name: "unsubscribe", Subject: subjects.EventUnsubscribe, Handler: rpc.Endpoint(srv, s.unsubscribe),
			Description: "Delete a durable subscription", Request: `{workflowId, name}`, Response: `{workflowId, name}`},
	}, srv)
}
