// Package event is the event service: history and replay of a workflow's
// events, per-workflow statistics, and named durable subscriptions for other
// systems, over NATS micro endpoints. Events are read from the workflow's
// stream with direct gets; the service never writes state.
package event

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/jsread"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// maxScan bounds the messages one history request reads, so a filter that
// matches little cannot make a request scan a whole stream.
const maxScan = 10_000

// Defaults of Options.
const (
	DefaultMaxDeliver       = 5   // the original's default
	DefaultMaxSubscriptions = 100 // each is a JetStream consumer, held by the servers
)

// Options configure a Service. The zero value is usable.
type Options struct {
	// MaxDeliver bounds deliveries of an event to a durable subscriber
	// (default DefaultMaxDeliver).
	MaxDeliver int
	// MaxSubscriptions bounds the durable subscriptions of one workflow
	// (default DefaultMaxSubscriptions). Each is a JetStream consumer on the
	// workflow's stream, which the servers keep in memory and on disk, and
	// an account's or stream's consumers may be limited: live subscriptions
	// need them too.
	MaxSubscriptions int
	// Metrics, when set, counts subscriptions refused by the quota.
	Metrics *metrics.Registry
	// Replicas of the analytics bucket; above 1 its reads go through the
	// stream leader.
	Replicas int
}

// Service implements the event endpoints.
type Service struct {
	js         jetstream.JetStream
	maxDeliver int
	maxSubs    int
	refused    metrics.Counter
	creating   chan struct{} // a one-slot lock: this instance creates one subscription at a time
	now        func() time.Time
	an         *analyticsStore
	perf       *sampler
}

// New returns a Service reading and subscribing through js.
func New(js jetstream.JetStream, o Options) *Service {
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = DefaultMaxDeliver
	}
	if o.MaxSubscriptions <= 0 {
		o.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewRegistry()
	}
	return &Service{js: js, maxDeliver: o.MaxDeliver, maxSubs: o.MaxSubscriptions, creating: make(chan struct{}, 1),
		refused: o.Metrics.Counter("cb_event_subscriptions_refused_total",
			"Durable event subscriptions refused: their workflow had reached --event-max-subscriptions, or its stream its consumer limit."),
		now: time.Now,
		an:  &analyticsStore{js: js, rd: jsread.New(js, o.Replicas > 1)}, perf: newSampler()}
}

func (s *Service) stream(ctx context.Context, wf string) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, subjects.StreamName(wf))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fail.New(fail.NotFound, "Workflow not found: %s", wf)
	}
	return st, jserr.Classify(err)
}

// readError classifies a failed direct read: a stream that does not exist
// has no responders, which is told apart from JetStream being down by
// looking the stream up (only on this error path).
func (s *Service) readError(ctx context.Context, wf string, err error) error {
	if errors.Is(err, nats.ErrNoResponders) {
		if _, serr := s.stream(ctx, wf); serr != nil {
			return serr
		}
	}
	return jserr.Classify(err)
}

// history pages through a workflow's events in stream order.
func (s *Service) history(ctx context.Context, r *wire.HistoryRequest) (*wire.EventPage, error) {
	r.Normalize()
	size := wire.Page{First: r.First}.Size()
	page := &wire.EventPage{Items: []wire.EventRecord{}}
	var last uint64
	err := s.scan(ctx, r, func(rec wire.EventRecord, more bool) bool {
		last = rec.Sequence
		if r.Matches(rec) {
			page.Items = append(page.Items, rec)
		}
		if len(page.Items) == size && more {
			page.Next = last
			return false
		}
		return true
	})
	return page, err
}

// replay is history that must start somewhere: at a sequence or a time.
func (s *Service) replay(ctx context.Context, r *wire.HistoryRequest) (*wire.EventPage, error) {
	if r.AfterSequence == 0 && r.Since.IsZero() {
		return nil, fail.New(fail.BadInput, "replay needs afterSequence or since")
	}
	return s.history(ctx, r)
}

// scan feeds each event after r.AfterSequence (or from r.Since) to f until
// f returns false, the stream ends or maxScan messages were read. A
// request no event can match reads nothing (its workflow must exist).
func (s *Service) scan(ctx context.Context, r *wire.HistoryRequest, f func(rec wire.EventRecord, more bool) bool) error {
	if r.Exhausted() {
		_, err := s.stream(ctx, r.WorkflowID)
		return err
	}
	opts := []jetstreamext.GetBatchOpt{jetstreamext.GetBatchSubject(subjects.AllEvents(r.WorkflowID))}
	if t, ok := r.StartTime(); ok {
		opts = append(opts, jetstreamext.GetBatchStartTime(t))
	} else {
		opts = append(opts, jetstreamext.GetBatchSeq(r.AfterSequence+1))
	}
	it, err := jetstreamext.GetBatch(ctx, s.js, subjects.StreamName(r.WorkflowID), scanSize(r), opts...)
	if err != nil {
		return s.readError(ctx, r.WorkflowID, err)
	}
	for msg, err := range it {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			return nil
		}
		if err != nil {
			return s.readError(ctx, r.WorkflowID, err)
		}
		rec, err := record(msg)
		if err != nil {
			return err
		}
		if !f(rec, msg.Header.Get("Nats-Num-Pending") != "0") {
			return nil
		}
	}
	return nil
}

// scanSize is how many messages one scan asks for: a page (and one to see
// whether more follow) when every event matches, else maxScan.
func scanSize(r *wire.HistoryRequest) int {
	sinceFilters := !r.Since.IsZero() && r.AfterSequence > 0 // else the scan starts at since
	if r.TokenID == "" && len(r.EventTypes) == 0 && r.Until.IsZero() && !sinceFilters {
		return min(wire.Page{First: r.First}.Size()+1, maxScan)
	}
	return maxScan
}

func record(msg *jetstream.RawStreamMsg) (wire.EventRecord, error) {
	rec := wire.EventRecord{Sequence: msg.Sequence, Subject: msg.Subject, Time: msg.Time}
	if err := json.Unmarshal(msg.Data, &rec.Event); err != nil {
		return rec, fail.Wrap(fail.Internal, err, "stored event "+strconv.FormatUint(msg.Sequence, 10)+" is unreadable")
	}
	return rec, nil
}
