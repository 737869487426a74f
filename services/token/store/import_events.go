package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// ImportEvents stores the retained events of an export file in the
// workflow's stream, in order, on their subjects (token_transitioned on
// the transitions subject, every other type on the lifecycle one). Each
// batch of events carries the import's progress record
// (subjects.ImportedEvents: the source sequence of the last event
// stored), with a compare-and-swap on it, so a re-run skips what is
// stored and two imports never store an event twice. An event keeps its
// body (its timestamp is the original's) but for its nats_sequence, which
// becomes its own message's here, and its workflow_id, the workflow's full
// id. It expires as events do here, counted from its timestamp: one older
// than the event retention is not stored (Expired).
func (s *Store) ImportEvents(ctx context.Context, wfID string, events []wire.EventRecord) (*wire.ImportEventsReply, error) {
	wf, err := s.workflow(ctx, wfID)
	if err != nil {
		return nil, err
	}
	reply := &wire.ImportEventsReply{}
	for len(events) > 0 {
		n := min(len(events), maxBatchMsgs-1)
		done, err := s.importEventBatch(ctx, wf, events[:n], reply)
		if err != nil {
			return nil, err
		}
		events = events[done:]
	}
	return reply, nil
}

// importProgress is the body of the progress record.
type importProgress struct {
	Sequence uint64 `json:"sequence"` // the source sequence of the last event stored
	Events   int    `json:"events"`   // events stored by imports so far
}

// importEventBatch stores one batch of events and returns how many of
// them it has dealt with (all of them, unless the stream moved on).
func (s *Store) importEventBatch(ctx context.Context, wf *workflow, events []wire.EventRecord, reply *wire.ImportEventsReply) (int, error) {
	for attempt := 0; ; attempt++ {
		var prog importProgress
		var progSeq uint64
		msg, err := s.rd.Last(ctx, wf.stream, subjects.ImportedEvents(wf.id))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return 0, storeError(err)
		default:
			if err := json.Unmarshal(msg.Data, &prog); err != nil {
				return 0, fail.Wrap(fail.Internal, err, "unreadable event import record of "+wf.id)
			}
			progSeq = msg.Sequence
		}
		last, err := s.streamLast(ctx, wf)
		if err != nil {
			return 0, err
		}
		var msgs []*nats.Msg
		var skipped, expired int
		now := time.Now()
		for _, rec := range events {
			if rec.Sequence <= prog.Sequence {
				skipped++
				continue
			}
			prog.Sequence = rec.Sequence
			ttl := time.Duration(0)
			if s.opts.EventTTL > 0 {
				if ttl = s.opts.EventTTL - now.Sub(rec.Event.Timestamp); ttl < time.Second {
					expired++
					continue
				}
			}
			ev := rec.Event
			ev.WorkflowID, ev.NatsSequence = wf.id, last+uint64(len(msgs))+1
			body, err := json.Marshal(ev)
			if err != nil {
				return 0, fail.Wrap(fail.Internal, err, "encode event")
			}
			subj := subjects.LifecycleEvents(wf.id)
			if ev.EventType == wire.EventTokenTransitioned {
				subj = subjects.TransitionEvents(wf.id)
			}
			m := nats.NewMsg(subj)
			m.Data = body
			if s.opts.EventTTL >= time.Second {
				m.Header.Set(jetstream.MsgTTLHeader, ttl.Round(time.Second).String())
			}
			msgs = append(msgs, m)
		}
		imported := len(msgs)
		if imported+expired > 0 {
			prog.Events += imported
			m := nats.NewMsg(subjects.ImportedEvents(wf.id))
			m.Data, _ = json.Marshal(prog)
			m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(progSeq, 10))
			msgs = append(msgs, m)
			_, err = s.publishImport(ctx, msgs, last)
			if jserr.WrongSequence(err) && attempt < maxImportAttempts {
				time.Sleep(time.Duration(attempt) * time.Millisecond)
				continue // the stream moved on, or another import stored events: read again
			}
			if err != nil {
				return 0, storeError(err)
			}
		}
		reply.Imported += imported
		reply.Skipped += skipped
		reply.Expired += expired
		return len(events), nil
	}
}
