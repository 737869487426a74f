package event

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
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

// Analytics are maintained incrementally and exactly once:
//
//   - The bucket CB_ANALYTICS (a KV bucket, stream KV_CB_ANALYTICS, that
//     also allows atomic batches and message TTLs) holds per workflow its
//     aggregate (key w.<wf>) with the stream sequence of the last event it
//     applied, and per live token its entry (key t.<wf>.<token>).
//   - Catching up reads the events after that sequence (a batch direct get
//     of at most analyticsChunk), the entries of their tokens, folds them
//     in, and writes the changed entries and the aggregate in ONE atomic
//     batch, every message with compare-and-swap on its key's last
//     sequence as read. Two instances (or a request and the background
//     loop) folding the same events: one batch commits, the other fails
//     whole and starts again from what was committed. A crash between
//     reading and committing leaves nothing half-applied. So no event is
//     applied twice or skipped, across restarts.
//   - Each request catches up first (its answer includes every event
//     committed before it), and every instance catches up every workflow
//     every AnalyticsEvery and before it trims events (retention.go), so
//     an aggregate does not depend on events still being stored; the TTL
//     (--event-max-age, default 30 days) must exceed AnalyticsEvery.
const analyticsChunk = 500

// markerTTL is how long the delete marker of a completed token's entry is
// kept (then the key has no message at all).
const markerTTL = time.Hour

// DefaultAnalyticsEvery is how often every workflow is caught up in the
// background.
const DefaultAnalyticsEvery = time.Minute

var analyticsStream = "KV_" + subjects.AnalyticsBucket

// ensureAnalyticsBucket creates or updates the bucket's stream: a KV
// bucket (nats kv get CB_ANALYTICS w.<wf> reads an aggregate) with
// atomic batches and per-message TTL allowed.
func ensureAnalyticsBucket(ctx context.Context, js jetstream.JetStream, replicas int) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:               analyticsStream,
		Description:        "Circuit Breaker workflow analytics: aggregates (w.<workflow>) and live tokens' place entries (t.<workflow>.<token>)",
		Subjects:           []string{subjects.KVSubject(subjects.AnalyticsBucket, ">")},
		Retention:          jetstream.LimitsPolicy,
		MaxMsgsPerSubject:  1,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxAge:             0,
		Discard:            jetstream.DiscardNew,
		Storage:            jetstream.FileStorage,
		Replicas:           max(replicas, 1),
		Duplicates:         2 * time.Minute,
		AllowDirect:        true,
		AllowRollup:        true,
		DenyDelete:         true,
		AllowAtomicPublish: true,
		AllowMsgTTL:        true,
	})
	return err
}

// analyticsStore reads and writes the bucket.
type analyticsStore struct {
	js    jetstream.JetStream
	rd    jsread.Reader
	locks sync.Map // workflow id → *sync.Mutex: one fold at a time per workflow in this instance
}

func (a *analyticsStore) lock(wf string) func() {
	v, _ := a.locks.LoadOrStore(wf, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// lastMsgs returns the newest message of each subject of stream that has
// one: by batch direct get on a single server, through the stream leader
// when replicated (a follower may lag).
func (a *analyticsStore) lastMsgs(ctx context.Context, stream string, subs []string) (map[string]*jetstream.RawStreamMsg, error) {
	out := make(map[string]*jetstream.RawStreamMsg, len(subs))
	if len(subs) == 0 {
		return out, nil
	}
	if a.rd.Leader() {
		for _, sub := range subs {
			msg, err := a.rd.LastOf(ctx, stream, sub)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[sub] = msg
		}
		return out, nil
	}
	it, err := jetstreamext.GetLastMsgsFor(ctx, a.js, stream, subs)
	if err != nil {
		return nil, err
	}
	for msg, err := range it {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return nil, err
		}
		out[msg.Subject] = msg
	}
	return out, nil
}

// terminalPlaces are the terminal places of the workflow's latest
// version (its static analysis: no transition leaves them).
func (a *analyticsStore) terminalPlaces(ctx context.Context, wf string) (map[string]bool, error) {
	v := 1
	got, err := a.lastMsgs(ctx, subjects.StreamName(wf), []string{subjects.LatestVersion(wf)})
	if err != nil {
		return nil, err
	}
	if msg := got[subjects.LatestVersion(wf)]; msg != nil {
		var rec struct{ Version int }
		if json.Unmarshal(msg.Data, &rec) == nil && rec.Version > 1 {
			v = rec.Version
		}
	}
	sub := subjects.DefinitionVersion(wf, v)
	if got, err = a.lastMsgs(ctx, subjects.StreamName(wf), []string{sub}); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	if msg := got[sub]; msg != nil {
		var d flow.Definition
		if err := json.Unmarshal(msg.Data, &d); err != nil {
			return nil, fail.Wrap(fail.Internal, err, "stored definition of "+wf+" is unreadable")
		}
		for _, p := range flow.Analyze(&d).TerminalPlaces {
			out[p] = true
		}
	}
	return out, nil
}

// load reads a workflow's aggregate and the sequence of its message (0:
// none yet).
func (a *analyticsStore) load(ctx context.Context, wf string) (*aggregate, uint64, error) {
	sub := subjects.KVSubject(subjects.AnalyticsBucket, subjects.AnalyticsKey(wf))
	got, err := a.lastMsgs(ctx, analyticsStream, []string{sub})
	if err != nil {
		return nil, 0, jserr.Classify(err)
	}
	msg := got[sub]
	if msg == nil || msg.Header.Get("KV-Operation") != "" {
		var rev uint64
		if msg != nil {
			rev = msg.Sequence
		}
		return newAggregate(), rev, nil
	}
	agg := newAggregate()
	if err := json.Unmarshal(msg.Data, agg); err != nil {
		return nil, 0, fail.Wrap(fail.Internal, err, "stored analytics of "+wf+" are unreadable")
	}
	if agg.Places == nil {
		agg.Places = map[string]*placeAgg{}
	}
	if agg.Minutes == nil {
		agg.Minutes = map[int64]*counts{}
	}
	if agg.Hours == nil {
		agg.Hours = map[int64]*counts{}
	}
	return agg, msg.Sequence, nil
}

// events reads up to n events of wf after sequence after; more reports
// whether the stream held more then.
func (s *Service) eventsAfter(ctx context.Context, wf string, after uint64, n int) ([]wire.EventRecord, bool, error) {
	it, err := jetstreamext.GetBatch(ctx, s.js, subjects.StreamName(wf), n,
		jetstreamext.GetBatchSeq(after+1), jetstreamext.GetBatchSubject(subjects.AllEvents(wf)))
	if err != nil {
		return nil, false, s.readError(ctx, wf, err)
	}
	var out []wire.EventRecord
	more := false
	for msg, err := range it {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return nil, false, s.readError(ctx, wf, err)
		}
		rec, err := record(msg)
		if err != nil {
			return nil, false, err
		}
		out = append(out, rec)
		more = msg.Header.Get("Nats-Num-Pending") != "0"
	}
	return out, more, nil
}

// catchUp folds every event of wf not yet applied into its aggregate and
// returns it.
func (s *Service) catchUp(ctx context.Context, wf string) (*aggregate, error) {
	defer s.an.lock(wf)()
	var terminal map[string]bool
	for conflicts := 0; ; {
		agg, rev, err := s.an.load(ctx, wf)
		if err != nil {
			return nil, err
		}
		recs, more, err := s.eventsAfter(ctx, wf, agg.LastSeq, analyticsChunk)
		if err != nil || len(recs) == 0 {
			return agg, err
		}
		if terminal == nil {
			if terminal, err = s.an.terminalPlaces(ctx, wf); err != nil {
				return nil, jserr.Classify(err)
			}
		}
		err = s.fold(ctx, wf, agg, rev, recs, terminal)
		switch {
		case isConflict(err):
			// Another instance applied these events first; so did we if
			// a commit's ack was lost. Start again from what is stored.
			if conflicts++; conflicts > 20 {
				return nil, fail.Wrap(fail.Unavailable, err, "analytics of "+wf+" keep changing under this instance: retry")
			}
			continue
		case err != nil:
			return nil, err
		case !more:
			return agg, nil
		}
	}
}

// fold applies recs to agg (stored at rev) and commits the aggregate and
// the changed token entries in one atomic batch, each with
// compare-and-swap on the sequence it was read at.
func (s *Service) fold(ctx context.Context, wf string, agg *aggregate, rev uint64, recs []wire.EventRecord, terminal map[string]bool) error {
	keyOf := func(id string) string {
		return subjects.KVSubject(subjects.AnalyticsBucket, subjects.AnalyticsTokenKey(wf, id))
	}
	var subs []string
	seen := map[string]bool{}
	for _, r := range recs {
		if id := r.Event.TokenID; id != "" && !seen[id] {
			seen[id] = true
			subs = append(subs, keyOf(id))
		}
	}
	got, err := s.an.lastMsgs(ctx, analyticsStream, subs)
	if err != nil {
		return jserr.Classify(err)
	}
	tokens := map[string]*tokenEntry{}
	readAt := map[string]uint64{}
	for id := range seen {
		msg := got[keyOf(id)]
		if msg == nil {
			continue
		}
		readAt[id] = msg.Sequence
		if msg.Header.Get("KV-Operation") != "" {
			continue
		}
		e := &tokenEntry{}
		if json.Unmarshal(msg.Data, e) == nil {
			tokens[id] = e
		}
	}
	touched := map[string]bool{}
	for _, r := range recs {
		agg.apply(r, tokens, touched, terminal)
	}
	agg.prune()
	msgs := make([]*nats.Msg, 0, len(touched)+1)
	for id := range touched {
		m := nats.NewMsg(keyOf(id))
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(readAt[id], 10))
		if e := tokens[id]; e != nil {
			m.Data, _ = json.Marshal(e)
		} else {
			if readAt[id] == 0 {
				continue // created and completed within this fold: nothing stored, nothing to delete
			}
			m.Header.Set("KV-Operation", "DEL")
			m.Header.Set(jetstream.MsgTTLHeader, markerTTL.String())
		}
		msgs = append(msgs, m)
	}
	m := nats.NewMsg(subjects.KVSubject(subjects.AnalyticsBucket, subjects.AnalyticsKey(wf)))
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	if m.Data, err = json.Marshal(agg); err != nil {
		return fail.Wrap(fail.Internal, err, "encode analytics")
	}
	msgs = append(msgs, m)
	if _, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs); err != nil {
		if isConflict(err) {
			return err
		}
		return jserr.Classify(err)
	}
	return nil
}

// isConflict reports a failed compare-and-swap ("wrong last sequence").
func isConflict(err error) bool { return jserr.WrongSequence(err) }

// cutWorkflow returns the workflow id of a workflow stream's name.
func cutWorkflow(stream string) (string, bool) { return strings.CutPrefix(stream, "WORKFLOW_") }

// analytics answers event.analytics: the workflow's aggregate, caught up.
func (s *Service) analytics(ctx context.Context, r *wire.AnalyticsRequest) (*wire.Analytics, error) {
	window, err := wire.ParseWindow("window", r.Window, wire.DefaultAnalyticsWindow, wire.MaxAnalyticsWindow)
	if err != nil {
		return nil, err
	}
	agg, err := s.catchUp(ctx, r.WorkflowID)
	if err != nil {
		return nil, err
	}
	if agg.Events == 0 {
		if _, err := s.stream(ctx, r.WorkflowID); err != nil {
			return nil, err
		}
	}
	return agg.report(r.WorkflowID, window, s.now()), nil
}

// CatchUpAll folds the new events of every workflow in.
func (s *Service) CatchUpAll(ctx context.Context) error {
	names := s.js.StreamNames(ctx, jetstream.WithStreamListSubject("workflows.>"))
	var first error
	for name := range names.Name() {
		wf, ok := cutWorkflow(name)
		if !ok {
			continue
		}
		if _, err := s.catchUp(ctx, wf); err != nil && first == nil && fail.KindOf(err) != fail.NotFound {
			first = err
		}
	}
	if err := names.Err(); err != nil && first == nil {
		first = jserr.Classify(err)
	}
	return first
}

// analyticsLoop runs CatchUpAll every interval until ctx ends.
func (s *Service) analyticsLoop(ctx context.Context, every time.Duration, log zerolog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.CatchUpAll(ctx); err != nil && ctx.Err() == nil {
				log.Warn().Err(err).Msg("analytics catch-up")
			}
		}
	}
}
