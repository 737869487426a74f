package api

import (
	"context"
	"time"

	"github.com/cbnats/circuitbreaker/edge/gql"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// analyticsResolvers are the root fields of the analytics and health queries.
func (a *API) analyticsResolvers() gql.Resolvers {
	return gql.Resolvers{
		"Query.workflowAnalytics":      a.workflowAnalytics,
		"Query.workflowHealth":         a.workflowHealth,
		"Query.natsSystemHealth":       a.natsSystemHealth,
		"Query.natsPerformanceMetrics": a.natsPerformanceMetrics,
	}
}

func (a *API) workflowAnalytics(ctx context.Context, p gql.Params) (any, error) {
	an, err := a.client(ctx).Analytics(ctx, &wire.AnalyticsRequest{WorkflowID: str(p.Args, "workflowId"), Window: str(p.Args, "window")})
	if err != nil {
		return nil, err
	}
	places := make([]any, len(an.TokensPerPlace))
	for i, pc := range an.TokensPerPlace {
		places[i] = map[string]any{"place": pc.Place, "count": pc.Count}
	}
	times := make([]any, len(an.Places))
	for i, pt := range an.Places {
		m := durations(pt.Stay)
		delete(m, "count")
		m["place"], m["tokens"], m["entered"], m["stays"] = pt.Place, pt.Tokens, pt.Entered, pt.Stay.Count
		times[i] = m
	}
	periods := make([]any, len(an.Periods))
	for i, pd := range an.Periods {
		periods[i] = map[string]any{"start": pd.Start.Format(time.RFC3339), "seconds": pd.Seconds, "events": pd.Events,
			"tokensCreated": pd.TokensCreated, "transitions": pd.Transitions, "tokensCompleted": pd.TokensCompleted,
			"averageCompletionSeconds": pd.AverageCompletion}
	}
	tp := an.Throughput
	out := map[string]any{
		"workflowId": an.WorkflowID, "totalTokens": an.TotalTokens, "liveTokens": an.LiveTokens,
		"tokensPerPlace": places, "averageTransitionTime": an.AverageTransitionTime, "transitions": an.Transitions,
		"timeInPlace": times, "completion": durations(an.Completion),
		"throughput": map[string]any{"period": tp.Period, "windowSeconds": tp.WindowSeconds, "tokensCreated": tp.TokensCreated,
			"transitions": tp.Transitions, "tokensCompleted": tp.TokensCompleted, "averageProcessingTime": tp.AverageProcessingTime,
			"averageProcessingSeconds": tp.AverageProcessingSecs, "transitionsPerMinute": tp.TransitionsPerMinute},
		"periods": periods, "events": an.Events, "lastSequence": seq(an.LastSequence), "coversHistory": an.CoversHistory,
		"since": nil,
	}
	if !an.Since.IsZero() {
		out["since"] = an.Since.UTC().Format(time.RFC3339Nano)
	}
	return out, nil
}

func durations(d wire.DurationStats) map[string]any {
	m := map[string]any{"count": d.Count, "averageSeconds": d.Average, "p50Seconds": nil, "p95Seconds": nil}
	if d.P50 != nil {
		m["p50Seconds"] = *d.P50
	}
	if d.P95 != nil {
		m["p95Seconds"] = *d.P95
	}
	return m
}

func (a *API) workflowHealth(ctx context.Context, p gql.Params) (any, error) {
	h, err := a.client(ctx).WorkflowHealth(ctx, str(p.Args, "workflowId"))
	if err != nil {
		return nil, err
	}
	subs := make([]any, len(h.Subscriptions))
	for i := range h.Subscriptions {
		subs[i] = subscription(&h.Subscriptions[i])
	}
	return map[string]any{
		"workflowId": h.WorkflowID, "streamName": h.StreamName, "messageCount": int64(h.MessageCount), "bytes": float64(h.Bytes),
		"firstSequence": seq(h.FirstSequence), "lastSequence": seq(h.LastSequence), "consumers": int64(h.Consumers),
		"leader": optional(h.Leader), "replicas": int64(h.Replicas), "inSync": h.InSync, "consumerLag": int64(h.ConsumerLag),
		"subscriptions": subs, "throughputPerMinute": h.ThroughputPerMinute, "errorRate": h.ErrorRate,
		"avgProcessingTime": h.AvgProcessingTime, "serviceRequests": h.ServiceRequests, "serviceInstances": int64(h.ServiceInstances),
	}, nil
}

func (a *API) natsSystemHealth(ctx context.Context, _ gql.Params) (any, error) {
	h, err := a.client(ctx).SystemHealth(ctx)
	if err != nil {
		return nil, err
	}
	servers := make([]any, len(h.Servers))
	for i, s := range h.Servers {
		servers[i] = map[string]any{"name": s.Name, "connections": int64(s.Connections), "subscriptions": int64(s.Subscriptions),
			"messagesReceived": float64(s.MessagesReceived), "bytesReceived": float64(s.BytesReceived),
			"messagesSent": float64(s.MessagesSent), "bytesSent": float64(s.BytesSent), "slowConsumers": s.SlowConsumers}
	}
	r, c := h.SystemResources, h.ClusterStatus
	return map[string]any{
		"connectedServers": int64(h.ConnectedServers), "servers": servers, "totalStreams": int64(h.TotalStreams),
		"totalConsumers": int64(h.TotalConsumers), "totalMessages": float64(h.TotalMessages), "totalBytes": float64(h.TotalBytes),
		"systemResources": map[string]any{"memoryUsage": float64(r.MemoryUsage), "diskUsage": float64(r.DiskUsage),
			"memoryLimit": float64(r.MemoryLimit), "diskLimit": float64(r.DiskLimit)},
		"clusterStatus": map[string]any{"name": c.Name, "leader": c.Leader, "replicas": int64(c.Replicas), "inSync": c.InSync,
			"laggingReplicas": int64(c.LaggingReplicas), "leaderlessStreams": int64(c.Leaderless)},
		"apiRequests": float64(h.APIRequests), "apiErrors": float64(h.APIErrors),
	}, nil
}

func (a *API) natsPerformanceMetrics(ctx context.Context, p gql.Params) (any, error) {
	m, err := a.client(ctx).Performance(ctx, &wire.PerformanceRequest{TimeRange: str(p.Args, "timeRange")})
	if err != nil {
		return nil, err
	}
	streams := make([]any, len(m.StreamMetrics))
	for i, s := range m.StreamMetrics {
		streams[i] = map[string]any{"streamName": s.StreamName, "messageCount": int64(s.MessageCount), "bytes": float64(s.Bytes),
			"messageRate": s.MessageRate, "consumerCount": int64(s.ConsumerCount)}
	}
	return map[string]any{
		"timeRange": m.TimeRange, "measuredSeconds": m.MeasuredSeconds, "messagesPerSecond": m.MessagesPerSecond,
		"bytesPerSecond": m.BytesPerSecond, "messagesOutPerSecond": m.MessagesOutPerSec, "bytesOutPerSecond": m.BytesOutPerSecond,
		"avgLatency": m.AvgLatency, "p50Latency": m.P50Latency, "p95Latency": m.P95Latency, "p99Latency": m.P99Latency,
		"requests": m.Requests, "errorRate": m.ErrorRate, "connectionCount": int64(m.ConnectionCount), "streamMetrics": streams,
		"since": m.Since.UTC().Format(time.RFC3339Nano),
	}, nil
}
