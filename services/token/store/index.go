package store

import (
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Index entries. A token has one entry per search attribute its
// workflow's latest version declares and its state holds a value of the
// attribute's type for: subjects.IndexEntry(wf, key, value, id), an empty
// message. A change whose value differs writes a tombstone on the old
// entry and the new entry, in the same atomic batch as the state, after
// its event. The entry's subject is the whole index: a search for a value
// reads the entries of that value only.
//
// The committer lays the entries out (index) with the attributes of the
// latest version it read when it last learned the stream's last sequence.
// Every batch pins that sequence, and an update stores its version on the
// stream, so no batch commits entries of attributes older than the latest
// version. A state records that version (IndexVersion): the next change
// knows which entries the token has for sure (the attributes of its
// IndexVersion) and writes the others it needs, so a token changed after
// an update has the entries of every attribute the update added. Tokens
// that have not changed since get theirs from a build (wire.SearchIndex,
// the token service's reindex), whose changes write entries only.
//
// A search checks every filter on the state it reads, so an entry a
// token no longer has a value for costs a read, never a wrong answer:
// entries of an attribute a later version dropped stay until the token
// is removed.

// indexUse is one entry of a token: the attribute's key and the value.
type indexUse struct{ key, value string }

// indexUses are the entries t's state calls for under attrs.
func indexUses(attrs []flow.SearchAttribute, t *flow.Token) map[indexUse]bool {
	out := map[indexUse]bool{}
	if t == nil || t.ArchivedAt != nil { // an archived token is found by id only
		return out
	}
	for _, a := range attrs {
		if v, ok := a.IndexValue(t); ok {
			out[indexUse{a.Key(), v}] = true
		}
	}
	return out
}

// indexMsgs are the messages that take a token from prev's entries (nil:
// none), written under prevAttrs and maybe under attrs (by a build), to
// next's under attrs (nil: none, a removal).
func indexMsgs(prevAttrs []flow.SearchAttribute, prev *flow.Token, attrs []flow.SearchAttribute, next *flow.Token) []*nats.Msg {
	t := next
	if t == nil {
		t = prev
	}
	has, is := indexUses(prevAttrs, prev), indexUses(attrs, next)
	was := indexUses(attrs, prev)
	for u := range has {
		was[u] = true
	}
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
		if !has[u] {
			m := nats.NewMsg(subjects.IndexEntry(t.WorkflowID, u.key, u.value, t.ID))
			m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// only are the attributes of attrs at paths.
func only(attrs []flow.SearchAttribute, paths []string) []flow.SearchAttribute {
	var out []flow.SearchAttribute
	for _, a := range attrs {
		if slices.Contains(paths, a.Path) {
			out = append(out, a)
		}
	}
	return out
}
