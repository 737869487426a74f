package store

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/jsread"
)

// batcher is how a committer reaches its workflow's stream: atomic
// batches, the stream's last sequence, and the sequence of a subject's
// last message. The fault tests put failures between a committer and the
// server through it.
type batcher interface {
	batch() (batchSender, error)
	lastSeq(ctx context.Context) (uint64, error)
	lastOf(ctx context.Context, subject string) (uint64, error) // 0 when the subject holds none
	// searchAttributes are the workflow's latest version and its search attributes.
	searchAttributes(ctx context.Context) (int, []flow.SearchAttribute, error)
}

// batchSender is one atomic batch being sent.
type batchSender interface {
	add(m *nats.Msg) error
	commit(ctx context.Context, m *nats.Msg) (seq uint64, err error) // the sequence of the batch's last message
	discard()
}

// streamBatcher is the batcher of a real stream.
type streamBatcher struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	rd      jsread.Reader
	created time.Time // the stream's creation: a stream of the same name created since is another
	attrs   func(ctx context.Context) (int, []flow.SearchAttribute, error)
}

func (s streamBatcher) searchAttributes(ctx context.Context) (int, []flow.SearchAttribute, error) {
	return s.attrs(ctx)
}

// errStreamChanged is a committer's refresh finding its stream deleted, or
// deleted and created again (a new incarnation of the workflow id, which
// must be loaded afresh).
var errStreamChanged = fail.New(fail.Unavailable, "the workflow's stream was deleted or created again: retry")

func (s streamBatcher) batch() (batchSender, error) {
	bp, err := jetstreamext.NewBatchPublisher(s.js, jetstreamext.BatchFlowControl{AckTimeout: commitTimeout})
	if err != nil {
		return nil, err
	}
	return jsBatch{bp}, nil
}

func (s streamBatcher) lastSeq(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) || (err == nil && !s.created.IsZero() && !info.Created.Equal(s.created)) {
		return 0, errStreamChanged
	}
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

func (s streamBatcher) lastOf(ctx context.Context, subject string) (uint64, error) {
	msg, err := s.rd.Last(ctx, s.stream, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return msg.Sequence, nil
}

// jsBatch is an atomic batch of orbit.go's jetstreamext.
type jsBatch struct{ bp jetstreamext.BatchPublisher }

func (b jsBatch) add(m *nats.Msg) error { return b.bp.AddMsg(m) }

func (b jsBatch) commit(ctx context.Context, m *nats.Msg) (uint64, error) {
	ack, err := b.bp.CommitMsg(ctx, m)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

func (b jsBatch) discard() { _ = b.bp.Discard() }
