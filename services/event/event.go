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
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// maxScan bounds the messages one history request reads, so a filter that
// matches little cannot make a request scan a whole stream.
const maxScan = 10_000

// Service implements the event endpoints.
type Service struct {
	js         jetstream.JetStream
	maxDeliver int
	now        func() time.Time
}

// New returns a Service; maxDeliver bounds deliveries to durable subscribers.
func New(js jetstream.JetStream, maxDeliver int) *Service {
	return &Service{js: js, maxDeliver: maxDeliver, now: time.Now}
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
// f returns false, the stream ends or maxScan messages were read.
func (s *Service) scan(ctx context.Context, r *wire.HistoryRequest, f func(rec wire.EventRecord, more bool) bool) error {
	opts := []jetstreamext.GetBatchOpt{jetstreamext.GetBatchSubject(subjects.AllEvents(r.WorkflowID))}
	if r.AfterSequence > 0 || r.Since.IsZero() {
		opts = append(opts, jetstreamext.GetBatchSeq(r.AfterSequence+1))
	} else {
		opts = append(opts, jetstreamext.GetBatchStartTime(r.Since))
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
	if r.TokenID == "" && len(r.EventTypes) == 0 && r.Until.IsZero() {
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
