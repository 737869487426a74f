package live

import (
	"encoding/json"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// item is one stream message, decoded at most once however many
// subscriptions take it. Its decoded value is shared: read only.
type item struct {
	kind    kind
	seq     uint64
	subject string
	tokenID string // of a token state, read off its subject once
	msg     jetstream.Msg
	deleted bool // a token's tombstone in the place it left

	once sync.Once
	val  any
	err  error
}

func newItem(k kind, m jetstream.Msg) *item {
	it := &item{kind: k, subject: m.Subject(), msg: m,
		deleted: m.Headers().Get(subjects.HeaderTokenOp) == subjects.TokenOpDelete}
	if meta, err := m.Metadata(); err == nil {
		it.seq = meta.Sequence.Stream
	}
	if k == kindTokens {
		it.tokenID = subjects.TokenIDFromSubject(it.subject)
	}
	return it
}

// size is what the item counts against a subscription's bound.
func (it *item) size() int { return len(it.msg.Data()) + len(it.subject) }

// value decodes the message: a wire.EventRecord or a *flow.Token.
func (it *item) value() (any, error) {
	it.once.Do(func() {
		if it.kind == kindTokens {
			t := new(flow.Token)
			it.val, it.err = t, json.Unmarshal(it.msg.Data(), t)
		} else {
			it.val, it.err = it.record()
		}
		if it.err != nil {
			it.err = fail.Wrap(fail.Internal, it.err, "stored message "+strconv.FormatUint(it.seq, 10)+" on "+it.subject+" is unreadable")
		}
	})
	return it.val, it.err
}

func (it *item) record() (wire.EventRecord, error) {
	rec := wire.EventRecord{Sequence: it.seq, Subject: it.subject}
	if meta, err := it.msg.Metadata(); err == nil {
		rec.Time = meta.Timestamp
	}
	return rec, json.Unmarshal(it.msg.Data(), &rec.Event)
}

// event returns the item's event.
func (it *item) event() (*wire.Event, error) {
	v, err := it.value()
	if err != nil {
		return nil, err
	}
	rec := v.(wire.EventRecord)
	return &rec.Event, nil
}
