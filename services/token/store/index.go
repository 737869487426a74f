package store

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Index entries. A token has one entry per search attribute its version
// declares and its state holds a value of the attribute's type for:
// subjects.IndexEntry(wf, key, value, id), an empty message. A change
// whose value differs writes a tombstone on the old entry and the new
// entry, in the same atomic batch as the state, after its event. The
// entry's subject is the whole index: a search for a value reads the
// entries of that value only.

// indexUse is one entry of a token: the attribute's key and the value.
type indexUse struct{ key, value string }

// indexUses are the entries t's state calls for under its version m.
func indexUses(m *flow.Machine, t *flow.Token) map[indexUse]bool {
	if m == nil || t == nil || t.ArchivedAt != nil { // an archived token is found by id only
		return nil
	}
	out := map[indexUse]bool{}
	for _, a := range m.Def.SearchAttributes {
		if v, ok := a.IndexValue(t); ok {
			out[indexUse{a.Key(), v}] = true
		}
	}
	return out
}

// indexMsgs are the messages that take a token's index entries from
// prev's (nil for a create) to next's (nil for a removal).
func (s *Store) indexMsgs(ctx context.Context, prev, next *flow.Token) ([]*nats.Msg, error) {
	t := next
	if t == nil {
		t = prev
	}
	machineOf := func(t *flow.Token) (*flow.Machine, error) {
		if t == nil {
			return nil, nil
		}
		return s.Machine(ctx, t.WorkflowID, t.WorkflowVersion)
	}
	pm, err := machineOf(prev)
	if err != nil {
		return nil, err
	}
	nm, err := machineOf(next)
	if err != nil {
		return nil, err
	}
	was, is := indexUses(pm, prev), indexUses(nm, next)
	var msgs []*nats.Msg
	for u := range was {
		if !is[u] {
			m := nats.NewMsg(subjects.IndexEntry(t.WorkflowID, u.key, u.value, t.ID))
			m.Header.Set(subjects.HeaderTokenOp, subjects.TokenOpDelete)
			m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
			m.Header.Set(jetstream.MsgTTLHeader, tombstoneTTL.String())
			msgs = append(msgs, m)
		}
	}
	for u := range is {
		if !was[u] {
			m := nats.NewMsg(subjects.IndexEntry(t.WorkflowID, u.key, u.value, t.ID))
			m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
			msgs = append(msgs, m)
		}
	}
	return msgs, nil
}
