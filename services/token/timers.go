package token

// Timers: transitions that fire by themselves (shared/flow/timer.go).
//
// Storage schedules each timer in the batch of the change that sets it
// (store/timers.go): nats-server's message scheduling publishes the
// timer's due message into the workflow's own stream when it falls due.
// Every token-service instance pulls those due messages from one durable
// consumer per workflow (store.TimerConsumer, explicit acks), so each is
// in flight at one instance at a time, and is redelivered only when the
// instance that had it did not acknowledge it within TimerAckWait (it
// died). A due message is passed on to the instance that writes its
// workflow, like any write, and settled there:
//
//   - fired: the token is still in the place with the same entry, and the
//     transition's guards pass: the fire commits with compare-and-swap on
//     the revision read (triggeredBy "timer"), and in the same batch
//     consumes the due message and records timer_fired;
//   - stale: the token left the place (or is gone) since: the due message
//     is consumed, nothing else;
//   - skipped: the guards failed: timer_skipped with the reason;
//   - rescheduled: the timer's time moved later (an at-timer whose field
//     changed while it fell due): scheduled again.
//
// Only then is the due message acknowledged. A redelivered message whose
// fire committed finds the token moved on (a new entry): stale. So a fire
// happens once, whatever crashes and however many instances there are.

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/services/token/store"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

const (
	opTimer = "timer"
	// timerWorkers bounds the due timers an instance settles at once per
	// workflow, so a backlog (after downtime) is worked off in due order
	// without filling the workflow's batches: live writes keep their
	// share of every group commit.
	timerWorkers = 32
	// timerEarly is how early a timer may fire against this instance's
	// clock (the server schedules by its own).
	timerEarly = time.Second
	// rescanEvery: how often an instance looks for workflows that got
	// timers through another instance (one stream listing).
	rescanEvery = 30 * time.Second
	// timerTimeout bounds the settling of one due timer (under TimerAckWait).
	timerTimeout = 8 * time.Second
	// An idle consumer's workflow is swept for due timers older than
	// sweepAge this often (sweep).
	sweepEvery = 10 * time.Second
	sweepAge   = 2 * store.TimerAckWait
)

var (
	errStaleTimer = errors.New("stale timer")
	errNotDue     = errors.New("timer not due yet")
)

// timerOutcome is what the instance that writes a workflow did with a due timer.
type timerOutcome struct {
	Result string    `json:"result"` // fired, stale, skipped, rescheduled
	DueAt  time.Time `json:"dueAt,omitzero"`
}

// timerRunner consumes the due timers of every workflow that has them.
type timerRunner struct {
	svc     *Service
	log     zerolog.Logger
	pending metrics.Gauge
	lag     metrics.Histogram
	settled metrics.Counter
	swept   metrics.Counter

	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	running map[string]bool
	backlog map[string]int64 // per workflow: due timers not yet settled (consumer pending + ack pending)
}

func newTimerRunner(s *Service, log zerolog.Logger, reg *metrics.Registry) *timerRunner {
	ctx, stop := context.WithCancel(context.Background())
	return &timerRunner{svc: s, log: log, ctx: ctx, stop: stop, running: map[string]bool{}, backlog: map[string]int64{},
		pending: reg.Gauge("cb_timers_pending", "Due timers not yet settled (fired, skipped or found stale), from the timer consumers' pending counts."),
		lag:     reg.Histogram("cb_timer_fire_lag_seconds", "How long after its due time a timer fired."),
		settled: reg.Counter("cb_timers_settled_total", "Due timers settled, by result (fired, stale, skipped, rescheduled).", "result"),
		swept:   reg.Counter("cb_timers_swept_total", "Due timers the consumer left unsettled, settled by the sweep.")}
}

// start consumes the workflows that have timers now, and those found later.
func (r *timerRunner) start() {
	r.svc.store.OnTimers(r.watch)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(rescanEvery)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
			if _, err := r.svc.store.TimerWorkflows(ctx); err != nil && r.ctx.Err() == nil {
				r.log.Warn().Err(err).Msg("listing workflows with timers")
			}
			cancel()
			select {
			case <-t.C:
			case <-r.ctx.Done():
				return
			}
		}
	}()
}

func (r *timerRunner) close() {
	r.stop()
	r.wg.Wait()
}

// watch starts consuming workflow id's due timers, once.
func (r *timerRunner) watch(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[id] || r.ctx.Err() != nil {
		return
	}
	r.running[id] = true
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.consume(id) }()
}

// consume settles workflow id's due timers until the runner stops.
func (r *timerRunner) consume(id string) {
	log := r.log.With().Str("workflow", id).Logger()
	for attempt := 0; r.ctx.Err() == nil; attempt++ {
		ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		c, err := r.svc.store.TimerConsumer(ctx, id)
		cancel()
		if err == nil {
			err = r.pull(id, c)
		}
		if r.ctx.Err() != nil {
			return
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, fail.ErrNotFound) {
			log.Info().Msg("workflow gone: no longer consuming its timers")
			r.mu.Lock()
			delete(r.running, id)
			r.mu.Unlock()
			return
		}
		log.Warn().Err(err).Msg("consuming due timers; retrying")
		select {
		case <-time.After(min(time.Duration(attempt+1)*500*time.Millisecond, 5*time.Second)):
		case <-r.ctx.Done():
		}
	}
}

// pull settles due messages as they come, timerWorkers at a time, in
// delivery order (due order: the server publishes them as they fall due).
func (r *timerRunner) pull(id string, c jetstream.Consumer) error {
	it, err := c.Messages(jetstream.PullMaxMessages(2*timerWorkers), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	defer it.Stop()
	go func() { <-ctx.Done(); it.Stop() }()
	sem := make(chan struct{}, timerWorkers)
	var wg sync.WaitGroup
	defer wg.Wait()
	go r.watchBacklog(ctx, id, c)
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return r.ctx.Err()
			}
			return err
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			r.settle(msg)
		}()
	}
}

// watchBacklog keeps cb_timers_pending up to date for workflow id while
// its consumer runs.
func (r *timerRunner) watchBacklog(ctx context.Context, id string, c jetstream.Consumer) {
	lastSweep := time.Now()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := c.Info(ictx)
		cancel()
		if err == nil {
			n := int64(info.NumPending) + int64(info.NumAckPending)
			r.mu.Lock()
			d := n - r.backlog[id]
			r.backlog[id] = n
			r.mu.Unlock()
			r.pending.Add(d)
			if n == 0 && time.Since(lastSweep) >= sweepEvery {
				lastSweep = time.Now()
				r.sweep(ctx, id)
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// settle passes one due message on to the workflow's writer and
// acknowledges it once settled; on failure it is delivered again.
func (r *timerRunner) settle(msg jetstream.Msg) {
	if msg.Headers().Get(subjects.HeaderTokenOp) == subjects.TokenOpDelete { // a consumed timer's marker
		_ = msg.Ack()
		return
	}
	var d wire.TimerDue
	if err := json.Unmarshal(msg.Data(), &d); err != nil || wire.ValidTokenID(d.TokenID) != nil || !flow.ValidName(d.TransitionID) || !flow.ValidWorkflowID(d.WorkflowID) {
		r.log.Warn().Str("subject", msg.Subject()).Msg("unreadable due timer: dropped")
		_ = msg.Term()
		return
	}
	if err := r.settleTimer(d); err != nil {
		if r.ctx.Err() == nil {
			r.log.Warn().Err(err).Str("token", d.TokenID).Str("transition", d.TransitionID).Msg("due timer not settled; retrying")
		}
		_ = msg.NakWithDelay(time.Second)
		return
	}
	_ = msg.Ack()
}

// settleTimer passes due timer d on to its workflow's writer and counts
// the outcome.
func (r *timerRunner) settleTimer(d wire.TimerDue) error {
	ctx, cancel := context.WithTimeout(r.ctx, timerTimeout)
	defer cancel()
	raw, err := route(ctx, r.svc.writers, d.WorkflowID, opTimer, &d, r.svc.timerHere)
	if err != nil {
		return err
	}
	var out timerOutcome
	_ = json.Unmarshal(*raw, &out)
	r.settled.Inc(out.Result)
	if out.Result == "fired" {
		r.lag.Observe(max(time.Since(d.DueAt), 0))
	} else {
		r.log.Debug().Str("token", d.TokenID).Str("transition", d.TransitionID).Str("result", out.Result).Msg("due timer settled")
	}
	return nil
}

// sweep settles the due timers of workflow id that are still stored
// though its consumer has nothing pending: a safety net for a due
// message delivered to an instance that died and not delivered again
// (seen, rarely, when a token service was killed as timers fell due).
// Settling is idempotent (compare-and-swap on the token's entry), so a
// due message the consumer also delivers fires once.
func (r *timerRunner) sweep(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, timerTimeout)
	defer cancel()
	overdue, err := r.svc.store.OverdueTimers(ctx, id, time.Now().Add(-sweepAge), timerWorkers)
	if err != nil {
		return
	}
	for _, d := range overdue {
		r.log.Warn().Str("workflow", id).Str("token", d.TokenID).Str("transition", d.TransitionID).Time("dueAt", d.DueAt).
			Msg("due timer left unsettled by the consumer: settling it")
		if err := r.settleTimer(d); err != nil {
			return
		}
		r.swept.Inc()
	}
}

// timerHere settles due timer d on the instance that writes its workflow.
func (s *Service) timerHere(ctx context.Context, d *wire.TimerDue) (*json.RawMessage, error) {
	now := s.now()
	var (
		seen  *flow.Token // the state the verdict was made on
		later time.Time
	)
	_, err := s.apply(store.WithTimerFire(ctx, *d, now), d.TokenID, 0, "", "",
		func(m *flow.Machine, cur *flow.Token) (*flow.Token, *flow.Entry, wire.Event, error) {
			seen = cur
			tm, ok := m.TimerOf(cur, d.TransitionID)
			if !ok || tm.Revision != d.Revision || cur.WorkflowID != d.WorkflowID {
				return nil, nil, wire.Event{}, errStaleTimer
			}
			if tm.DueAt.After(now.Add(timerEarly)) {
				later = tm.DueAt
				return nil, nil, wire.Event{}, errNotDue
			}
			next, entry, err := m.FireContext(ctx, cur, flow.FireRequest{TransitionID: d.TransitionID,
				TriggeredBy: wire.TimerTriggeredBy, Now: now})
			by := wire.TimerTriggeredBy
			ev := wire.Event{EventType: wire.EventTokenTransitioned, TokenID: cur.ID, WorkflowID: cur.WorkflowID,
				FromPlace: cur.Place, TransitionID: d.TransitionID, Timestamp: now, TriggeredBy: &by}
			if next != nil {
				ev.ToPlace = next.Place
			}
			return next, entry, ev, err
		})
	result := "fired"
	switch {
	case err == nil:
	case errors.Is(err, errStaleTimer), errors.Is(err, fail.ErrNotFound):
		result, err = "stale", s.store.SettleDue(ctx, *d)
	case errors.Is(err, errNotDue):
		result, err = "rescheduled", s.store.Reschedule(ctx, *d, later)
	case errors.Is(err, fail.ErrGuardFailed) && seen != nil:
		result, err = "skipped", s.store.TimerSkipped(ctx, seen, *d, err.Error())
	}
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(timerOutcome{Result: result, DueAt: d.DueAt})
	raw := json.RawMessage(b)
	return &raw, nil
}
