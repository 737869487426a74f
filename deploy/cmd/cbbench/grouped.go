package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/jsread"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// groupedName is the bare group-commit baseline of issue 13: n clients
// hand changes of our exact shape (tombstone, history entry, state, event:
// every change moves its token) to one bare committer goroutine, which
// commits whatever is queued as one atomic batch. No service, no request
// hop, no JSON: what JetStream gives group commit on this machine.
const groupedName = "raw: grouped atomic batches, 4 msgs a change"

const (
	groupedStream  = "CBBENCH_GROUPED"
	groupedPrefix  = "cbbench.grouped" // two tokens, like workflows.<id>
	groupedMax     = 250               // changes a batch at most, as our committer (1000 messages, 4 a change)
	groupedTimeout = 3 * time.Second   // as our committer's commit timeout
	seedChunk      = 500               // creates a batch while seeding
	tombstoneTTL   = "2m0s"            // as our tombstones'
)

// shape is a fire as our token service stores it: the bodies of its
// history entry, state and event, and the event's TTL header.
type shape struct {
	entry, state, event []byte
	eventTTL            string
}

func (s shape) String() string {
	return fmt.Sprintf("%s: bodies of a fire read back from the benchmark workflow: history entry %d B, state %d B, event %d B (event TTL %q)",
		groupedName, len(s.entry), len(s.state), len(s.event), s.eventTTL)
}

// grouped is what the grouped cases of every client count share: the
// committer's connection (connected as our token service is), the stream
// configuration and the message shape.
type grouped struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	cfg   jetstream.StreamConfig
	shape shape
}

// groupedLingerName is the same with our committer's linger: after each
// batch it waits up to half a batch time (≤ 1 ms) for the clients it just
// answered, so that closed-loop clients do not split into two cohorts
// that each wait a whole extra batch, and its groups are as large as ours.
const groupedLingerName = groupedName + ", linger ≤ 1 ms"

// groupedBaseline measures both bare group committers at n clients.
func (b *bench) groupedBaseline(ctx context.Context, c *client.Client, base *baselines, n int) error {
	for _, v := range []struct {
		name   string
		linger bool
	}{{groupedName, false}, {groupedLingerName, true}} {
		if !b.s.only.MatchString(v.name) {
			continue
		}
		if err := b.groupedCase(ctx, c, base, n, v.name, v.linger); err != nil {
			return fmt.Errorf("%s at %d clients: %w", v.name, n, err)
		}
	}
	return nil
}

// groupedCase measures a bare group committer at n clients on a fresh
// stream and notes the batches it committed.
func (b *bench) groupedCase(ctx context.Context, c *client.Client, base *baselines, n int, name string, linger bool) error {
	if base.group == nil {
		g, err := newGrouped(ctx, b.t, c, base.wf)
		if err != nil {
			return err
		}
		base.group = g
		b.notes = append(b.notes, g.shape.String(), "issue 13 target: create and transition (NATS) ≥ 0.8× the grouped "+
			"baseline at 16 and 64 clients, default and --sync-always (the first grouped row packs whatever is queued, "+
			"the second waits as our committer does)")
	}
	gc, err := base.group.start(ctx, n, linger)
	if err != nil {
		return err
	}
	b.run(name, n, gc.op, "")
	batches, changes := gc.stop()
	b.notes = append(b.notes, fmt.Sprintf("%s at %d clients: %d batches, %.1f changes a batch on average",
		name, n, batches, float64(changes)/float64(max(batches, 1))))
	return nil
}

// newGrouped samples our message shape and connects the bare committer.
func newGrouped(ctx context.Context, t *system, c *client.Client, wf jetstream.StreamConfig) (*grouped, error) {
	sh, err := sampleShape(ctx, t.nc, c)
	if err != nil {
		return nil, err
	}
	nc, err := t.serviceConn("cbbench-grouped")
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &grouped{nc: nc, js: js, cfg: groupedConfig(wf), shape: sh}, nil
}

// groupedConfig is a workflow stream's configuration (wf's replicas,
// storage and duplicate window) on the baseline's own subjects.
func groupedConfig(wf jetstream.StreamConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: groupedStream, Description: "cbbench: bare group-commit baseline",
		Subjects: []string{groupedPrefix + ".>"}, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardNew,
		Storage: wf.Storage, Replicas: wf.Replicas, Duplicates: wf.Duplicates,
		AllowDirect: true, AllowRollup: true, AllowAtomicPublish: true, AllowMsgTTL: true, DenyDelete: true}
}

// sampleShape creates and fires a token of the benchmark workflow and
// reads back, through the stream leader, the entry, state and event the
// fire stored.
func sampleShape(ctx context.Context, nc *nats.Conn, c *client.Client) (shape, error) {
	var sh shape
	tok, err := c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: benchWorkflow})
	if err != nil {
		return sh, fmt.Errorf("sample a fire: %w", err)
	}
	fired, err := c.Fire(ctx, &wire.FireRequest{TokenID: tok.ID, TransitionID: "flip"})
	if err != nil {
		return sh, fmt.Errorf("sample a fire: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return sh, err
	}
	rd, stream := jsread.New(js, true), subjects.StreamName(benchWorkflow)
	last := func(subject string) (*jetstream.RawStreamMsg, error) {
		m, err := rd.LastOf(ctx, stream, subject)
		if err != nil {
			return nil, fmt.Errorf("read back %s: %w", subject, err)
		}
		return m, nil
	}
	entry, err := last(subjects.TokenHistory(benchWorkflow, tok.ID))
	if err != nil {
		return sh, err
	}
	state, err := last(subjects.TokenState(benchWorkflow, fired.Place, tok.ID))
	if err != nil {
		return sh, err
	}
	ev, err := last(subjects.TransitionEvents(benchWorkflow))
	if err != nil {
		return sh, err
	}
	return shape{entry: entry.Data, state: state.Data, event: ev.Data, eventTTL: ev.Header.Get(jetstream.MsgTTLHeader)}, nil
}

func (g *grouped) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.js.DeleteStream(ctx, groupedStream)
	g.nc.Close()
}

// gToken is a client's token of the grouped baseline, as the client last
// committed it.
type gToken struct {
	id    string
	place int    // 0: place a, 1: place b
	seq   uint64 // the sequence of its state
	rev   uint64
}

func placeName(p int) string { return string(rune('a' + p)) }

func stateSubject(place int, id string) string {
	return groupedPrefix + ".places." + placeName(place) + ".tokens." + id
}

// state is a token's state message: rollup and revision, as ours.
func (g *grouped) state(id string, place int, rev uint64) *nats.Msg {
	m := nats.NewMsg(stateSubject(place, id))
	m.Data = g.shape.state
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Header.Set(subjects.HeaderTokenRev, strconv.FormatUint(rev, 10))
	return m
}

// change is what our committer writes for a fire that moves t to the
// other place: tombstone (compare-and-swap on t's state, rollup, TTL),
// history entry, state, event (message id, TTL).
func (g *grouped) change(t *gToken) []*nats.Msg {
	tomb := nats.NewMsg(stateSubject(t.place, t.id))
	tomb.Header.Set(subjects.HeaderTokenOp, subjects.TokenOpDelete)
	tomb.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	tomb.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(t.seq, 10))
	tomb.Header.Set(jetstream.MsgTTLHeader, tombstoneTTL)
	entry := nats.NewMsg(groupedPrefix + ".history." + t.id)
	entry.Data = g.shape.entry
	ev := nats.NewMsg(groupedPrefix + ".events.transitions")
	ev.Data = g.shape.event
	ev.Header.Set(jetstream.MsgIDHeader, t.id+":"+strconv.FormatUint(t.rev+1, 10))
	if g.shape.eventTTL != "" {
		ev.Header.Set(jetstream.MsgTTLHeader, g.shape.eventTTL)
	}
	return []*nats.Msg{tomb, entry, g.state(t.id, 1-t.place, t.rev+1), ev}
}

// groupedCase is the grouped baseline at one client count: a fresh
// stream, each client's tokens stored in place a, and a running committer.
type groupedCase struct {
	g      *grouped
	toks   [][]gToken // per client; only that client touches its tokens
	c      *bareCommitter
	cancel context.CancelFunc
	done   chan struct{}
}

// start makes a fresh stream, stores tokensPerWorker tokens for each of n
// clients and starts the committer (lingering, or not).
func (g *grouped) start(ctx context.Context, n int, linger bool) (*groupedCase, error) {
	_ = g.js.DeleteStream(ctx, groupedStream)
	st, err := g.js.CreateStream(ctx, g.cfg)
	if err != nil {
		return nil, err
	}
	toks, err := g.seed(ctx, n)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	gc := &groupedCase{g: g, toks: toks, cancel: cancel, done: make(chan struct{}),
		c: &bareCommitter{js: g.js, stream: st, queue: make(chan *gChange, n), last: info.State.LastSeq, lingers: linger}}
	go func() {
		defer close(gc.done)
		gc.c.run(runCtx)
	}()
	return gc, nil
}

// stop stops the committer and returns how many batches and changes it
// committed. The clients have returned by then.
func (gc *groupedCase) stop() (batches, changes int) {
	gc.cancel()
	<-gc.done
	return gc.c.batches, gc.c.changes
}

// op is one change of client w: its next token moves to the other place.
func (gc *groupedCase) op(ctx context.Context, w, i int) error {
	t := &gc.toks[w][i%tokensPerWorker]
	seq, err := gc.c.submit(ctx, gc.g.change(t))
	if err != nil {
		if ctx.Err() == nil {
			gc.g.resync(ctx, t)
		}
		return err
	}
	t.place, t.seq, t.rev = 1-t.place, seq, t.rev+1
	return nil
}

// resync reads t back after a failed change (one whose ack was lost may
// have committed); on failure t stays as it was.
func (g *grouped) resync(ctx context.Context, t *gToken) {
	m, err := jsread.New(g.js, true).LastOf(ctx, groupedStream, groupedPrefix+".places.*.tokens."+t.id)
	if err != nil {
		return
	}
	rev, err := strconv.ParseUint(m.Header.Get(subjects.HeaderTokenRev), 10, 64)
	if err != nil {
		return
	}
	t.place, t.seq, t.rev = 0, m.Sequence, rev
	if strings.Contains(m.Subject, ".places.b.") {
		t.place = 1
	}
}

// seed stores a state in place a for tokensPerWorker tokens of each of n
// clients (creates: compare-and-swap on an empty subject), in atomic
// batches of seedChunk.
func (g *grouped) seed(ctx context.Context, n int) ([][]gToken, error) {
	toks := make([][]gToken, n)
	var all []*gToken
	for w := range toks {
		toks[w] = make([]gToken, tokensPerWorker)
		for k := range toks[w] {
			// 36 characters, as a UUID
			toks[w][k] = gToken{id: fmt.Sprintf("cbbench0-%04x-4000-8000-%012x", n, w*tokensPerWorker+k), rev: 1}
			all = append(all, &toks[w][k])
		}
	}
	for len(all) > 0 {
		chunk := all[:min(seedChunk, len(all))]
		all = all[len(chunk):]
		if err := g.create(ctx, chunk); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
	}
	return toks, nil
}

// create stores chunk's first states in one atomic batch.
func (g *grouped) create(ctx context.Context, chunk []*gToken) error {
	msgs := make([]*nats.Msg, len(chunk))
	for i, t := range chunk {
		msgs[i] = g.state(t.id, 0, t.rev)
		msgs[i].Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, g.js, msgs, jetstreamext.BatchFlowControl{AckTimeout: groupedTimeout})
	if err != nil {
		return err
	}
	for i, t := range chunk {
		t.seq = ack.Sequence - uint64(len(chunk)-1-i) // a batch's messages have consecutive sequences
	}
	return nil
}

// bareCommitter is the simplest group committer: it packs whatever
// changes are queued (at most groupedMax) into one atomic batch pinned on
// the stream's last sequence, waits for the ack and answers each client.
// No retry, no encoding: only what the server costs. When it lingers, it
// first waits as our committer does for the clients it just answered.
type bareCommitter struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	queue   chan *gChange
	lingers bool

	// Owned by run; batches and changes are read after it ends.
	last    uint64        // the stream's last sequence
	expect  int           // changes likely to join the next group
	linger  time.Duration // how long collect waits for them
	batches int           // committed
	changes int
}

// gChange is one client's change waiting for the committer.
type gChange struct {
	msgs []*nats.Msg
	done chan gOutcome // buffered: receives the outcome once
}

// gOutcome is a change's outcome: the sequence of its state, or why not.
type gOutcome struct {
	seq uint64
	err error
}

// submit queues msgs (the state next to last) and waits for the outcome.
func (c *bareCommitter) submit(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	ch := &gChange{msgs: msgs, done: make(chan gOutcome, 1)}
	select {
	case c.queue <- ch:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case o := <-ch.done:
		return o.seq, o.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run commits groups until ctx ends.
func (c *bareCommitter) run(ctx context.Context) {
	for {
		select {
		case first := <-c.queue:
			t0 := time.Now()
			group := c.collect(first)
			c.commit(group)
			if c.lingers { // as our committer
				c.expect = len(group) + len(c.queue)
				c.linger = min(time.Since(t0)/2, time.Millisecond)
			}
		case <-ctx.Done():
			return
		}
	}
}

// collect is first and whatever else is queued, up to groupedMax
// changes, waiting up to c.linger while fewer than c.expect have come.
func (c *bareCommitter) collect(first *gChange) []*gChange {
	group := append(make([]*gChange, 0, 16), first)
	var timeout <-chan time.Time
	for len(group) < groupedMax {
		select {
		case ch := <-c.queue:
			group = append(group, ch)
			continue
		default:
		}
		if len(group) >= c.expect || c.linger <= 0 {
			return group
		}
		if timeout == nil {
			t := time.NewTimer(c.linger)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case ch := <-c.queue:
			group = append(group, ch)
		case <-timeout:
			return group
		}
	}
	return group
}

// commit sends group as one atomic batch and answers each change.
func (c *bareCommitter) commit(group []*gChange) {
	msgs := make([]*nats.Msg, 0, 4*len(group))
	for _, ch := range group {
		msgs = append(msgs, ch.msgs...)
	}
	msgs[0].Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(c.last, 10))
	ctx, cancel := context.WithTimeout(context.Background(), groupedTimeout)
	defer cancel()
	ack, err := jetstreamext.PublishMsgBatch(ctx, c.js, msgs, jetstreamext.BatchFlowControl{AckTimeout: groupedTimeout})
	if err == nil && ack.Sequence != c.last+uint64(len(msgs)) {
		err = fmt.Errorf("batch committed up to sequence %d, want %d", ack.Sequence, c.last+uint64(len(msgs)))
	}
	if err != nil {
		c.refresh()
		for _, ch := range group {
			ch.done <- gOutcome{err: err}
		}
		return
	}
	seq := c.last
	for _, ch := range group {
		seq += uint64(len(ch.msgs))
		ch.done <- gOutcome{seq: seq - 1}
	}
	c.last = ack.Sequence
	c.batches, c.changes = c.batches+1, c.changes+len(group)
}

// refresh reloads the stream's last sequence after a failed batch.
func (c *bareCommitter) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), groupedTimeout)
	defer cancel()
	info, err := c.stream.Info(ctx)
	if err != nil {
		return
	}
	c.last = info.State.LastSeq
}
