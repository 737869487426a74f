package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/jsread"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Batch limits: the server takes at most 1000 messages in an atomic batch
// and a change writes at most 3.
const (
	maxBatchMsgs  = 1000
	maxGroup      = maxBatchMsgs / 3
	tombstoneTTL  = 2 * time.Minute
	commitTimeout = 3 * time.Second // a lost stream leader must not stall a workflow long
	maxLinger     = time.Millisecond
)

// change is one token write waiting to be committed: a create (prevSubject
// empty), a move to another place, or a change in place. The committer fills
// in the stream sequence of the new state before encoding it.
type change struct {
	token       *flow.Token
	prevSubject string // current state subject; "" for a create
	prevSeq     uint64 // its sequence: the per-token compare-and-swap
	event       wire.Event
	prevRecords int             // transition records of the state replaced
	prevHist    *histories      // the histories of the state replaced, when known
	stored      json.RawMessage // the token's JSON as written, set by encode
	hist        *histories      // and its histories
	done        chan error      // buffered; receives the outcome once
}

func (ch *change) subject() string {
	return subjects.TokenState(ch.token.WorkflowID, ch.token.Place, ch.token.ID)
}

func (ch *change) size() int {
	if ch.prevSubject != "" && ch.prevSubject != ch.subject() {
		return 3
	}
	return 2
}

// committer serialises the writes to one workflow stream and commits the
// changes queued while a batch is in flight as one atomic batch (group
// commit): one fsync and one round trip for many changes.
//
// Because it knows the stream's last sequence and pins it with
// Nats-Expected-Last-Sequence, it knows the sequence every message will get
// and writes it into the token and the event before they are stored.
type committer struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	rd       jsread.Reader
	log      zerolog.Logger
	eventTTL time.Duration
	queue    chan *change
	metrics  commitMetrics

	// Owned by the run goroutine only.
	last      uint64        // the stream's last sequence, when lastKnown
	lastKnown bool          // whether last is current
	held      []*change     // changes deferred to the next group
	expect    int           // changes likely to join the next group
	linger    time.Duration // how long collect waits for them
}

func newCommitter(js jetstream.JetStream, st jetstream.Stream, rd jsread.Reader, log zerolog.Logger, eventTTL time.Duration, m commitMetrics) *committer {
	return &committer{
		js: js, stream: st, rd: rd, log: log, eventTTL: eventTTL, metrics: m,
		queue: make(chan *change, 4096),
	}
}

// submit queues ch and waits for its outcome.
func (c *committer) submit(ctx context.Context, ch *change) error {
	ch.done = make(chan error, 1)
	select {
	case c.queue <- ch:
	case <-ctx.Done():
		return fail.New(fail.Unavailable, "token service busy: write not queued")
	}
	select {
	case err := <-ch.done:
		return err
	case <-ctx.Done():
		return fail.New(fail.Timeout, "write outcome unknown: deadline passed while committing; read the token to settle it")
	}
}

// run commits groups until ctx ends.
func (c *committer) run(ctx context.Context) {
	for {
		var first *change
		if len(c.held) > 0 {
			first, c.held = c.held[0], c.held[1:]
		} else {
			select {
			case first = <-c.queue:
			case <-ctx.Done():
				c.drain()
				return
			}
		}
		t0 := time.Now()
		group, err := c.sendGroup(ctx, first)
		c.settle(ctx, group, err)
		// The writers just answered tend to write again at once. Expect
		// them in the next group as well as those queued meanwhile, and
		// let collect wait a little for them: otherwise closed-loop
		// writers split into two cohorts that alternate, each waiting a
		// whole extra batch. A lone writer expects only itself: no wait.
		c.expect = len(group) + len(c.queue)
		c.linger = min(time.Since(t0)/2, maxLinger)
	}
}

// collect builds a group from first and whatever else is queued, waiting up
// to c.linger while fewer than c.expect changes have come: at most one change
// per token and at most maxBatchMsgs messages. join, when set, is called on
// each change as it joins; a change it refuses (failed alone) stays out.
func (c *committer) collect(first *change, join func(*change) bool) []*change {
	group := make([]*change, 0, 16)
	inGroup := make(map[string]bool)
	msgs := 0
	add := func(ch *change) bool { // false: the group is full
		switch {
		case inGroup[ch.token.ID]:
			c.held = append(c.held, ch)
			return true
		case msgs+ch.size() > maxBatchMsgs:
			c.held = append(c.held, ch)
			return false
		case join != nil && !join(ch):
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

var errConflict = fail.New(fail.Conflict, "token changed concurrently; read it again and retry")

// sendGroup starts a batch with first and sends each change that joins the
// group while it forms (collect), then commits the batch with its last
// message: the server prepares the batch (on a file stream, a staging store
// of its own on disk, ~1 ms) while the group forms, instead of after.
// Changes too large to store fail alone. It returns the changes sent.
func (c *committer) sendGroup(ctx context.Context, first *change) ([]*change, error) {
	if !c.lastKnown {
		if _, err := c.refresh(ctx); err != nil {
			return c.collect(first, nil), err
		}
	}
	bp, err := jetstreamext.NewBatchPublisher(c.js, jetstreamext.BatchFlowControl{AckTimeout: commitTimeout})
	if err != nil {
		return c.collect(first, nil), err
	}
	var (
		last    *nats.Msg // the newest message: the commit, unless more follow
		sent    uint64
		sendErr error
		t0      = time.Now()
	)
	group := c.collect(first, func(ch *change) bool {
		msgs, ok := c.encodeChange(ch, c.last+sent+1)
		if !ok {
			return false
		}
		if last != nil {
			msgs = append([]*nats.Msg{last}, msgs...)
		}
		for _, m := range msgs[:len(msgs)-1] {
			if sendErr == nil {
				sendErr = bp.AddMsg(m)
			}
		}
		last = msgs[len(msgs)-1]
		sent += uint64(ch.size())
		return true
	})
	if sendErr != nil || last == nil {
		_ = bp.Discard()
		return group, sendErr
	}
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	ack, err := bp.CommitMsg(ctx, last)
	c.metrics.observe(time.Since(t0), len(group), err)
	if err == nil {
		c.last = ack.Sequence
	}
	return group, err
}

// commit writes group in one batch and settles it.
func (c *committer) commit(ctx context.Context, group []*change) {
	group, err := c.publish(ctx, group)
	c.settle(ctx, group, err)
}

// settle finishes a group whose batch ended with err. A wrong sequence
// means another instance moved the stream on (our sequences were wrong) or
// a token changed (its compare-and-swap failed; the server does not say
// which): it reads the tokens' current sequences, fails the changes that
// lost, and retries the rest, splitting the group when it cannot tell.
func (c *committer) settle(ctx context.Context, group []*change, err error) {
	deadline := time.Now().Add(commitTimeout)
	for {
		if err == nil {
			c.done(group)
			return
		}
		if !jserr.WrongSequence(err) {
			c.lastKnown = false
			c.fail(group, storeError(err))
			return
		}
		moved, rerr := c.refresh(ctx)
		if rerr != nil {
			c.fail(group, rerr)
			return
		}
		live, lost, rerr := c.sortOut(ctx, group)
		switch {
		case rerr != nil:
			c.fail(group, rerr)
			return
		case (moved || len(lost) > 0) && time.Now().Before(deadline):
			c.fail(lost, errConflict)
			group, err = c.publish(ctx, live)
		case len(group) > 1:
			for _, ch := range group {
				c.commit(ctx, []*change{ch})
			}
			return
		default:
			c.fail(group, errConflict)
			return
		}
	}
}

// sortOut splits group into the changes whose compare-and-swap still holds
// and those whose token changed since it was read.
func (c *committer) sortOut(ctx context.Context, group []*change) (live, lost []*change, err error) {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	for _, ch := range group {
		subj := ch.subject()
		if ch.size() == 3 {
			subj = ch.prevSubject // a move's compare-and-swap is on its tombstone
		}
		var cur uint64
		msg, err := c.rd.Last(ctx, c.stream, subj)
		switch {
		case err == nil:
			cur = msg.Sequence
		case !errors.Is(err, jetstream.ErrMsgNotFound):
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

// refresh reloads the stream's last sequence and reports whether it moved.
func (c *committer) refresh(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	info, err := c.stream.Info(ctx)
	if err != nil {
		c.lastKnown = false
		return false, storeError(err)
	}
	moved := !c.lastKnown || info.State.LastSeq != c.last
	c.last, c.lastKnown = info.State.LastSeq, true
	return moved, nil
}

// publish commits the changes of group that fit in a message and returns
// them; a change too large to store fails alone, at once.
func (c *committer) publish(ctx context.Context, group []*change) ([]*change, error) {
	if !c.lastKnown {
		if _, err := c.refresh(ctx); err != nil {
			return group, err
		}
	}
	msgs, group := c.encode(group)
	if len(group) == 0 {
		return group, nil
	}
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	t0 := time.Now()
	ack, err := jetstreamext.PublishMsgBatch(ctx, c.js, msgs,
		jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: commitTimeout})
	c.metrics.observe(time.Since(t0), len(group), err)
	if err != nil {
		return group, err
	}
	c.last = ack.Sequence
	return group, nil
}

func (c *committer) done(group []*change) {
	for _, ch := range group {
		ch.done <- nil
	}
}

func (c *committer) fail(group []*change, err error) {
	for _, ch := range group {
		ch.done <- err
	}
}

func (c *committer) drain() {
	for _, ch := range c.held {
		ch.done <- fail.New(fail.Unavailable, "token service shutting down")
	}
	for {
		select {
		case ch := <-c.queue:
			ch.done <- fail.New(fail.Unavailable, "token service shutting down")
		default:
			return
		}
	}
}

// encode lays out the group's messages (see encodeChange) and returns the
// changes it laid out.
func (c *committer) encode(group []*change) ([]*nats.Msg, []*change) {
	msgs := make([]*nats.Msg, 0, 3*len(group))
	fit := group[:0:0]
	for _, ch := range group {
		m, ok := c.encodeChange(ch, c.last+uint64(len(msgs))+1)
		if ok {
			msgs = append(msgs, m...)
			fit = append(fit, ch)
		}
	}
	return msgs, fit
}

// encodeChange lays out ch's messages from stream sequence seq on, stamps
// that sequence into its token and event, and pins the stream's last
// sequence on the batch's first message. A change that cannot be encoded,
// or whose token is too large for a message (which would fail the whole
// batch), fails alone at once: ok is false.
func (c *committer) encodeChange(ch *change, seq uint64) (msgs []*nats.Msg, ok bool) {
	next := seq
	if ch.size() == 3 {
		next++
	}
	stampSequence(ch, next, time.Now().UTC())
	state, err := c.stateMsg(ch)
	if limit := c.js.Conn().MaxPayload() - headerRoom; err == nil && int64(len(state.Data)) > limit {
		err = fail.New(fail.BadInput, "token %s too large to store: %d bytes of JSON (its data and history; the history grows with every change), the limit is %d",
			ch.token.ID, len(state.Data), limit)
	}
	var ev *nats.Msg
	if err == nil {
		ev, err = c.eventMsg(ch)
	}
	if err != nil {
		ch.done <- err
		return nil, false
	}
	if ch.size() == 3 {
		msgs = append(msgs, tombstone(ch))
	}
	msgs = append(msgs, state, ev)
	if seq == c.last+1 {
		msgs[0].Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(c.last, 10))
	}
	return msgs, true
}

// headerRoom is what a state message's headers may take of max_payload.
const headerRoom = 4 << 10

// stampSequence writes the sequence of ch's new state into the token, into
// the transition record the change appended (an update appends none, and
// the records before are stored as they are) and into its event.
func stampSequence(ch *change, seq uint64, now time.Time) {
	t := ch.token
	t.NatsSequence, t.NatsSubject, t.NatsTimestamp = seq, ch.subject(), now
	if n := len(t.TransitionHistory); n > ch.prevRecords {
		rec := &t.TransitionHistory[n-1]
		rec.NatsSequence = seq
		if rec.TransitionID == "create" {
			rec.Metadata = createRecordMetadata(t.WorkflowID, seq)
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

func (c *committer) stateMsg(ch *change) (*nats.Msg, error) {
	data, hist, err := encodeToken(ch.token, ch.prevHist)
	if err != nil {
		return nil, fail.Wrap(fail.Internal, err, "encode token")
	}
	ch.stored, ch.hist = data, hist
	m := nats.NewMsg(ch.subject())
	m.Data = data
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Header.Set(subjects.HeaderTokenRev, strconv.FormatUint(ch.token.Revision, 10))
	if ch.size() == 2 { // create (CAS 0) or change in place (CAS on this subject)
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(ch.prevSeq, 10))
	}
	return m, nil
}

func (c *committer) eventMsg(ch *change) (*nats.Msg, error) {
	data, err := json.Marshal(ch.event)
	if err != nil {
		return nil, fail.Wrap(fail.Internal, err, "encode event")
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
