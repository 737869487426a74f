package store

// A change's life, from a writer to the stream and back:
//
//  1. submit: the writer queues its change on its workflow's committer and
//     waits for one outcome.
//  2. form: the committer's run loop takes the first queued change and
//     forms a group around it (collect): the changes queued meanwhile, at
//     most one per token and maxBatchMsgs messages, waiting up to a linger
//     for the writers it expects.
//  3. encode: each change that joins is laid out as its messages (encode):
//     [tombstone of the old place], [history entry], state, event, with
//     the stream sequence each will get, since the batch pins the stream's
//     last sequence. A change that cannot be encoded is rejected, alone.
//  4. send: the messages of each joining change go out at once on the
//     group's atomic batch (streamed: the server stages the batch while the
//     group still forms), and the last message commits it. One send path
//     serves fresh groups and retries alike.
//  5. settle: the outcome of every sent change — committed, or why not.
//     When the batch failed on a sequence (another instance wrote to the
//     stream, or a token's compare-and-swap failed), settle reads which
//     changes lost, fails those with CONFLICT and sends the rest again
//     with the stream's new last sequence, until commitTimeout; a refusal
//     it cannot attribute (nothing lost, the stream did not move) fails
//     the group with CONFLICT (writers then read the token and retry).
//  6. deliver: each change gets exactly one outcome on its done channel.

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Batch limits: the server takes at most 1000 messages in an atomic batch
// and a change writes at most 4, plus two per search attribute (a group
// counts its messages).
const (
	maxBatchMsgs  = 1000
	maxGroup      = maxBatchMsgs / 4
	tombstoneTTL  = 2 * time.Minute
	commitTimeout = 3 * time.Second // a lost stream leader must not stall a workflow long
	maxLinger     = time.Millisecond
)

// change is one token write waiting to be committed: a create (prevSubject
// empty), a move to another place (or, archived, out of every place), a
// change in place, or a removal (the first step of a delete), with the
// history entry it adds (none for an update or a removal); or the index
// entries of a token that has not changed (reindex).
type change struct {
	token       *flow.Token
	prev        *flow.Token            // the state it replaces, as read (nil for a create)
	prevAttrs   []flow.SearchAttribute // the attributes prev's index entries follow (its IndexVersion's)
	entry       *flow.Entry            // nil: the change adds no history
	prevSubject string                 // current state subject; "" for a create
	prevSeq     uint64                 // its sequence: the per-token compare-and-swap
	remove      bool                   // a removal: a tombstone on prevSubject and the event, no state
	reindex     []string               // the paths of the attributes whose entries a reindex writes; nothing else is written
	reindexFor  int                    // the version that declares them: a committer that knows an older one reads it first
	event       wire.Event
	index       []*nats.Msg // index entries written and tombstoned, after the event (set by the committer: index)
	indexGen    int         // the committer's attrsGen index was laid out with
	extra       []extraMsg  // timer messages written before the state (timers.go)
	stored      []byte      // the state as written, set by encode
	done        chan error  // buffered; receives the outcome once
}

// subject is where the change writes the token's state: its place, or
// the archive once it is archived.
func (ch *change) subject() string {
	if ch.token.ArchivedAt != nil {
		return subjects.ArchivedToken(ch.token.WorkflowID, ch.token.ID)
	}
	return subjects.TokenState(ch.token.WorkflowID, ch.token.Place, ch.token.ID)
}

// moves reports that the change leaves a tombstone on the subject the
// token's state was on.
func (ch *change) moves() bool {
	return ch.remove || (ch.prevSubject != "" && ch.prevSubject != ch.subject())
}

// size is how many messages the change writes.
func (ch *change) size() int {
	if ch.reindex != nil {
		return len(ch.index)
	}
	if ch.remove {
		return 2 + len(ch.index) + len(ch.extra) // tombstone, event, index tombstones (and timer messages)
	}
	n := 2 + len(ch.index) // state, event and index entries
	if ch.moves() {
		n++
	}
	if ch.entry != nil {
		n++
	}
	return n + len(ch.extra)
}

// outcome is what a change's writer is told: nil when it committed.
type outcome struct {
	ch  *change
	err error
}

// committer serialises the writes to one workflow stream and commits the
// changes queued while a batch is in flight as one atomic batch (group
// commit): one fsync and one round trip for many changes.
type committer struct {
	out      batcher
	log      zerolog.Logger
	eventTTL time.Duration
	maxBytes func() int64 // the largest state message the server takes
	queue    chan *change
	stopped  chan struct{} // closed once run has ended and failed what was queued
	metrics  commitMetrics
	evicted  atomic.Bool // stopped because its workflow was deleted or created again, not by shutdown

	// Owned by the run goroutine only.
	last      uint64                 // the stream's last sequence, when lastKnown
	lastKnown bool                   // whether last is current
	version   int                    // the latest definition version, read after last
	attrs     []flow.SearchAttribute // its search attributes
	attrsGen  int                    // counts the reads of them
	held      []*change              // changes deferred to the next group
	expect    int                    // changes likely to join the next group
	linger    time.Duration          // how long collect waits for them
}

func newCommitter(out batcher, log zerolog.Logger, eventTTL time.Duration, maxBytes func() int64, m commitMetrics) *committer {
	return &committer{out: out, log: log, eventTTL: eventTTL, maxBytes: maxBytes, metrics: m,
		queue: make(chan *change, 4096), stopped: make(chan struct{})}
}

var (
	errStopping = fail.New(fail.Unavailable, "token service shutting down")
	errEvicted  = fail.New(fail.Unavailable, "the workflow was deleted (or deleted and created again) while this write waited: retry")
	// ErrEvicted is the error of a write whose workflow was dropped from
	// the cache (deleted, or deleted and created again) before it
	// committed: nothing was written; run it again, on the workflow as it
	// is now.
	ErrEvicted = errEvicted
)

// stopErr is what the writers the committer never served are told.
func (c *committer) stopErr() error {
	if c.evicted.Load() {
		return errEvicted
	}
	return errStopping
}

// submit queues ch and waits for its outcome.
func (c *committer) submit(ctx context.Context, ch *change) error {
	ch.done = make(chan error, 1)
	select {
	case c.queue <- ch:
	case <-c.stopped:
		return c.stopErr()
	case <-ctx.Done():
		return fail.New(fail.Unavailable, "token service busy: write not queued")
	}
	select {
	case err := <-ch.done:
		return err
	case <-c.stopped: // queued after the committer's last drain: never sent
		select {
		case err := <-ch.done:
			return err
		default:
			return c.stopErr()
		}
	case <-ctx.Done():
		return fail.New(fail.Timeout, "write outcome unknown: deadline passed while committing; read the token to settle it")
	}
}

// run commits groups until ctx ends.
func (c *committer) run(ctx context.Context) {
	for {
		first, ok := c.next(ctx)
		if !ok {
			c.drain()
			return
		}
		t0 := time.Now()
		sent, rejected, err := c.send(ctx, c.fresh(first))
		settled := c.settle(ctx, sent, err)
		deliver(rejected)
		deliver(settled)
		// The writers just answered tend to write again at once. Expect
		// them in the next group as well as those queued meanwhile, and
		// let collect wait a little for them: otherwise closed-loop
		// writers split into two cohorts that alternate, each waiting a
		// whole extra batch. A lone writer expects only itself: no wait.
		c.expect = len(sent) + len(c.queue)
		c.linger = min(time.Since(t0)/2, maxLinger)
	}
}

// next returns the first change of the next group.
func (c *committer) next(ctx context.Context) (*change, bool) {
	if len(c.held) > 0 {
		first := c.held[0]
		c.held = c.held[1:]
		return first, true
	}
	select {
	case first := <-c.queue:
		return first, true
	case <-ctx.Done():
		return nil, false
	}
}

// source forms a group, calling join on each change as it joins; a change
// join refuses stays out. It returns the changes that joined.
type source func(join func(*change) bool) []*change

// fresh forms a group around first from the queue (collect).
func (c *committer) fresh(first *change) source {
	return func(join func(*change) bool) []*change { return c.collect(first, join) }
}

// again forms a group of changes already formed once.
func again(group []*change) source {
	return func(join func(*change) bool) []*change {
		out := group[:0:0]
		for _, ch := range group {
			if join(ch) {
				out = append(out, ch)
			}
		}
		return out
	}
}

// collect builds a group from first and whatever else is queued, waiting up
// to c.linger while fewer than c.expect changes have come: at most one change
// per token and at most maxBatchMsgs messages.
func (c *committer) collect(first *change, join func(*change) bool) []*change {
	group := make([]*change, 0, 16)
	inGroup := make(map[string]bool)
	msgs := 0
	add := func(ch *change) bool { // false: the group is full
		c.index(ch)
		switch {
		case inGroup[ch.token.ID]:
			c.held = append(c.held, ch)
			return true
		case msgs+ch.size() > maxBatchMsgs:
			c.held = append(c.held, ch)
			return false
		case !join(ch):
			return true
		}
		inGroup[ch.token.ID] = true
		msgs += ch.size()
		group = append(group, ch)
		return true
	}
	add(first)
	var timeout <-chan time.Time
	for len(group) < maxGroup {
		select {
		case ch := <-c.queue:
			if !add(ch) {
				return group
			}
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
			if !add(ch) {
				return group
			}
		case <-timeout:
			return group
		}
	}
	return group
}

// send forms a group from src, encoding each change as it joins and
// streaming its messages on one atomic batch, then commits the batch with
// its last message. It returns the changes sent, those encode rejected
// (with why), and how the batch ended.
func (c *committer) send(ctx context.Context, src source) (sent []*change, rejected []outcome, err error) {
	if !c.lastKnown {
		if err := c.refresh(ctx); err != nil {
			return src(func(*change) bool { return true }), nil, err
		}
	}
	b, err := c.out.batch()
	if err != nil {
		return src(func(*change) bool { return true }), nil, err
	}
	var (
		last    *nats.Msg // the newest message: the commit, unless more follow
		n       uint64    // messages laid out
		sendErr error
		t0      = time.Now()
	)
	sent = src(func(ch *change) bool {
		c.index(ch)
		if ch.reindexFor > c.version { // its attributes may be unknown here, and no batch would show it
			c.lastKnown = false
			rejected = append(rejected, outcome{ch, errStaleVersion})
			return false
		}
		msgs, err := c.encode(ch, c.last+n+1)
		if err != nil || len(msgs) == 0 { // nothing to write: a reindex of a token without values is done
			rejected = append(rejected, outcome{ch, err})
			return false
		}
		if last != nil {
			msgs = append([]*nats.Msg{last}, msgs...)
		}
		for _, m := range msgs[:len(msgs)-1] {
			if sendErr == nil {
				sendErr = b.add(m)
			}
		}
		last, n = msgs[len(msgs)-1], n+uint64(ch.size())
		return true
	})
	if sendErr != nil || last == nil {
		b.discard()
		return sent, rejected, sendErr
	}
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	seq, err := b.commit(ctx, last)
	c.metrics.observe(time.Since(t0), len(sent), err)
	if err == nil {
		c.last = seq
	}
	return sent, rejected, err
}

var (
	errStaleVersion   = fail.New(fail.Unavailable, "the workflow has a version this instance has not read yet: retry")
	errConflict       = fail.New(fail.Conflict, "token changed concurrently; read it again and retry")
	errDuplicateEvent = fail.New(fail.Unavailable, "a token with this id was deleted within the duplicate window (--dedupe-window) and its events' ids are still remembered: retry after the window")
)

// settle returns the outcome of each change of a group sent in a batch
// that ended with err. On a wrong sequence it fails the changes whose
// token changed since it was read and sends the others again, until
// commitTimeout.
func (c *committer) settle(ctx context.Context, sent []*change, err error) []outcome {
	var out []outcome
	deadline := time.Now().Add(commitTimeout)
	for {
		switch {
		case err == nil:
			return append(out, all(sent, nil)...)
		case jserr.DuplicateMsgID(err) && len(sent) > 1:
			// One change's event id was stored within the duplicate window
			// (a token deleted and created again under the same id): the
			// batch wrote nothing. Send each change alone, so only that
			// one fails.
			for _, ch := range sent {
				one, rejected, err := c.send(ctx, again([]*change{ch}))
				out = append(out, rejected...)
				out = append(out, c.settle(ctx, one, err)...)
			}
			return out
		case jserr.DuplicateMsgID(err):
			return append(out, all(sent, errDuplicateEvent)...)
		case !jserr.WrongSequence(err):
			c.lastKnown = false
			return append(out, all(sent, storeError(err))...)
		case time.Now().After(deadline):
			return append(out, all(sent, errConflict)...)
		}
		before := c.last
		if rerr := c.refresh(ctx); rerr != nil {
			return append(out, all(sent, rerr)...)
		}
		live, lost, rerr := c.sortOut(ctx, sent)
		if rerr != nil {
			return append(out, all(sent, rerr)...)
		}
		if len(lost) == 0 && c.last == before { // refused for a reason no read shows: let the writers read again
			return append(out, all(sent, errConflict)...)
		}
		out = append(out, all(lost, errConflict)...)
		var rejected []outcome
		sent, rejected, err = c.send(ctx, again(live))
		out = append(out, rejected...)
	}
}

// all is the same outcome for every change of group.
func all(group []*change, err error) []outcome {
	out := make([]outcome, len(group))
	for i, ch := range group {
		out[i] = outcome{ch, err}
	}
	return out
}

// deliver tells each writer its outcome.
func deliver(outcomes []outcome) {
	for _, o := range outcomes {
		o.ch.done <- o.err
	}
}

// sortOut splits group into the changes whose compare-and-swap still holds
// and those whose token changed since it was read.
func (c *committer) sortOut(ctx context.Context, group []*change) (live, lost []*change, err error) {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	for _, ch := range group {
		subj := ch.subject()
		switch {
		case ch.moves():
			subj = ch.prevSubject // a move's compare-and-swap is on its tombstone
		case ch.prevSubject == "" && ch.entry != nil:
			subj = subjects.TokenHistory(ch.token.WorkflowID, ch.token.ID) // a create's, on its history
		}
		cur, err := c.out.lastOf(ctx, subj)
		if err != nil {
			return nil, nil, storeError(err)
		}
		if cur == ch.prevSeq {
			live = append(live, ch)
		} else {
			lost = append(lost, ch)
		}
	}
	return live, lost, nil
}

// refresh reloads the stream's last sequence and then the latest
// version's search attributes: a batch pinned to that sequence commits
// only if no version was stored since they were read.
func (c *committer) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	last, err := c.out.lastSeq(ctx)
	if err != nil {
		c.lastKnown = false
		return storeError(err)
	}
	version, attrs, err := c.out.searchAttributes(ctx)
	if err != nil {
		c.lastKnown = false
		return err
	}
	c.last, c.lastKnown = last, true
	c.version, c.attrs, c.attrsGen = version, attrs, c.attrsGen+1
	return nil
}

// index lays out ch's index entries with the attributes last read, unless
// it already has.
func (c *committer) index(ch *change) {
	if ch.indexGen == c.attrsGen {
		return
	}
	ch.indexGen = c.attrsGen
	switch {
	case ch.reindex != nil:
		ch.index = indexMsgs(nil, nil, only(c.attrs, ch.reindex), ch.token)
	case ch.remove:
		ch.index = indexMsgs(ch.prevAttrs, ch.prev, c.attrs, nil)
	default:
		ch.index = indexMsgs(ch.prevAttrs, ch.prev, c.attrs, ch.token)
		ch.token.IndexVersion = c.version
	}
}

// drain fails what is left when the committer stops, and marks it
// stopped: later writers are told at once.
func (c *committer) drain() {
	defer close(c.stopped)
	deliver(all(c.held, c.stopErr()))
	for {
		select {
		case ch := <-c.queue:
			deliver(all([]*change{ch}, c.stopErr()))
		default:
			return
		}
	}
}

// encode lays out ch's messages from stream sequence seq on and stamps
// the sequence of its new state into its token, its history entry and its
// event. The first message of a batch pins the stream's last sequence. A
// change that cannot be encoded, or whose state is too large for a
// message (which would fail the whole batch), is rejected with why.
func (c *committer) encode(ch *change, seq uint64) ([]*nats.Msg, error) {
	if ch.reindex != nil {
		return c.reindexMsgs(ch, seq), nil
	}
	var msgs []*nats.Msg
	if ch.moves() {
		msgs = append(msgs, tombstone(ch))
	}
	stateSeq := seq + uint64(ch.size()-len(ch.index)) - 2 // a removal's: its tombstone's
	stamp(ch, stateSeq, time.Now().UTC())
	if ch.entry != nil {
		m, err := c.entryMsg(ch, stateSeq)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	for _, x := range ch.extra {
		msgs = append(msgs, x.msg())
	}
	if !ch.remove {
		state, err := c.stateMsg(ch)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, state)
	}
	ev, err := c.eventMsg(ch)
	if err != nil {
		return nil, err
	}
	msgs = append(msgs, ev)
	msgs = append(msgs, ch.index...)
	if seq == c.last+1 {
		msgs[0].Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(c.last, 10))
	}
	return msgs, nil
}

// reindexMsgs are a reindex's entries, from stream sequence seq on; the
// first carries the compare-and-swap on the token's state, so they are
// written only if the token has not changed since it was read (a change
// writes its own entries).
func (c *committer) reindexMsgs(ch *change, seq uint64) []*nats.Msg {
	if len(ch.index) == 0 {
		return nil
	}
	first := ch.index[0]
	first.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, ch.prevSubject)
	first.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(ch.prevSeq, 10))
	if seq == c.last+1 {
		first.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(c.last, 10))
	} else {
		first.Header.Del(jetstream.ExpectedLastSeqHeader)
	}
	return ch.index
}

// headerRoom is what a state message's headers may take of max_payload.
const headerRoom = 4 << 10

// stamp writes the sequence of ch's new state into its token, its
// history entry's record and its event.
func stamp(ch *change, seq uint64, now time.Time) {
	t := ch.token
	t.NatsSequence, t.NatsSubject, t.NatsTimestamp = seq, ch.subject(), now
	if ch.remove {
		t.NatsSubject = ch.prevSubject
	}
	if e := ch.entry; e != nil {
		e.Record.NatsSequence = seq
		if e.Record.TransitionID == "create" {
			e.Record.Metadata = createRecordMetadata(t.WorkflowID, seq)
		}
	}
	ch.event.NatsSequence = seq
	ch.event.Revision = t.Revision
}

func createRecordMetadata(wf string, seq uint64) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"event_type": wire.EventTokenCreated, "workflow_id": wf, "nats_sequence": seq})
	return b
}

func tombstone(ch *change) *nats.Msg {
	m := nats.NewMsg(ch.prevSubject)
	m.Header.Set(subjects.HeaderTokenOp, subjects.TokenOpDelete)
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(ch.prevSeq, 10))
	m.Header.Set(jetstream.MsgTTLHeader, tombstoneTTL.String())
	return m
}

// entryMsg is ch's history entry, the token's entry number Records.
func (c *committer) entryMsg(ch *change, stateSeq uint64) (*nats.Msg, error) {
	data, err := json.Marshal(toStoredEntry(ch.entry, ch.token.Records, stateSeq))
	if err != nil {
		return nil, fail.Wrap(fail.Internal, err, "encode history entry of token "+ch.token.ID)
	}
	if limit := c.maxBytes() - headerRoom; int64(len(data)) > limit {
		return nil, fail.New(fail.BadInput, "the history entry of this change of token %s takes %d bytes (the fire's data), the limit is %d",
			ch.token.ID, len(data), limit)
	}
	m := nats.NewMsg(subjects.TokenHistory(ch.token.WorkflowID, ch.token.ID))
	m.Data = data
	if ch.prevSubject == "" {
		// A create's compare-and-swap: no token with this id, in any place
		// (its state's own check covers only the place it is created in).
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	}
	return m, nil
}

func (c *committer) stateMsg(ch *change) (*nats.Msg, error) {
	data, err := encodeState(ch.token)
	if err != nil {
		return nil, err
	}
	if limit := c.maxBytes() - headerRoom; int64(len(data)) > limit {
		return nil, fail.New(fail.BadInput, "token %s too large to store: %d bytes of JSON (its data and metadata), the limit is %d",
			ch.token.ID, len(data), limit)
	}
	ch.stored = data
	m := nats.NewMsg(ch.subject())
	m.Data = data
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Header.Set(subjects.HeaderTokenRev, strconv.FormatUint(ch.token.Revision, 10))
	if !ch.moves() { // create (CAS 0) or change in place (CAS on this subject)
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(ch.prevSeq, 10))
	}
	return m, nil
}

func (c *committer) eventMsg(ch *change) (*nats.Msg, error) {
	data, err := json.Marshal(ch.event)
	if err != nil {
		return nil, fail.Wrap(fail.Internal, err, "encode event of token "+ch.token.ID)
	}
	subj := subjects.LifecycleEvents(ch.token.WorkflowID)
	if ch.event.EventType == wire.EventTokenTransitioned {
		subj = subjects.TransitionEvents(ch.token.WorkflowID)
	}
	m := nats.NewMsg(subj)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, ch.token.ID+":"+strconv.FormatUint(ch.token.Revision, 10))
	if c.eventTTL >= time.Second {
		m.Header.Set(jetstream.MsgTTLHeader, c.eventTTL.String())
	}
	return m, nil
}
