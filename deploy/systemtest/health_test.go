package systemtest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestHealthMatchesJetStream: the health fields equal what the JetStream
// API calls behind natscli's commands report for the same server, made
// here with the Go client ($JS.API.INFO for `nats account info`, the
// stream infos for `nats stream info|report`, the consumer info for `nats
// consumer info`, $SRV.STATS for `nats micro stats`), and the servers'
// STATZ; a tenant is refused. TestHealthMatchesNatsCLI compares the same
// fields with natscli itself; this test needs no natscli, so it runs where
// natscli cannot be built. Nothing changes between the two reads: the
// test is the only client.
func TestHealthMatchesJetStream(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, analyticsFlow("health_flow"))).ID
	testkit.Must(s.c.CreateSubscription(c, &wire.SubscribeRequest{WorkflowID: wf, Name: "billing", Deliver: wire.DeliverAll}))
	for range 5 {
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf}))
		testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "triage"}))
	}
	js := s.stackJS()

	h := testkit.Must(s.c.SystemHealth(c))
	ai := testkit.Must(js.AccountInfo(c))
	var msgs, bytes uint64
	streams := map[string]*jetstream.StreamInfo{}
	l := js.ListStreams(c)
	for in := range l.Info() {
		msgs, bytes = msgs+in.State.Msgs, bytes+in.State.Bytes
		streams[in.Config.Name] = in
	}
	testkit.Must(0, l.Err())
	if h.TotalStreams != ai.Streams || h.TotalConsumers != ai.Consumers || h.TotalMessages != msgs || h.TotalBytes != bytes ||
		h.SystemResources.DiskUsage != ai.Store || h.SystemResources.MemoryUsage != ai.Memory ||
		h.SystemResources.DiskLimit != ai.Limits.MaxStore || h.APIErrors != ai.API.Errors || h.APIRequests > ai.API.Total {
		t.Errorf("system health %+v, JetStream account info %+v (%d messages, %d bytes)", h, ai, msgs, bytes)
	}
	if h.ConnectedServers != 1 || len(h.Servers) != 1 || h.Servers[0].Name != s.nc.ConnectedServerName() || h.Servers[0].Connections < 5 ||
		h.Servers[0].MessagesReceived == 0 {
		t.Errorf("servers: %d %+v", h.ConnectedServers, h.Servers)
	}
	// A single server may report no cluster for its streams: it leads them.
	if cs := h.ClusterStatus; cs.Leader != s.nc.ConnectedServerName() || !cs.InSync || cs.Replicas != 1 || cs.LaggingReplicas != 0 || cs.Name != "" {
		t.Errorf("cluster status %+v", cs)
	}

	wh := testkit.Must(s.c.WorkflowHealth(c, wf))
	si := testkit.Must(testkit.Must(js.Stream(c, "WORKFLOW_"+wf)).Info(c))
	ci := testkit.Must(testkit.Must(js.Consumer(c, "WORKFLOW_"+wf, "sub_billing")).Info(c))
	if wh.StreamName != si.Config.Name || wh.MessageCount != si.State.Msgs || wh.Bytes != si.State.Bytes ||
		wh.LastSequence != si.State.LastSeq || wh.FirstSequence != si.State.FirstSeq || wh.Consumers != si.State.Consumers ||
		wh.Leader != s.nc.ConnectedServerName() || (si.Cluster != nil && si.Cluster.Leader != wh.Leader) || !wh.InSync {
		t.Errorf("workflow health %+v, stream info %+v %+v", wh, si.State, si.Cluster)
	}
	if wh.ConsumerLag != ci.NumPending || ci.NumPending != 11 || len(wh.Subscriptions) != 1 || wh.Subscriptions[0].Pending != ci.NumPending {
		t.Errorf("consumer lag %d (%+v), consumer info pending %d", wh.ConsumerLag, wh.Subscriptions, ci.NumPending)
	}
	// 11 events (created, 5 × created and transitioned) in the last minutes.
	if wh.ThroughputPerMinute != 11.0/15 {
		t.Errorf("throughput %v per minute, want %v", wh.ThroughputPerMinute, 11.0/15)
	}
	// The token service's own counts (micro STATS of every instance).
	var want, errs int64
	for _, m := range gatherStats(t, s, "token") {
		for _, e := range m.Endpoints {
			if e.Name == "create" || e.Name == "fire" || e.Name == "update" {
				want, errs = want+e.Data.Requests, errs+e.Data.Errors
			}
		}
	}
	if wh.ServiceRequests != want || want < 10 || wh.ServiceInstances != 2 || wh.ErrorRate != float64(errs)/float64(want) || wh.AvgProcessingTime <= 0 {
		t.Errorf("token service: %d requests over %d instances, error rate %v, %v ms; STATS say %d requests, %d errors",
			wh.ServiceRequests, wh.ServiceInstances, wh.ErrorRate, wh.AvgProcessingTime, want, errs)
	}

	// Performance: the requests between two calls are counted.
	first := testkit.Must(s.c.Performance(c, &wire.PerformanceRequest{TimeRange: "5m"}))
	for range 20 {
		testkit.Must(s.c.GetWorkflow(c, wf))
	}
	_, _ = s.c.GetWorkflow(c, "absent") // an error
	p := testkit.Must(s.c.Performance(c, &wire.PerformanceRequest{TimeRange: "5m"}))
	if p.MeasuredSeconds <= 0 || p.Requests < first.Requests+21 || p.ErrorRate <= 0 || p.MessagesPerSecond <= 0 || p.BytesPerSecond <= 0 ||
		p.ConnectionCount < 5 || p.P50Latency <= 0 || p.P99Latency < p.P50Latency || p.AvgLatency <= 0 || p.TimeRange != "5m" {
		t.Errorf("performance %+v after %+v", p, first)
	}
	found := false
	for _, m := range p.StreamMetrics {
		if m.StreamName == "WORKFLOW_"+wf {
			found = m.MessageCount == si.State.Msgs && m.ConsumerCount == si.State.Consumers
		}
	}
	if !found || len(p.StreamMetrics) != len(streams) {
		t.Errorf("stream metrics %+v", p.StreamMetrics)
	}

	// Tenants see neither: they show every tenant's streams.
	acme := s.c.As("acme")
	if _, err := acme.SystemHealth(c); !errors.Is(err, fail.ErrForbidden) {
		t.Errorf("a tenant's system health: %v", err)
	}
	if _, err := acme.Performance(c, &wire.PerformanceRequest{}); !errors.Is(err, fail.ErrForbidden) {
		t.Errorf("a tenant's performance metrics: %v", err)
	}
	if _, err := acme.WorkflowHealth(c, wf); !errors.Is(err, fail.ErrNotFound) {
		t.Errorf("another tenant's workflow health: %v", err)
	}
	if _, err := s.c.Performance(c, &wire.PerformanceRequest{TimeRange: "2h"}); !errors.Is(err, fail.ErrBadInput) {
		t.Errorf("a 2h range: %v", err)
	}
}

type statsMsg struct {
	ID        string `json:"id"`
	Endpoints []struct {
		Name string `json:"name"`
		Data struct {
			Requests int64 `json:"requests"`
			Errors   int64 `json:"errors"`
		} `json:"data"`
	} `json:"endpoints"`
}

// gatherStats collects $SRV.STATS.<service> from every instance, as
// `nats micro stats` does.
func gatherStats(t *testing.T, s *system, service string) []statsMsg {
	t.Helper()
	inbox := s.nc.NewInbox()
	sub := testkit.Must(s.nc.SubscribeSync(inbox))
	defer func() { _ = sub.Unsubscribe() }()
	testkit.Must(0, s.nc.PublishRequest("$SRV.STATS."+service, inbox, nil))
	var out []statsMsg
	for {
		m, err := sub.NextMsg(300 * time.Millisecond)
		if err != nil {
			return out
		}
		var r statsMsg
		testkit.Must(0, json.Unmarshal(m.Data, &r))
		out = append(out, r)
	}
}
