package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// SearchIndex reads a workflow's search index record and its sequence. A
// workflow without one (no version ever added attributes to its tokens)
// is READY: the record returned then has sequence 0 and version 0.
func (s *Store) SearchIndex(ctx context.Context, id string) (*wire.SearchIndex, uint64, error) {
	wf, err := s.workflow(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	msg, err := s.rd.Last(ctx, wf.stream, subjects.SearchIndexState(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return &wire.SearchIndex{WorkflowID: id, State: wire.IndexReady, Building: []string{}}, 0, nil
	}
	if err != nil {
		return nil, 0, s.gone(ctx, id, wf, err)
	}
	rec := new(wire.SearchIndex)
	if err := json.Unmarshal(msg.Data, rec); err != nil {
		return nil, 0, fail.Wrap(fail.Internal, err, "stored search index record of "+id+" is unreadable")
	}
	if rec.Building == nil {
		rec.Building = []string{}
	}
	return rec, msg.Sequence, nil
}

// PutSearchIndex stores rec if the record is still the one at seq (0:
// none) and returns the new record's sequence; fail.Conflict if another
// writer (a build, an update) stored one since.
func (s *Store) PutSearchIndex(ctx context.Context, rec *wire.SearchIndex, seq uint64) (uint64, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return 0, fail.Wrap(fail.Internal, err, "encode search index record")
	}
	m := nats.NewMsg(subjects.SearchIndexState(rec.WorkflowID))
	m.Data = body
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(seq, 10))
	ack, err := s.js.PublishMsg(ctx, m)
	if jserr.WrongSequence(err) {
		return 0, fail.New(fail.Conflict, "the search index record of %s changed: read it again", rec.WorkflowID)
	}
	if err != nil {
		return 0, storeError(err)
	}
	return ack.Sequence, nil
}

// Reindex writes the index entries of t's values for the attributes at
// paths, which version declares (or a later one), if t, a state as read,
// is still the token's current state; fail.Conflict if it changed since
// (the change wrote its own entries). It reports whether it wrote any.
func (s *Store) Reindex(ctx context.Context, t *flow.Token, paths []string, version int) (bool, error) {
	wf, err := s.workflow(ctx, t.WorkflowID)
	if err != nil {
		return false, err
	}
	for attempt := 1; ; attempt++ {
		ch := &change{token: t, prevSubject: t.NatsSubject, prevSeq: t.NatsSequence, reindex: paths, reindexFor: version}
		err := wf.committer.submit(ctx, ch)
		switch {
		case errors.Is(err, errStaleVersion) && attempt < 3: // the committer reads the version first now
		case err != nil:
			return false, s.gone(ctx, t.WorkflowID, wf, err)
		default:
			return len(ch.index) > 0, nil
		}
	}
}
