package systemtest

import (
	"encoding/json"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/cbnats/circuitbreaker/deploy/internal/natscli"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestHealthMatchesNatsCLI runs natscli (the `nats` command, built by
// deploy/internal/natscli) against the test's server and compares what it
// shows with natsSystemHealth, workflowHealth and natsPerformanceMetrics:
//
//   - natsSystemHealth: `nats account info` (its Streams and Consumers rows;
//     the $JS.API.INFO reply its --trace prints for the byte counts, which
//     the table rounds, the limits, the API totals and the domain), `nats
//     stream ls -a --json` and `nats stream info <each> --json` (totals of
//     messages and bytes, clusterStatus from every stream's cluster info),
//     and `nats account report statistics` ($SYS.REQ.ACCOUNT.PING.STATZ,
//     what the health reads for servers: its table, and its --trace for
//     the server's name, which the table replaces by the host, and the
//     exact bytes).
//   - workflowHealth: `nats stream info WORKFLOW_<wf> --json`, `nats
//     consumer ls|info WORKFLOW_<wf> … --json` (every sub_* consumer), `nats
//     stream subjects WORKFLOW_<wf> --json` (the events stored, for
//     throughputPerMinute) and `nats micro stats token --json` (the STATS
//     data of create, fire and update).
//   - natsPerformanceMetrics: `nats micro stats workflow|token|event
//     --json` before the first and before the second of two calls, the
//     STATZ of `nats account report statistics` around each call, and the
//     stream infos before the first call and now.
//
// Not compared, for want of a natscli counterpart:
//   - `nats server …` (list, ping, info, report): those commands need the
//     system account, and the test server has no user in it (they fail:
//     "ensure the account used has system privileges"). The servers'
//     figures are compared with `nats account report statistics` instead,
//     the same per-account STATZ the health reads.
//   - performance's timeRange, since and measuredSeconds: the event
//     service's own clock (its sampler's instants). For the same reason
//     the rates of STATZ counters are bracketed, not matched: the sampler
//     read the counters at instants between natscli's reads.
//   - workflowHealth's workflowId: the request's own.
//   - what the health leaves out (the servers' CPU and process memory,
//     other accounts, the meta leader; see the README): system account
//     only.
//
// `nats micro stats` is read with --json: its table shows micro's own
// counts, which count the hand-off to the worker pool (shared/rpc), while
// the health reads each endpoint's STATS data, which only the JSON shows.
//
// The test is the only client, and nothing writes between a natscli read
// and ours (the workflow's analytics are folded before the reads). Each
// natscli run is waited out until the server has dropped its connection,
// so connection counts are the stack's own. Counters that the reads
// themselves move (API requests, STATZ messages and bytes, subscriptions
// held while asking) are compared with bounds, each explained where it is
// checked.
func TestHealthMatchesNatsCLI(t *testing.T) {
	natscli.Path(t) // skip before starting anything when natscli cannot be built
	s, c := start(t, ""), ctx(t)
	v := &cliView{t: t, s: s, url: s.stack.ClientURL(), conns: s.stack.Server.GlobalAccount().NumLocalConnections()}
	services := []string{subjects.WorkflowService, subjects.TokenService, subjects.EventService}

	// Before any request: the services' STATS, the streams and STATZ as
	// natscli sees them, then a first performance reading (its sample S1
	// holds exactly these STATS: no request is made in between, and a
	// request's STATS count it only after it has replied).
	statsA := v.microStats(services...)
	streamsA := v.streams()
	statzA := v.statz()
	p1 := testkit.Must(s.c.Performance(c, &wire.PerformanceRequest{TimeRange: "5m"}))
	statzB := v.statz()

	// Activity, with errors: a fire that is not enabled and a workflow
	// that does not exist.
	wf := testkit.Must(s.c.CreateWorkflow(c, analyticsFlow("health_cli"))).ID
	testkit.Must(s.c.CreateSubscription(c, &wire.SubscribeRequest{WorkflowID: wf, Name: "billing", Deliver: wire.DeliverAll}))
	var first string
	for i := range 5 {
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf}))
		testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "triage"}))
		if i == 0 {
			first = tok.ID
		}
	}
	if _, err := s.c.Fire(c, &wire.FireRequest{TokenID: first, TransitionID: "approve"}); err == nil {
		t.Fatal("a fire that is not enabled succeeded")
	}
	for range 20 {
		testkit.Must(s.c.GetWorkflow(c, wf))
	}
	if _, err := s.c.GetWorkflow(c, "absent"); err == nil {
		t.Fatal("an absent workflow was found")
	}
	// Fold the events into the analytics bucket now: the reads below
	// write nothing.
	testkit.Must(s.c.WorkflowHealth(c, wf))

	// natsSystemHealth: natscli's stream list and infos and account info,
	// then ours, then natscli's STATZ.
	streams := v.streams()
	acct, info := v.accountInfo()
	h := testkit.Must(s.c.SystemHealth(c))
	statz := v.statz()

	if acct.streams != h.TotalStreams || acct.consumers != h.TotalConsumers || info.Streams != h.TotalStreams ||
		info.Consumers != h.TotalConsumers || len(streams) != h.TotalStreams {
		t.Errorf("streams %d, consumers %d; nats account info shows %d and %d (its $JS.API.INFO %d and %d), nats stream ls %d",
			h.TotalStreams, h.TotalConsumers, acct.streams, acct.consumers, info.Streams, info.Consumers, len(streams))
	}
	var msgs, bytes uint64
	for _, in := range streams {
		msgs, bytes = msgs+in.State.Msgs, bytes+in.State.Bytes
	}
	if h.TotalMessages != msgs || h.TotalBytes != bytes || msgs == 0 {
		t.Errorf("total messages %d, bytes %d; nats stream info of every stream: %d, %d", h.TotalMessages, h.TotalBytes, msgs, bytes)
	}
	want := wire.SystemResources{MemoryUsage: info.Memory, DiskUsage: info.Store, MemoryLimit: info.Limits.MaxMemory, DiskLimit: info.Limits.MaxStore}
	if h.SystemResources != want || h.Domain != info.Domain || info.Store == 0 {
		t.Errorf("resources %+v, domain %q; nats account info: %+v, %q", h.SystemResources, h.Domain, want, info.Domain)
	}
	// natscli's table says "of Unlimited" for a limit of -1.
	if (want.DiskLimit == -1) != acct.storageUnlimited || (want.MemoryLimit == -1) != acct.memoryUnlimited {
		t.Errorf("limits %+v; nats account info shows unlimited storage %v, memory %v", want, acct.storageUnlimited, acct.memoryUnlimited)
	}
	// natscli asked first; between its $JS.API.INFO and ours the server
	// answered exactly one more API request, ours. The event service's
	// performance sampler (every 15 s; the test takes less, but a slow
	// machine may not) could add its $JS.API.STREAM.LIST. Errors: none
	// in between.
	if d := int64(h.APIRequests) - int64(info.API.Total); d < 1 || d > 2 || h.APIErrors != info.API.Errors || info.API.Errors == 0 {
		t.Errorf("API requests %d, errors %d; nats account info (read just before): %d, %d", h.APIRequests, h.APIErrors, info.API.Total, info.API.Errors)
	}
	if cs := clusterStatusOf(streams, s.nc.ConnectedServerName()); h.ClusterStatus != cs {
		t.Errorf("cluster status %+v; from nats stream info: %+v", h.ClusterStatus, cs)
	}
	if h.ConnectedServers != len(statz.rows) || len(h.Servers) != 1 || len(statz.rows) != 1 || len(statz.replies) != 1 {
		t.Fatalf("%d servers %+v; nats account report statistics: %d rows, %d replies", h.ConnectedServers, h.Servers, len(statz.rows), len(statz.replies))
	}
	ours, row, rep := h.Servers[0], statz.rows[0], statz.replies[0]
	acc := rep.Data.Accounts[0]
	if ours.Name != rep.Server.Name || ours.Cluster != row["Cluster"] || ours.Cluster != rep.Server.Cluster || ours.Name != s.nc.ConnectedServerName() {
		t.Errorf("server %q in cluster %q; nats account report statistics: %q (host %q) in %q", ours.Name, ours.Cluster, rep.Server.Name, row["Server"], row["Cluster"])
	}
	// natscli's own connection is the one more it counts.
	if n := num(t, row["Connections"]); ours.Connections != v.conns || n != int64(ours.Connections)+1 || acc.Conns != n {
		t.Errorf("connections %d (the stack has %d); nats account report statistics: %d", ours.Connections, v.conns, n)
	}
	// Each read holds a reply subscription of its own while it asks (our
	// event service's gather, natscli's inbox); the rest are the services'
	// standing subscriptions. A sampler's gather may overlap either.
	if n := num(t, row["Subscriptions"]); math.Abs(float64(n)-float64(ours.Subscriptions)) > 2 || int64(acc.NumSubs) != n {
		t.Errorf("subscriptions %d; nats account report statistics: %d", ours.Subscriptions, n)
	}
	if n := num(t, row["Slow Consumers"]); ours.SlowConsumers != n || acc.Slow != n {
		t.Errorf("slow consumers %d; nats account report statistics: %d", ours.SlowConsumers, n)
	}
	// Counters only grow, and natscli read them just after us: what came
	// in between is the rest of our read (its reply to the test), natscli's
	// connection and its request (2 messages each way, under 2 KiB: see
	// the log), the idle heartbeats of the services' KV watchers (3 every
	// 5 s) and at most one sample of the performance sampler (its STATZ,
	// STATS and stream list requests and replies: some 15 messages, 40
	// KiB out). So natscli's figures are ours plus at most 32 messages and
	// 128 KiB.
	for _, f := range []struct {
		what           string
		ours, cli, max uint64
		shown          string
	}{
		{"messages received", ours.MessagesReceived, acc.Received.Msgs, 32, row["Received Messages"]},
		{"messages sent", ours.MessagesSent, acc.Sent.Msgs, 32, row["Sent Messages"]},
		{"bytes received", ours.BytesReceived, acc.Received.Bytes, 128 << 10, ""},
		{"bytes sent", ours.BytesSent, acc.Sent.Bytes, 128 << 10, ""},
	} {
		if f.cli < f.ours || f.cli-f.ours > f.max || f.ours == 0 || (f.shown != "" && uint64(num(t, f.shown)) != f.cli) {
			t.Errorf("%s: %d; nats account report statistics just after: %d (its table: %q)", f.what, f.ours, f.cli, f.shown)
		}
	}

	// workflowHealth: natscli's stream, consumers, subjects and token
	// STATS, then ours.
	stream := subjects.StreamName(wf)
	var si jetstream.StreamInfo
	v.json(&si, "stream", "info", stream)
	var names []string
	v.json(&names, "consumer", "ls", stream)
	var subs []wire.SubscriptionInfo
	var lag uint64
	for _, name := range names {
		if !strings.HasPrefix(name, "sub_") {
			continue
		}
		var ci jetstream.ConsumerInfo
		v.json(&ci, "consumer", "info", stream, name)
		subs = append(subs, wire.SubscriptionInfo{WorkflowID: wf, Name: strings.TrimPrefix(name, "sub_"), Stream: ci.Stream,
			Consumer: ci.Name, Filter: ci.Config.FilterSubject, MaxDeliver: ci.Config.MaxDeliver, Pending: ci.NumPending,
			AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered, AckFloor: ci.AckFloor.Stream})
		lag += ci.NumPending
	}
	var bySubject map[string]uint64
	v.json(&bySubject, "stream", "subjects", stream)
	tokenStats := v.microStats(subjects.TokenService)
	wh := testkit.Must(s.c.WorkflowHealth(c, wf))

	leader, inSync := s.nc.ConnectedServerName(), true // a server outside a cluster reports none: it leads
	if si.Cluster != nil {
		leader = si.Cluster.Leader
		for _, r := range si.Cluster.Replicas {
			inSync = inSync && r.Current && !r.Offline
		}
	}
	if wh.StreamName != si.Config.Name || wh.MessageCount != si.State.Msgs || wh.Bytes != si.State.Bytes ||
		wh.FirstSequence != si.State.FirstSeq || wh.LastSequence != si.State.LastSeq || wh.Consumers != si.State.Consumers ||
		wh.Replicas != si.Config.Replicas || wh.Leader != leader || wh.InSync != (inSync && leader != "") || si.State.Msgs == 0 {
		t.Errorf("workflow health %+v; nats stream info: %+v, replicas %d, cluster %+v", wh, si.State, si.Config.Replicas, si.Cluster)
	}
	if wh.ConsumerLag != lag || !slices.Equal(wh.Subscriptions, subs) || len(subs) != 1 || lag != 11 {
		t.Errorf("consumer lag %d, subscriptions %+v; nats consumer info: %d, %+v", wh.ConsumerLag, wh.Subscriptions, lag, subs)
	}
	// Every event of the workflow was stored in the last seconds, so the
	// events of the last 15 minutes are all those in the stream:
	// workflows.<wf>.events.* (the subscriptions' filter), 11 of them.
	var events uint64
	for subj, n := range bySubject {
		if strings.HasPrefix(subj, strings.TrimSuffix(subjects.AllEvents(wf), ">")) {
			events += n
		}
	}
	if time.Since(si.State.FirstTime) > 14*time.Minute || events != 11 || wh.ThroughputPerMinute != float64(events)/15 {
		t.Errorf("throughput %v per minute; nats stream subjects: %d events (%v)", wh.ThroughputPerMinute, events, bySubject)
	}
	tw := tokenStats.sum(func(e string) bool { return e == "create" || e == "fire" || e == "update" })
	if wh.ServiceInstances != len(tokenStats) || len(tokenStats) != 2 || wh.ServiceRequests != tw.requests || tw.requests != 11 || tw.errors != 1 ||
		wh.ErrorRate != float64(tw.errors)/float64(tw.requests) || wh.AvgProcessingTime != float64(tw.nanos)/float64(tw.requests)/1e6 {
		t.Errorf("token service: %d instances, %d requests, error rate %v, %v ms; nats micro stats token: %d instances, %+v",
			wh.ServiceInstances, wh.ServiceRequests, wh.ErrorRate, wh.AvgProcessingTime, len(tokenStats), tw)
	}

	// natsPerformanceMetrics: natscli's STATS (every request since statsA
	// has been counted: the last, our workflowHealth above, replied two
	// natscli runs, some 700 ms, before natscli asks the event service)
	// and STATZ around the call.
	statsC := v.microStats(services...)
	statzC := v.statz()
	p2 := testkit.Must(s.c.Performance(c, &wire.PerformanceRequest{TimeRange: "5m"}))
	statzD := v.statz()

	// Both calls measure from the same sample B (the oldest in the 5
	// minutes: the sampler's first, or p1's own S1 if that came later).
	// natscli's first read shows that no request had been served yet, so
	// B's and S1's STATS are all zero, as p1 says; at S2 they were
	// statsC's. So p2 counts exactly the requests natscli saw between its
	// two reads (p1's own among them: a request is counted after its
	// reply), and its latencies are those of their buckets.
	if !p2.Since.Equal(p1.Since) || p2.TimeRange != "5m" || p2.MeasuredSeconds <= 0 {
		t.Fatalf("the two readings measure from %v and %v (%+v)", p1.Since, p2.Since, p2)
	}
	all := func(string) bool { return true }
	a, b := statsA.sum(all), statsC.sum(all)
	if a.requests != 0 || p1.Requests != 0 {
		t.Fatalf("before the first reading: %d requests (nats micro stats), %d (the reading)", a.requests, p1.Requests)
	}
	d := b.minus(a)
	// p1, the workflow, the subscription, 5 tokens, 6 fires, 21 gets, 2
	// workflowHealth and systemHealth: 38 at least (the services may ask
	// each other too), 2 of them failed.
	if p2.Requests != d.requests || d.requests < 38 || d.errors < 2 ||
		p2.ErrorRate != float64(d.errors)/float64(d.requests) || !near(p2.AvgLatency, float64(d.nanos)/float64(d.requests)/1e6) {
		t.Errorf("performance: %d requests (first reading %d), error rate %v, average %v ms; nats micro stats between the readings: %+v",
			p2.Requests, p1.Requests, p2.ErrorRate, p2.AvgLatency, d)
	}
	for _, q := range []struct {
		q   float64
		got float64
	}{{0.50, p2.P50Latency}, {0.95, p2.P95Latency}, {0.99, p2.P99Latency}} {
		lo, hi, want := histogramQuantile(q.q, d.bounds, d.buckets)
		if !near(q.got, want*1000) || q.got < lo*1000 || q.got > hi*1000 {
			t.Errorf("p%v latency %v ms; from nats micro stats' buckets: %v ms (bucket %v–%v s)", q.q*100, q.got, want*1000, lo, hi)
		}
	}
	// STATZ: the sampler read them during each call, between natscli's
	// reads just before and just after it.
	statzAround := func(f func(statzAccount) uint64) (lo, hi uint64) {
		return f(statzC.account()) - f(statzB.account()), f(statzD.account()) - f(statzA.account())
	}
	for _, r := range []struct {
		what   string
		p1, p2 float64
		f      func(statzAccount) uint64
	}{
		{"messages in", p1.MessagesPerSecond, p2.MessagesPerSecond, func(a statzAccount) uint64 { return a.Received.Msgs }},
		{"bytes in", p1.BytesPerSecond, p2.BytesPerSecond, func(a statzAccount) uint64 { return a.Received.Bytes }},
		{"messages out", p1.MessagesOutPerSec, p2.MessagesOutPerSec, func(a statzAccount) uint64 { return a.Sent.Msgs }},
		{"bytes out", p1.BytesOutPerSecond, p2.BytesOutPerSecond, func(a statzAccount) uint64 { return a.Sent.Bytes }},
	} {
		got := math.Round(r.p2*p2.MeasuredSeconds - r.p1*p1.MeasuredSeconds)
		lo, hi := statzAround(r.f)
		if got < float64(lo) || got > float64(hi) || lo == 0 {
			t.Errorf("%s between the readings: %v; nats account report statistics around them: %d to %d", r.what, got, lo, hi)
		}
	}
	if n := statzD.account().Conns; p2.ConnectionCount != v.conns || int64(p2.ConnectionCount)+1 != n {
		t.Errorf("connections %d; nats account report statistics just after (its own among them): %d", p2.ConnectionCount, n)
	}
	// Streams: now as natscli showed them; a stream's stored messages
	// between the readings are the growth of its last sequence since
	// natscli's first read.
	rate1 := map[string]float64{}
	for _, m := range p1.StreamMetrics {
		rate1[m.StreamName] = m.MessageRate * p1.MeasuredSeconds
	}
	var names2 []string
	for _, m := range p2.StreamMetrics {
		names2 = append(names2, m.StreamName)
		in := streams[m.StreamName]
		if in == nil {
			continue
		}
		var before uint64
		if a := streamsA[m.StreamName]; a != nil {
			before = a.State.LastSeq
		}
		stored := math.Round(m.MessageRate*p2.MeasuredSeconds - rate1[m.StreamName])
		if m.MessageCount != in.State.Msgs || m.Bytes != in.State.Bytes || m.ConsumerCount != in.State.Consumers ||
			stored != float64(in.State.LastSeq-before) {
			t.Errorf("stream metric %+v (%v stored between the readings); nats stream info: %+v, last sequence %d before",
				m, stored, in.State, before)
		}
	}
	if !slices.Equal(names2, slices.Sorted(maps.Keys(streams))) {
		t.Errorf("stream metrics of %v; nats stream ls: %v", names2, slices.Sorted(maps.Keys(streams)))
	}
	t.Logf("natscli agrees: %d streams, %d consumers, %d messages, %d bytes, API %d requests (natscli %d), %d connections, "+
		"STATZ messages in/out %d/%d (natscli +%d/+%d), bytes %d/%d (natscli +%d/+%d); workflow stream %d messages, lag %d; "+
		"token service %d requests, %d errors; performance %d requests, %d errors, p50 %.3f ms, p99 %.3f ms",
		h.TotalStreams, h.TotalConsumers, h.TotalMessages, h.TotalBytes, h.APIRequests, info.API.Total, ours.Connections,
		ours.MessagesReceived, ours.MessagesSent, acc.Received.Msgs-ours.MessagesReceived, acc.Sent.Msgs-ours.MessagesSent,
		ours.BytesReceived, ours.BytesSent, acc.Received.Bytes-ours.BytesReceived, acc.Sent.Bytes-ours.BytesSent,
		wh.MessageCount, wh.ConsumerLag, tw.requests, tw.errors, p2.Requests, d.errors, p2.P50Latency, p2.P99Latency)
}

// cliView runs natscli against the test's server.
type cliView struct {
	t     *testing.T
	s     *system
	url   string
	conns int // the stack's connections
}

// run runs natscli, then waits until the server has dropped its
// connection (natscli has exited, the server notices a moment later), so
// that every connection count read next is the stack's own.
func (v *cliView) run(args ...string) (stdout, trace string) {
	v.t.Helper()
	stdout, trace = natscli.Run(v.t, v.url, args...)
	acc := v.s.stack.Server.GlobalAccount()
	testkit.Poll(v.t, 10*time.Second, "natscli's connection closed", func() bool { return acc.NumLocalConnections() == v.conns })
	return stdout, trace
}

// json runs natscli with --json and decodes what it prints into out.
func (v *cliView) json(out any, args ...string) {
	v.t.Helper()
	stdout, _ := v.run(append(args, "--json")...)
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		v.t.Fatalf("nats %s --json: %v\n%s", strings.Join(args, " "), err, stdout)
	}
}

// streams is every stream's info, by name (`nats stream ls -a`, `nats
// stream info`).
func (v *cliView) streams() map[string]*jetstream.StreamInfo {
	v.t.Helper()
	var names []string
	v.json(&names, "stream", "ls", "-a")
	out := map[string]*jetstream.StreamInfo{}
	for _, n := range names {
		var in jetstream.StreamInfo
		v.json(&in, "stream", "info", n)
		out[n] = &in
	}
	return out
}

// acctShown is what `nats account info` prints of the account's use.
type acctShown struct {
	streams, consumers                int
	storageUnlimited, memoryUnlimited bool
}

var (
	shownStreams   = regexp.MustCompile(`(?m)^\s*Streams: ([\d,]+)[ \t]*$`)
	shownConsumers = regexp.MustCompile(`(?m)^\s*Consumers: ([\d,]+)[ \t]*$`)
	shownStorage   = regexp.MustCompile(`(?m)^\s*Storage: .* of Unlimited`)
	shownMemory    = regexp.MustCompile(`(?m)^\s*Memory: .* of Unlimited`)
	tracedInfo     = regexp.MustCompile(`<<< \$JS\.API\.INFO\n(\{.*\})\n`)
	tracedStatz    = regexp.MustCompile(`(?m)<<< \(\d+B\) (\{.*\})$`)
)

// accountInfo runs `nats account info --trace`: what it shows, and the
// $JS.API.INFO reply it traces (the table rounds bytes to KiB and leaves
// out the API counts).
func (v *cliView) accountInfo() (acctShown, jetstream.AccountInfo) {
	v.t.Helper()
	stdout, trace := v.run("account", "info", "--trace")
	var shown acctShown
	st, co, raw := shownStreams.FindStringSubmatch(stdout), shownConsumers.FindStringSubmatch(stdout), tracedInfo.FindStringSubmatch(trace)
	if st == nil || co == nil || raw == nil {
		v.t.Fatalf("nats account info: no streams, consumers or $JS.API.INFO reply in\n%s\n%s", stdout, trace)
	}
	shown.streams, shown.consumers = int(num(v.t, st[1])), int(num(v.t, co[1]))
	shown.storageUnlimited, shown.memoryUnlimited = shownStorage.MatchString(stdout), shownMemory.MatchString(stdout)
	var info jetstream.AccountInfo
	testkit.Must(0, json.Unmarshal([]byte(raw[1]), &info))
	return shown, info
}

// statzAccount is the account's part of a server's STATZ reply.
type statzAccount struct {
	Conns    int64  `json:"conns"`
	NumSubs  uint32 `json:"num_subscriptions"`
	Sent     struct{ Msgs, Bytes uint64 }
	Received struct{ Msgs, Bytes uint64 }
	Slow     int64 `json:"slow_consumers"`
}

type statzReply struct {
	Server struct{ Name, Cluster string } `json:"server"`
	Data   struct {
		Accounts []statzAccount `json:"account_statz"`
	} `json:"data"`
}

// statzShown is `nats account report statistics`: its table, a row per
// server, and the replies its --trace prints.
type statzShown struct {
	rows    []map[string]string
	replies []statzReply
}

func (v *cliView) statz() statzShown {
	v.t.Helper()
	stdout, trace := v.run("account", "report", "statistics", "--trace")
	out := statzShown{rows: tableRows(stdout, "Server")}
	for _, m := range tracedStatz.FindAllStringSubmatch(trace, -1) {
		var r statzReply
		if err := json.Unmarshal([]byte(m[1]), &r); err != nil || len(r.Data.Accounts) != 1 {
			v.t.Fatalf("nats account report statistics: reply %s: %v", m[1], err)
		}
		out.replies = append(out.replies, r)
	}
	return out
}

// account is the one server's view of the account.
func (s statzShown) account() statzAccount {
	if len(s.replies) != 1 {
		panic("nats account report statistics: not one server")
	}
	return s.replies[0].Data.Accounts[0]
}

// tableRows reads the body of the table natscli prints whose header row
// starts with first: each row's cells by column title.
func tableRows(out, first string) []map[string]string {
	cells := func(line string) []string {
		f := strings.Split(line, "│")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		return f
	}
	var head []string
	var rows []map[string]string
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if head == nil {
			if c := cells(l); strings.HasPrefix(l, "│") && len(c) > 2 && c[1] == first {
				head, i = c, i+1 // and the rule below the header
			}
			continue
		}
		if !strings.HasPrefix(l, "│") {
			break // the rule above the footer
		}
		row := map[string]string{}
		for j, c := range cells(l) {
			if j < len(head) && head[j] != "" {
				row[head[j]] = c
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// num reads a count as natscli prints it (1,234).
func num(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.ReplaceAll(s, ",", ""), 10, 64)
	if err != nil {
		t.Fatalf("not a count: %q", s)
	}
	return n
}

// instanceStats is `nats micro stats`: each instance's endpoints' STATS
// data, by service/instance id and endpoint.
type instanceStats map[string]map[string]rpc.WorkStats

func (v *cliView) microStats(services ...string) instanceStats {
	v.t.Helper()
	out := instanceStats{}
	for _, svc := range services {
		var stats []micro.Stats
		v.json(&stats, "micro", "stats", svc)
		for _, st := range stats {
			eps := map[string]rpc.WorkStats{}
			for _, e := range st.Endpoints {
				var w rpc.WorkStats
				if len(e.Data) > 0 {
					testkit.Must(0, json.Unmarshal(e.Data, &w))
				}
				eps[e.Name] = w
			}
			out[svc+"/"+st.ID] = eps
		}
	}
	return out
}

// workTotals is STATS data summed over instances and endpoints.
type workTotals struct {
	requests, errors, nanos int64
	buckets                 []int64
	bounds                  []float64
}

func (is instanceStats) sum(keep func(endpoint string) bool) workTotals {
	var w workTotals
	for _, eps := range is {
		for name, e := range eps {
			if !keep(name) {
				continue
			}
			w.requests, w.errors, w.nanos = w.requests+e.Requests, w.errors+e.Errors, w.nanos+e.TotalWorkNanos
			if len(e.LatencyBuckets) > len(w.buckets) {
				w.buckets = append(w.buckets, make([]int64, len(e.LatencyBuckets)-len(w.buckets))...)
			}
			for i, n := range e.LatencyBuckets {
				w.buckets[i] += n
			}
			if len(e.LatencyBounds) > len(w.bounds) {
				w.bounds = e.LatencyBounds
			}
		}
	}
	return w
}

func (w workTotals) minus(o workTotals) workTotals {
	d := workTotals{requests: w.requests - o.requests, errors: w.errors - o.errors, nanos: w.nanos - o.nanos, bounds: w.bounds,
		buckets: slices.Clone(w.buckets)}
	for i := range o.buckets {
		d.buckets[i] -= o.buckets[i]
	}
	return d
}

// histogramQuantile is Prometheus's histogram_quantile over buckets with
// upper bounds (seconds; the last count is above them all): the bucket
// whose cumulative count first reaches the rank q·total, interpolated
// linearly within it; above the last bound, the last bound. It returns
// the bucket's bounds and the estimate.
func histogramQuantile(q float64, bounds []float64, counts []int64) (lo, hi, v float64) {
	var total int64
	for _, c := range counts {
		total += c
	}
	rank := q * float64(total)
	var cum int64
	for i, c := range counts {
		if c == 0 || float64(cum+c) < rank {
			cum += c
			continue
		}
		if i >= len(bounds) {
			last := bounds[len(bounds)-1]
			return last, last, last
		}
		if i > 0 {
			lo = bounds[i-1]
		}
		return lo, bounds[i], lo + (bounds[i]-lo)*(rank-float64(cum))/float64(c)
	}
	return 0, 0, 0
}

// clusterStatusOf is clusterStatus computed from natscli's stream infos:
// the catalogue stream's leader; a server outside a cluster reports no
// cluster for its streams: here, the server the test is connected to,
// leads them.
func clusterStatusOf(streams map[string]*jetstream.StreamInfo, here string) wire.ClusterStatus {
	cs := wire.ClusterStatus{InSync: true}
	for _, name := range slices.Sorted(maps.Keys(streams)) {
		in := streams[name]
		cs.Replicas = max(cs.Replicas, in.Config.Replicas)
		cl := in.Cluster
		if cl == nil {
			cl = &jetstream.ClusterInfo{Leader: here}
		}
		if cl.Leader == "" {
			cs.Leaderless++
			cs.InSync = false
			continue
		}
		if cs.Name == "" {
			cs.Name = cl.Name
		}
		if name == "KV_"+subjects.CatalogBucket || cs.Leader == "" {
			cs.Leader = cl.Leader
		}
		for _, r := range cl.Replicas {
			if !r.Current || r.Offline {
				cs.LaggingReplicas++
				cs.InSync = false
			}
		}
	}
	return cs
}
