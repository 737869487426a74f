package event

import (
	"context"
	"encoding/json"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Where every health and performance number comes from (nothing is
// estimated; what the services' NATS user cannot see is left out):
//
//   - JetStream: $JS.API.INFO (jetstream.AccountInfo: streams, consumers,
//     memory and file storage used, limits, API requests and errors) and
//     $JS.API.STREAM.LIST (every stream's state and cluster: messages,
//     bytes, sequences, consumers, leader, replicas current/offline) —
//     the calls `nats account info` and `nats stream report` make.
//   - Servers: $SYS.REQ.ACCOUNT.PING.STATZ, which every server answers
//     for the requesting account (connections, subscriptions, messages
//     and bytes received from and sent to its clients, slow consumers).
//     Server-wide figures (CPU, memory of the process, other accounts,
//     the meta leader) need the system account or the monitoring port and
//     are left out.
//   - Requests: each service instance's micro STATS ($SRV.STATS.<service>,
//     gathered from every instance): requests, errors, work time and its
//     buckets (shared/rpc WorkStats) — the same counts as `nats micro stats`.
//   - Rates: this instance samples the three above every SampleEvery and
//     divides the difference between now and the oldest sample in the
//     range by the time between them (in memory: a restarted instance
//     starts measuring again; each instance measures alone).

// DefaultSampleEvery is how often the performance sampler runs.
const DefaultSampleEvery = 15 * time.Second

// gatherWait bounds how long a request answered by many (servers,
// service instances) waits; gatherQuiet ends it once answers stop.
const (
	gatherWait  = time.Second
	gatherQuiet = 100 * time.Millisecond
)

// gather sends a request that many answer and collects the answers.
func gather(ctx context.Context, nc *nats.Conn, subject string, body []byte) ([]*nats.Msg, error) {
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, body); err != nil {
		return nil, err
	}
	var out []*nats.Msg
	deadline := time.NewTimer(gatherWait)
	defer deadline.Stop()
	quiet := time.NewTimer(gatherWait)
	defer quiet.Stop()
	for {
		select {
		case m := <-ch:
			if m.Header.Get("Status") == "503" { // no responders
				return out, nil
			}
			out = append(out, m)
			quiet.Reset(gatherQuiet)
		case <-quiet.C:
			return out, nil
		case <-deadline.C:
			return out, nil
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
}

// statzReply is a server's answer to $SYS.REQ.ACCOUNT.PING.STATZ.
type statzReply struct {
	Server struct {
		Name    string `json:"name"`
		ID      string `json:"id"`
		Cluster string `json:"cluster"`
	} `json:"server"`
	Data *struct {
		Accounts []struct {
			Conns    int    `json:"conns"`
			NumSubs  uint32 `json:"num_subscriptions"`
			Sent     msgBytes
			Received msgBytes
			Slow     int64 `json:"slow_consumers"`
		} `json:"account_statz"`
	} `json:"data"`
}

type msgBytes struct {
	Msgs  uint64 `json:"msgs"`
	Bytes uint64 `json:"bytes"`
}

// serverStats asks every server for its view of this account; nil when
// no server answers (no system account, or not permitted).
func serverStats(ctx context.Context, nc *nats.Conn) []wire.ServerStat {
	msgs, _ := gather(ctx, nc, "$SYS.REQ.ACCOUNT.PING.STATZ", []byte(`{"include_unused":true}`))
	var out []wire.ServerStat
	for _, m := range msgs {
		var r statzReply
		if json.Unmarshal(m.Data, &r) != nil || r.Data == nil {
			continue
		}
		st := wire.ServerStat{Name: r.Server.Name, Cluster: r.Server.Cluster}
		for _, a := range r.Data.Accounts {
			st.Connections += a.Conns
			st.Subscriptions += a.NumSubs
			st.MessagesReceived += a.Received.Msgs
			st.BytesReceived += a.Received.Bytes
			st.MessagesSent += a.Sent.Msgs
			st.BytesSent += a.Sent.Bytes
			st.SlowConsumers += a.Slow
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// instanceStats is one service instance's micro STATS, summed over the
// endpoints it was asked about.
type instanceStats struct {
	requests, errors, serverErrors, nanos int64
	buckets                               []int64
	bounds                                []float64
}

type statsReply struct {
	ID        string `json:"id"`
	Endpoints []struct {
		Name string        `json:"name"`
		Data rpc.WorkStats `json:"data"`
	} `json:"endpoints"`
}

// serviceStats gathers the STATS of every instance of the services,
// keyed by instance id, summing the endpoints keep allows (nil: all).
func serviceStats(ctx context.Context, nc *nats.Conn, services []string, keep func(endpoint string) bool) map[string]*instanceStats {
	out := map[string]*instanceStats{}
	for _, svc := range services {
		msgs, _ := gather(ctx, nc, "$SRV.STATS."+svc, nil)
		for _, m := range msgs {
			var r statsReply
			if json.Unmarshal(m.Data, &r) != nil || r.ID == "" {
				continue
			}
			is := &instanceStats{}
			for _, e := range r.Endpoints {
				if keep != nil && !keep(e.Name) {
					continue
				}
				d := e.Data
				is.requests += d.Requests
				is.errors += d.Errors
				is.serverErrors += d.ServerErrors
				is.nanos += d.TotalWorkNanos
				if len(d.LatencyBuckets) > 0 {
					if is.buckets == nil {
						is.buckets, is.bounds = make([]int64, len(d.LatencyBuckets)), d.LatencyBounds
					}
					for i := 0; i < len(d.LatencyBuckets) && i < len(is.buckets); i++ {
						is.buckets[i] += d.LatencyBuckets[i]
					}
				}
			}
			out[svc+"/"+r.ID] = is
		}
	}
	return out
}

// sample is one measurement of the cumulative counters.
type sample struct {
	at        time.Time
	servers   map[string]wire.ServerStat // by server name
	instances map[string]*instanceStats  // by service/instance id
	streams   map[string]uint64          // stream → last sequence
}

// sampler keeps this instance's samples of the last MaxTimeRange.
type sampler struct {
	mu      sync.Mutex
	samples []sample
}

func newSampler() *sampler { return &sampler{} }

func (s *Service) takeSample(ctx context.Context) (sample, []*jetstream.StreamInfo, error) {
	nc := s.js.Conn()
	sm := sample{at: s.now(), servers: map[string]wire.ServerStat{}, streams: map[string]uint64{}}
	infos, err := s.streamInfos(ctx)
	if err != nil {
		return sm, nil, err
	}
	for _, in := range infos {
		sm.streams[in.Config.Name] = in.State.LastSeq
	}
	for _, st := range serverStats(ctx, nc) {
		sm.servers[st.Name] = st
	}
	sm.instances = serviceStats(ctx, nc, []string{subjects.WorkflowService, subjects.TokenService, subjects.EventService}, nil)
	return sm, infos, nil
}

func (s *Service) streamInfos(ctx context.Context) ([]*jetstream.StreamInfo, error) {
	var out []*jetstream.StreamInfo
	l := s.js.ListStreams(ctx)
	for in := range l.Info() {
		out = append(out, in)
	}
	if err := l.Err(); err != nil {
		return nil, jserr.Classify(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Config.Name < out[j].Config.Name })
	return out, nil
}

// record keeps a sample and drops those older than the longest range.
func (p *sampler) record(sm sample) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.samples = append(p.samples, sm)
	cut := 0
	for cut < len(p.samples)-1 && sm.at.Sub(p.samples[cut].at) > wire.MaxTimeRange+time.Minute {
		cut++
	}
	p.samples = p.samples[cut:]
}

// base is the oldest sample taken within d before now, if any.
func (p *sampler) base(now time.Time, d time.Duration) (sample, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, sm := range p.samples {
		if now.Sub(sm.at) <= d {
			return sm, true
		}
	}
	return sample{}, false
}

// sampleLoop samples every interval until ctx ends.
func (s *Service) sampleLoop(ctx context.Context, every time.Duration, log zerolog.Logger) {
	take := func() {
		sm, _, err := s.takeSample(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn().Err(err).Msg("performance sample")
			}
			return
		}
		s.perf.record(sm)
	}
	take()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			take()
		}
	}
}

// everyTenant refuses a tenant's scope: the answer shows every tenant.
func everyTenant(ctx context.Context, what string) error {
	if tenant.FromContext(ctx) != tenant.All {
		return wire.ErrEveryTenant(what)
	}
	return nil
}

// systemHealth answers event.systemhealth.
func (s *Service) systemHealth(ctx context.Context, _ *wire.SystemHealthRequest) (*wire.SystemHealth, error) {
	if err := everyTenant(ctx, "natsSystemHealth"); err != nil {
		return nil, err
	}
	ai, err := s.js.AccountInfo(ctx)
	if err != nil {
		return nil, jserr.Classify(err)
	}
	infos, err := s.streamInfos(ctx)
	if err != nil {
		return nil, err
	}
	h := &wire.SystemHealth{TotalStreams: ai.Streams, TotalConsumers: ai.Consumers, Domain: ai.Domain,
		APIRequests: ai.API.Total, APIErrors: ai.API.Errors,
		SystemResources: wire.SystemResources{MemoryUsage: ai.Memory, DiskUsage: ai.Store,
			MemoryLimit: ai.Limits.MaxMemory, DiskLimit: ai.Limits.MaxStore}}
	for _, in := range infos {
		h.TotalMessages += in.State.Msgs
		h.TotalBytes += in.State.Bytes
	}
	h.ClusterStatus = clusterStatus(infos, s.js.Conn().ConnectedServerName())
	h.Servers = serverStats(ctx, s.js.Conn())
	h.ConnectedServers = len(h.Servers)
	if h.Servers == nil {
		h.Servers = []wire.ServerStat{}
		h.ConnectedServers = len(serversOf(infos)) // without STATZ: the servers that hold a stream
	}
	return h, nil
}

// clusterStatus summarises the streams' replication; its leader is the
// catalogue stream's (the meta leader is visible to the system account
// only). A server that is not in a cluster reports no cluster for its
// streams: it (here) leads them all.
func clusterStatus(infos []*jetstream.StreamInfo, here string) wire.ClusterStatus {
	cs := wire.ClusterStatus{InSync: true}
	for _, in := range infos {
		cs.Replicas = max(cs.Replicas, in.Config.Replicas)
		c := in.Cluster
		if c == nil {
			c = &jetstream.ClusterInfo{Leader: here}
		}
		if c.Leader == "" {
			cs.Leaderless++
			cs.InSync = false
			continue
		}
		if cs.Name == "" {
			cs.Name = c.Name
		}
		if in.Config.Name == "KV_"+subjects.CatalogBucket || cs.Leader == "" {
			cs.Leader = c.Leader
		}
		for _, r := range c.Replicas {
			if !r.Current || r.Offline {
				cs.LaggingReplicas++
				cs.InSync = false
			}
		}
	}
	return cs
}

func serversOf(infos []*jetstream.StreamInfo) map[string]bool {
	out := map[string]bool{}
	for _, in := range infos {
		if in.Cluster == nil {
			out["-"] = true // a single server
			continue
		}
		if in.Cluster.Leader != "" {
			out[in.Cluster.Leader] = true
		}
		for _, r := range in.Cluster.Replicas {
			out[r.Name] = true
		}
	}
	return out
}

// tokenWrites are the token service's endpoints a workflow's changes go
// through.
func tokenWrites(endpoint string) bool {
	return endpoint == "create" || endpoint == "fire" || endpoint == "update"
}

// workflowHealth answers event.workflowhealth.
func (s *Service) workflowHealth(ctx context.Context, r *wire.WorkflowHealthRequest) (*wire.WorkflowHealth, error) {
	st, err := s.stream(ctx, r.WorkflowID)
	if err != nil {
		return nil, err
	}
	in, err := st.Info(ctx)
	if err != nil {
		return nil, jserr.Classify(err)
	}
	h := &wire.WorkflowHealth{WorkflowID: r.WorkflowID, StreamName: in.Config.Name, MessageCount: in.State.Msgs,
		Bytes: in.State.Bytes, FirstSequence: in.State.FirstSeq, LastSequence: in.State.LastSeq, Consumers: in.State.Consumers,
		Replicas: in.Config.Replicas, InSync: true}
	h.Leader = s.js.Conn().ConnectedServerName() // a server outside a cluster reports no cluster: it leads
	if c := in.Cluster; c != nil {
		h.Leader = c.Leader
		for _, rep := range c.Replicas {
			if !rep.Current || rep.Offline {
				h.InSync = false
			}
		}
	}
	h.InSync = h.InSync && h.Leader != ""
	subs, err := s.listSubscriptions(ctx, &wire.ListSubscriptionsRequest{WorkflowID: r.WorkflowID})
	if err != nil {
		return nil, err
	}
	h.Subscriptions = subs.Items
	for _, sub := range subs.Items {
		h.ConsumerLag += sub.Pending
	}
	agg, err := s.catchUp(ctx, r.WorkflowID)
	if err != nil {
		return nil, err
	}
	now := s.now().Unix() / 60
	var events int64
	for k := now - 14; k <= now; k++ {
		if c := agg.Minutes[k]; c != nil {
			events += c.Events
		}
	}
	h.ThroughputPerMinute = float64(events) / 15
	insts := serviceStats(ctx, s.js.Conn(), []string{subjects.TokenService}, tokenWrites)
	var reqs, errs, nanos int64
	for _, is := range insts {
		reqs, errs, nanos = reqs+is.requests, errs+is.errors, nanos+is.nanos
	}
	h.ServiceInstances, h.ServiceRequests = len(insts), reqs
	if reqs > 0 {
		h.ErrorRate = float64(errs) / float64(reqs)
		h.AvgProcessingTime = float64(nanos) / float64(reqs) / 1e6
	}
	return h, nil
}

// performance answers event.performance.
func (s *Service) performance(ctx context.Context, r *wire.PerformanceRequest) (*wire.Performance, error) {
	if err := everyTenant(ctx, "natsPerformanceMetrics"); err != nil {
		return nil, err
	}
	d, err := wire.ParseWindow("timeRange", r.TimeRange, wire.DefaultTimeRange, wire.MaxTimeRange)
	if err != nil {
		return nil, err
	}
	now, infos, err := s.takeSample(ctx)
	if err != nil {
		return nil, err
	}
	base, ok := s.perf.base(now.at, d)
	s.perf.record(now)
	if !ok {
		base = now
	}
	p := &wire.Performance{TimeRange: windowName(d), Since: base.at.UTC(), MeasuredSeconds: now.at.Sub(base.at).Seconds(),
		StreamMetrics: []wire.StreamMetric{}}
	secs := p.MeasuredSeconds
	rate := func(n float64) float64 {
		if secs <= 0 {
			return 0
		}
		return n / secs
	}
	var in, inB, out, outB float64
	for name, st := range now.servers {
		p.ConnectionCount += st.Connections
		b, had := base.servers[name]
		if !had || st.MessagesReceived < b.MessagesReceived { // new or restarted server: all of its counts are new
			b = wire.ServerStat{}
		}
		in += float64(st.MessagesReceived - b.MessagesReceived)
		inB += float64(st.BytesReceived - b.BytesReceived)
		out += float64(st.MessagesSent - b.MessagesSent)
		outB += float64(st.BytesSent - b.BytesSent)
	}
	p.MessagesPerSecond, p.BytesPerSecond, p.MessagesOutPerSec, p.BytesOutPerSecond = rate(in), rate(inB), rate(out), rate(outB)
	var reqs, errs, nanos int64
	var buckets []int64
	var bounds []float64
	for id, is := range now.instances {
		b := base.instances[id]
		if b == nil || is.requests < b.requests {
			b = &instanceStats{}
		}
		reqs += is.requests - b.requests
		errs += is.errors - b.errors
		nanos += is.nanos - b.nanos
		if buckets == nil && is.buckets != nil {
			buckets, bounds = make([]int64, len(is.buckets)), is.bounds
		}
		for i := range is.buckets {
			if i < len(buckets) {
				var prev int64
				if i < len(b.buckets) {
					prev = b.buckets[i]
				}
				buckets[i] += is.buckets[i] - prev
			}
		}
	}
	p.Requests = reqs
	if reqs > 0 {
		p.ErrorRate = float64(errs) / float64(reqs)
		p.AvgLatency = float64(nanos) / float64(reqs) / 1e6
		p.P50Latency = bucketQuantile(bounds, buckets, 0.50) * 1000
		p.P95Latency = bucketQuantile(bounds, buckets, 0.95) * 1000
		p.P99Latency = bucketQuantile(bounds, buckets, 0.99) * 1000
	}
	for _, st := range infos {
		prev := base.streams[st.Config.Name]
		if prev > st.State.LastSeq {
			prev = 0
		}
		p.StreamMetrics = append(p.StreamMetrics, wire.StreamMetric{StreamName: st.Config.Name, MessageCount: st.State.Msgs,
			Bytes: st.State.Bytes, ConsumerCount: st.State.Consumers, MessageRate: rate(float64(st.State.LastSeq - prev))})
	}
	return p, nil
}

// bucketQuantile estimates the q-quantile of counts in buckets with upper
// bounds (the last count above them all) as Prometheus's
// histogram_quantile does: linearly within the bucket that holds the
// rank; above the last bound, the last bound.
func bucketQuantile(bounds []float64, counts []int64, q float64) float64 {
	var total int64
	for _, c := range counts {
		total += c
	}
	if total == 0 || len(bounds) == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum int64
	for i, c := range counts {
		if c == 0 || float64(cum+c) < rank {
			cum += c
			continue
		}
		if i >= len(bounds) {
			return bounds[len(bounds)-1]
		}
		lower := 0.0
		if i > 0 {
			lower = bounds[i-1]
		}
		return lower + (bounds[i]-lower)*math.Max(0, rank-float64(cum))/float64(c)
	}
	return bounds[len(bounds)-1]
}
