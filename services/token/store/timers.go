package store

// Timers in storage. A change that puts a token into a place with timer
// transitions writes, in its own atomic batch (before the state):
//
//   - per new timer, a scheduled message on
//     workflows.<wf>.timers.<token>.<transition>.<enteredRevision> with
//     Nats-Schedule: @at <due> and Nats-Schedule-Target: the matching
//     workflows.<wf>.due.… subject (nats-server message scheduling: the
//     server publishes the body to the target when it falls due, into the
//     same stream, and purges the schedule), and its timer_set event;
//   - per timer of the old entry that the new state no longer has, a
//     cancel: a message on its schedule subject that rolls the schedule
//     up (the server forgets a schedule whose subject's last message has
//     none) and expires after tombstoneTTL;
//   - for a fire made by a timer (WithTimerFire), a cancel of the due
//     message (rolled up, expiring) and the timer_fired event.
//
// So setting, cancelling and consuming a timer commit exactly when the
// change does: a crash leaves either both or neither. The token's state
// lists its pending timers (flow.Token.Timers), computed from its place,
// its entry and its definition; the previous state's list tells which
// schedules to cancel.

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// extraMsg is a message a change writes besides its own (timers); encode
// builds a fresh *nats.Msg from it each time the change is sent.
type extraMsg struct {
	subject string
	header  nats.Header
	data    []byte
}

func (x extraMsg) msg() *nats.Msg {
	m := nats.NewMsg(x.subject)
	for k, v := range x.header {
		m.Header[k] = append([]string(nil), v...)
	}
	m.Data = x.data
	return m
}

// timerState is what the store knows about the workflows whose streams
// take schedules.
type timerState struct {
	mu      sync.Mutex
	enabled map[string]bool // workflow id → stream allows message schedules
	notify  func(workflowID string)
}

// OnTimers registers f, called (once per workflow and Store, outside any
// lock) when a workflow is found to have timers: the token service then
// consumes its due timers.
func (s *Store) OnTimers(f func(workflowID string)) {
	s.timers.mu.Lock()
	s.timers.notify = f
	s.timers.mu.Unlock()
}

// timerFireKey carries a TimerFire through a change's context.
type timerFireKey struct{}

// TimerFire describes the due timer a fire is made for: its change also
// consumes the due message and records timer_fired.
type TimerFire struct {
	Due wire.TimerDue
	Now time.Time
}

// WithTimerFire marks ctx as the context of the fire of due timer d.
func WithTimerFire(ctx context.Context, d wire.TimerDue, now time.Time) context.Context {
	return context.WithValue(ctx, timerFireKey{}, TimerFire{Due: d, Now: now})
}

func timerFireFrom(ctx context.Context, tokenID string) (TimerFire, bool) {
	f, ok := ctx.Value(timerFireKey{}).(TimerFire)
	return f, ok && f.Due.TokenID == tokenID
}

// planTimers sets ch's token's pending timers and lays out the timer
// messages ch writes (see the top of this file). prev is the state the
// change replaces (nil for a create).
func (s *Store) planTimers(ctx context.Context, wf *workflow, prev *flow.Token, ch *change) error {
	next := ch.token
	fire, firing := timerFireFrom(ctx, next.ID)
	m, err := s.machine(ctx, wf, next.WorkflowVersion)
	if err != nil {
		return err
	}
	next.Timers = m.Timers(next)
	if next.ArchivedAt != nil { // an archived token can no longer change: its timers are cancelled
		next.Timers = nil
	}
	var old []flow.Timer
	if prev != nil {
		old = prev.Timers
	}
	if len(next.Timers) == 0 && len(old) == 0 && !firing {
		return nil
	}
	if err := s.enableTimers(ctx, wf); err != nil {
		return err
	}
	wfID, tok := next.WorkflowID, next.ID
	sched := func(t flow.Timer) string { return subjects.TimerSchedule(wfID, tok, t.TransitionID, t.Revision) }
	was := make(map[string]time.Time, len(old))
	for _, t := range old {
		was[sched(t)] = t.DueAt
	}
	now := make(map[string]bool, len(next.Timers))
	var extra []extraMsg
	for _, t := range next.Timers {
		subj := sched(t)
		now[subj] = true
		if due, ok := was[subj]; ok && due.Equal(t.DueAt) {
			continue
		}
		body, _ := json.Marshal(wire.TimerDue{WorkflowID: wfID, TokenID: tok, TransitionID: t.TransitionID, Revision: t.Revision, DueAt: t.DueAt})
		extra = append(extra, extraMsg{subject: subj, data: body, header: nats.Header{
			jetstream.ScheduleHeader:       {"@at " + t.DueAt.UTC().Format(time.RFC3339Nano)},
			jetstream.ScheduleTargetHeader: {subjects.TimerDue(wfID, tok, t.TransitionID, t.Revision)},
		}})
		extra = append(extra, s.timerEvent(next, wire.EventTimerSet, t, "", 0))
	}
	for _, t := range old {
		subj := sched(t)
		spent := firing && t.TransitionID == fire.Due.TransitionID && t.Revision == fire.Due.Revision // the server purged it when it fell due
		if !now[subj] && !spent {
			extra = append(extra, cancelMsg(subj))
		}
	}
	if firing {
		d := fire.Due
		extra = append(extra, cancelMsg(subjects.TimerDue(wfID, tok, d.TransitionID, d.Revision)))
		lag := max(fire.Now.Sub(d.DueAt), 0)
		extra = append(extra, s.timerEvent(next, wire.EventTimerFired,
			flow.Timer{TransitionID: d.TransitionID, DueAt: d.DueAt, Revision: d.Revision}, "", lag.Milliseconds()))
	}
	ch.extra = extra
	return nil
}

// cancelMsg rolls up whatever subj holds and expires itself.
func cancelMsg(subj string) extraMsg {
	return extraMsg{subject: subj, header: nats.Header{
		subjects.HeaderTokenOp: {subjects.TokenOpDelete},
		jetstream.MsgRollup:    {jetstream.MsgRollupSubject},
		jetstream.MsgTTLHeader: {tombstoneTTL.String()},
	}}
}

// timerEvent is a timer event of token t (deduplicated by its message id).
func (s *Store) timerEvent(t *flow.Token, typ string, tm flow.Timer, reason string, lagMs int64) extraMsg {
	by := wire.TimerTriggeredBy
	ev := wire.TimerEvent{Event: wire.Event{EventType: typ, TokenID: t.ID, WorkflowID: t.WorkflowID, Place: t.Place,
		TransitionID: tm.TransitionID, Timestamp: time.Now().UTC(), TriggeredBy: &by, Revision: t.Revision},
		DueAt: tm.DueAt, Reason: reason, LagMs: lagMs}
	body, _ := json.Marshal(ev)
	h := nats.Header{jetstream.MsgIDHeader: {t.ID + ":" + strconv.FormatUint(tm.Revision, 10) + ":" + typ + ":" + tm.TransitionID +
		":" + strconv.FormatUint(t.Revision, 10)}}
	if s.opts.EventTTL >= time.Second {
		h.Set(jetstream.MsgTTLHeader, s.opts.EventTTL.String())
	}
	return extraMsg{subject: subjects.TimerEvents(t.WorkflowID), header: h, data: body}
}

// enableTimers makes sure wf's stream takes message schedules, updating
// its configuration once if not (the server refuses schedules on a
// stream with DiscardNew, so the stream discards old instead: it has no
// limits, so nothing is ever discarded either way).
func (s *Store) enableTimers(ctx context.Context, wf *workflow) error {
	s.timers.mu.Lock()
	on := s.timers.enabled[wf.id]
	s.timers.mu.Unlock()
	if on {
		return nil
	}
	info, err := wf.stream.Info(ctx)
	if err != nil {
		return storeError(err)
	}
	if cfg := info.Config; !cfg.AllowMsgSchedules {
		if cfg.MaxMsgs > 0 || cfg.MaxBytes > 0 || cfg.MaxAge > 0 || cfg.MaxMsgsPerSubject > 0 {
			return fail.New(fail.Internal, "workflow %s: its stream has limits that could drop state; timers need a stream without limits", wf.id)
		}
		cfg.AllowMsgSchedules, cfg.Discard = true, jetstream.DiscardOld
		if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
			return storeError(err)
		}
		s.log.Info().Str("workflow", wf.id).Msg("workflow stream now takes message schedules (timers)")
	}
	s.timersEnabled(wf.id)
	return nil
}

// timersEnabled records that workflow id has timers and tells OnTimers.
func (s *Store) timersEnabled(id string) {
	s.timers.mu.Lock()
	if s.timers.enabled == nil {
		s.timers.enabled = map[string]bool{}
	}
	first := !s.timers.enabled[id]
	s.timers.enabled[id] = true
	notify := s.timers.notify
	s.timers.mu.Unlock()
	if first && notify != nil {
		notify(id)
	}
}

// TimerWorkflows returns the workflows whose streams take schedules (so
// may hold timers): one stream listing, not a scan of tokens.
func (s *Store) TimerWorkflows(ctx context.Context) ([]string, error) {
	var ids []string
	l := s.js.ListStreams(ctx, jetstream.WithStreamListSubject("workflows.>"))
	for info := range l.Info() {
		if info.Config.AllowMsgSchedules {
			if id, ok := workflowOfStream(info.Config.Name); ok {
				ids = append(ids, id)
			}
		}
	}
	if err := l.Err(); err != nil {
		return ids, storeError(err)
	}
	for _, id := range ids {
		s.timersEnabled(id)
	}
	return ids, nil
}

func workflowOfStream(name string) (string, bool) {
	const prefix = "WORKFLOW_"
	if len(name) <= len(prefix) || name[:len(prefix)] != prefix {
		return "", false
	}
	return name[len(prefix):], true
}

// Timer consumer settings: a due timer not acknowledged within
// TimerAckWait (its instance died) is delivered again.
const (
	TimerAckWait       = 10 * time.Second
	timerMaxAckPending = 4096
)

// TimerConsumer binds (creating it if needed) the durable pull consumer
// of workflow id's due timers, shared by every token-service instance.
func (s *Store) TimerConsumer(ctx context.Context, id string) (jetstream.Consumer, error) {
	c, err := s.js.CreateOrUpdateConsumer(ctx, subjects.StreamName(id), jetstream.ConsumerConfig{
		Durable:       subjects.TimerConsumer,
		Description:   "Circuit Breaker: due timers, fired by the token service",
		FilterSubject: subjects.AllTimersDue(id),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       TimerAckWait,
		MaxAckPending: timerMaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      0,
	})
	if err != nil {
		return nil, storeError(err)
	}
	return c, nil
}

// SettleDue consumes a due message that fired nothing (the timer was
// stale): rolls it up with an expiring marker.
func (s *Store) SettleDue(ctx context.Context, d wire.TimerDue) error {
	x := cancelMsg(subjects.TimerDue(d.WorkflowID, d.TokenID, d.TransitionID, d.Revision))
	_, err := s.js.PublishMsg(ctx, x.msg())
	return storeError(err)
}

// TimerSkipped records that due timer d did not fire, and why (its
// guards failed), then consumes its due message. The event's message id
// makes a repeat after a crash between the two writes a no-op.
func (s *Store) TimerSkipped(ctx context.Context, t *flow.Token, d wire.TimerDue, reason string) error {
	ev := s.timerEvent(t, wire.EventTimerSkipped, flow.Timer{TransitionID: d.TransitionID, DueAt: d.DueAt, Revision: d.Revision}, reason, 0)
	if _, err := s.js.PublishMsg(ctx, ev.msg()); err != nil {
		return storeError(err)
	}
	return s.SettleDue(ctx, d)
}

// Reschedule writes timer d again for dueAt (it fell due early: its time
// moved later while it fired) and consumes its due message.
func (s *Store) Reschedule(ctx context.Context, d wire.TimerDue, dueAt time.Time) error {
	d.DueAt = dueAt
	body, _ := json.Marshal(d)
	m := nats.NewMsg(subjects.TimerSchedule(d.WorkflowID, d.TokenID, d.TransitionID, d.Revision))
	m.Data = body
	m.Header.Set(jetstream.ScheduleHeader, "@at "+dueAt.UTC().Format(time.RFC3339Nano))
	m.Header.Set(jetstream.ScheduleTargetHeader, subjects.TimerDue(d.WorkflowID, d.TokenID, d.TransitionID, d.Revision))
	if _, err := s.js.PublishMsg(ctx, m); err != nil {
		return storeError(err)
	}
	return s.SettleDue(ctx, d)
}

// OverdueTimers returns (at most limit of) the due messages of workflow
// id still stored that fell due before before: due timers that no
// consumer settled. It reads only the due subjects, which hold the
// backlog of due timers and their removal markers, never the tokens.
func (s *Store) OverdueTimers(ctx context.Context, id string, before time.Time, limit int) ([]wire.TimerDue, error) {
	var out []wire.TimerDue
	for after := uint64(0); len(out) < limit; {
		it, err := jetstreamext.GetBatch(ctx, s.js, subjects.StreamName(id), 1000,
			jetstreamext.GetBatchSeq(after+1), jetstreamext.GetBatchSubject(subjects.AllTimersDue(id)))
		if err != nil {
			return out, storeError(err)
		}
		read := 0
		for msg, err := range it {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return out, storeError(err)
			}
			read, after = read+1, msg.Sequence
			if msg.Time.After(before) { // stored in time order: the rest is newer
				return out, nil
			}
			var d wire.TimerDue
			if msg.Header.Get(subjects.HeaderTokenOp) != subjects.TokenOpDelete && json.Unmarshal(msg.Data, &d) == nil && len(out) < limit {
				out = append(out, d)
			}
		}
		if read == 0 {
			return out, nil
		}
	}
	return out, nil
}
