package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

func tokenNotFound(id string) error { return tenant.TokenNotFound(id) }

// WorkflowOf returns the workflow id of a token from the index.
func (s *Store) WorkflowOf(ctx context.Context, tokenID string) (string, error) {
	if wf, ok := s.ids.get(tokenID); ok {
		return wf, nil
	}
	b, err := s.rd.KV(ctx, s.index, tokenID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", tokenNotFound(tokenID)
	}
	if err != nil {
		return "", storeError(err)
	}
	wf := string(b)
	s.ids.put(tokenID, wf)
	return wf, nil
}

// Get returns a token by id alone: one index lookup and one direct get.
// A token whose workflow no longer exists (deleted since this instance
// cached the token's index entry) does not exist either.
func (s *Store) Get(ctx context.Context, tokenID string) (*flow.Token, error) {
	wf, err := s.WorkflowOf(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	t, err := s.Find(ctx, wf, tokenID)
	if errors.Is(err, fail.ErrNotFound) {
		s.ids.remove(tokenID)
		return nil, tokenNotFound(tokenID)
	}
	return t, err
}

// Find returns a token of a known workflow: a wildcard last-by-subject
// direct get, which always yields the token's newest message.
func (s *Store) Find(ctx context.Context, workflowID, tokenID string) (*flow.Token, error) {
	st, err := s.state(ctx, workflowID, tokenID)
	if err != nil {
		return nil, err
	}
	return st.token(), nil
}

// state reads a token's state message, of either layout: its newest
// message in any place, or, when it is in none (a tombstone or nothing),
// its archived state. A live token costs one read; only a token in no
// place costs a second.
func (s *Store) state(ctx context.Context, workflowID, tokenID string) (*storedToken, error) {
	wf, err := s.workflow(ctx, workflowID)
	if err != nil {
		return nil, err
	}
	for _, subj := range []string{subjects.TokenAnyPlace(workflowID, tokenID), subjects.ArchivedToken(workflowID, tokenID)} {
		s.read.Inc("get")
		msg, err := s.rd.Last(ctx, wf.stream, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, s.gone(ctx, workflowID, wf, err)
		}
		if msg.Header.Get(subjects.HeaderTokenOp) == subjects.TokenOpDelete {
			continue
		}
		return decodeState(msg.Data)
	}
	return nil, tokenNotFound(tokenID)
}

// List returns a page of a workflow's tokens in stream order.
func (s *Store) List(ctx context.Context, workflowID string, p wire.Page) (*wire.TokenPage, error) {
	return s.scan(ctx, workflowID, subjects.AllTokens(workflowID), p)
}

// ListArchived returns a page of a workflow's archived tokens.
func (s *Store) ListArchived(ctx context.Context, workflowID string, p wire.Page) (*wire.TokenPage, error) {
	return s.scan(ctx, workflowID, subjects.ArchivedToken(workflowID, "*"), p)
}

// InPlace returns a page of the tokens in a place. Tokens that left the
// place are never listed: their old subject holds only a tombstone.
func (s *Store) InPlace(ctx context.Context, workflowID, place string, p wire.Page) (*wire.TokenPage, error) {
	wf, err := s.workflow(ctx, workflowID)
	if err != nil {
		return nil, err
	}
	if ok, err := s.hasPlace(ctx, wf, place); err != nil || !ok {
		if err != nil {
			return nil, err
		}
		if s.Stale(ctx, workflowID) { // the definition was of a deleted workflow: ask the current one
			return s.InPlace(ctx, workflowID, place, p)
		}
		return nil, fail.New(fail.NotFound, "Place '%s' not found in workflow '%s'", place, workflowID)
	}
	return s.scan(ctx, workflowID, subjects.PlaceTokens(workflowID, place), p)
}

// scan pages through the newest message of each subject matching filter,
// skipping tombstones. The cursor is the stream sequence of the last
// message read. Rollups leave one message per token subject, so the scan
// costs what the answer holds plus its tombstones.
func (s *Store) scan(ctx context.Context, workflowID, filter string, p wire.Page) (*wire.TokenPage, error) {
	wf, err := s.workflow(ctx, workflowID)
	if err != nil {
		return nil, err
	}
	after, err := cursor(p.After)
	if err != nil {
		return nil, err
	}
	if after == wire.MaxSequence { // nothing follows it (and after+1 would wrap to 0)
		return &wire.TokenPage{Items: []*flow.Token{}}, nil
	}
	pg := &pager{size: p.Size(), after: after, seen: make(map[string]int), pending: -1}
	read := s.scanDirect
	if s.rd.Leader() {
		read = s.scanLeader
	}
	more := true
	for more && !pg.full() {
		if more, err = read(ctx, workflowID, filter, pg); err != nil {
			return nil, s.gone(ctx, workflowID, wf, err)
		}
	}
	items, err := pg.tokens()
	if err != nil {
		return nil, err
	}
	page := &wire.TokenPage{Items: items}
	if pg.full() && more { // a full page is the last one when nothing matched after it
		page.Next = strconv.FormatUint(pg.after, 10)
	}
	return page, nil
}

// pager collects one page of live tokens from a scan in stream order. A
// later message on a subject supersedes an earlier one: a rollup normally
// leaves one message per subject, but nats-server 2.15.2 was seen to bring
// a rolled-up state back after a kill -9, and the newer tombstone or state
// must win over it.
type pager struct {
	size  int
	after uint64            // sequence of the last message read
	items []json.RawMessage // tokens as stored; nil where superseded
	seen  map[string]int    // subject → index in items
	live  int               // non-nil items
	bytes int               // their size
	// pending counts the messages matching the scan's filter after the
	// last one read, as the server reported it; -1 before the first read.
	pending int
}

// full reports that the page holds as many tokens, or as many bytes, as it may.
func (p *pager) full() bool { return p.live >= p.size || p.bytes >= wire.MaxPageBytes }

func (p *pager) add(msg *jetstream.RawStreamMsg) {
	p.after = msg.Sequence
	if i, ok := p.seen[msg.Subject]; ok {
		p.bytes -= len(p.items[i])
		p.items[i], p.live = nil, p.live-1
		delete(p.seen, msg.Subject)
	}
	if msg.Header.Get(subjects.HeaderTokenOp) == subjects.TokenOpDelete {
		return
	}
	p.seen[msg.Subject], p.live, p.bytes = len(p.items), p.live+1, p.bytes+len(msg.Data)
	p.items = append(p.items, msg.Data)
}

func (p *pager) tokens() ([]*flow.Token, error) {
	out := make([]*flow.Token, 0, p.live)
	for _, data := range p.items {
		if data == nil {
			continue
		}
		st, err := decodeState(data)
		if err != nil {
			return nil, err
		}
		out = append(out, st.token())
	}
	return out, nil
}

// scanDirect reads one direct batch after the pager's cursor and reports
// whether more messages match. A batch get that asks for more messages
// than match searches the rest of the stream for one more (see
// lastEntries), so a scan never asks for more than the server said were
// pending, once it knows: the first batch of a first page reads one
// message, only to learn how many follow, and the next asks for at most
// that many. A place smaller than a page thus costs two requests and no
// search past its last token. The price is one more count of the matches,
// which the server makes for every batch get from its subject index: for
// a wildcard filter it grows with the subjects the filter matches (the
// place's tokens, not the stream's). A page after a cursor follows a full
// one, so its place is likely large: it asks for the page at once (one
// count, not two) and only its last page searches past the last match. A
// batch get that finds nothing at all after a cursor still searches the
// rest of the stream; a full page that ends at the last match therefore
// has no Next.
func (s *Store) scanDirect(ctx context.Context, wfID, filter string, pg *pager) (bool, error) {
	want := pg.size - pg.live
	n := min(want+want/2+8, scanPage) // room for tombstones and superseded states
	switch {
	case pg.pending > 0:
		n = min(n, pg.pending)
	case pg.pending < 0 && pg.after == 0:
		n = 1
	}
	pending, err := s.batch(ctx, wfID, filter, pg.after, n, func(msg *jetstream.RawStreamMsg) bool {
		s.read.Inc("scan")
		pg.add(msg)
		return !pg.full()
	})
	pg.pending = pending
	return pending > 0, err
}

// batch reads, in one direct batch get, up to n messages matching filter
// after stream sequence after, and calls add with each in stream order
// until add returns false. It returns the count of matching messages
// after the last one read (Nats-Num-Pending: every matching message,
// tombstones and superseded states included), 0 when none matched.
func (s *Store) batch(ctx context.Context, workflowID, filter string, after uint64, n int, add func(*jetstream.RawStreamMsg) bool) (int, error) {
	it, err := jetstreamext.GetBatch(ctx, s.js, subjects.StreamName(workflowID), n,
		jetstreamext.GetBatchSeq(after+1), jetstreamext.GetBatchSubject(filter))
	if err != nil {
		return 0, storeError(err)
	}
	pending := 0
	for msg, err := range it {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return 0, storeError(err)
		}
		if pending, err = strconv.Atoi(msg.Header.Get("Nats-Num-Pending")); err != nil {
			return 0, fmt.Errorf("batch get of %s: Nats-Num-Pending: %w", filter, err)
		}
		if !add(msg) {
			break
		}
	}
	return pending, nil
}

// scanLeader reads through the stream leader, one message a request,
// until the page is full or no message matches.
func (s *Store) scanLeader(ctx context.Context, wfID, filter string, pg *pager) (bool, error) {
	for !pg.full() {
		msg, err := s.rd.Next(ctx, subjects.StreamName(wfID), pg.after+1, filter)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil
		}
		if err != nil {
			return false, storeError(err)
		}
		s.read.Inc("scan")
		pg.add(msg)
	}
	return true, nil
}

func cursor(after string) (uint64, error) {
	if after == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(after, 10, 64)
	if err != nil {
		return 0, fail.New(fail.BadInput, "invalid cursor '%s'", after)
	}
	return n, nil
}

// Create stores a new token, its first history entry and its
// token_created event atomically, and returns the token as committed. The
// index entry is written first; a crash before the batch leaves an entry
// that reads as "not found".
func (s *Store) Create(ctx context.Context, t *flow.Token, entry *flow.Entry) (*flow.Token, error) {
	wf, err := s.workflow(ctx, t.WorkflowID)
	if err != nil {
		return nil, err
	}
	if _, err := s.index.Create(ctx, t.ID, []byte(t.WorkflowID)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, storeError(err)
	}
	s.ids.put(t.ID, t.WorkflowID)
	ev := wire.Event{EventType: wire.EventTokenCreated, TokenID: t.ID, WorkflowID: t.WorkflowID,
		Place: t.Place, Timestamp: t.CreatedAt, TriggeredBy: optional(entry.Record.TriggeredBy),
		TriggeredByClaim: optional(entry.Record.TriggeredByClaim)}
	ch := &change{token: t, entry: entry, event: ev}
	if err := s.planTimers(ctx, wf, nil, ch); err != nil {
		return nil, err
	}
	return s.commit(ctx, wf, ch)
}

// Change commits next, which replaces prev (as read), with the history
// entry it adds (nil for none) and its event, if and only if prev is still
// the token's current state; otherwise fail.Conflict. It returns next as
// committed.
func (s *Store) Change(ctx context.Context, prev, next *flow.Token, entry *flow.Entry, ev wire.Event) (*flow.Token, error) {
	wf, err := s.workflow(ctx, next.WorkflowID)
	if err != nil {
		return nil, err
	}
	prevAttrs, err := s.indexedAttributes(ctx, wf, prev)
	if err != nil {
		return nil, err
	}
	ch := &change{token: next, prev: prev, prevAttrs: prevAttrs, entry: entry, prevSubject: prev.NatsSubject, prevSeq: prev.NatsSequence, event: ev}
	if err := s.planTimers(ctx, wf, prev, ch); err != nil {
		return nil, err
	}
	return s.commit(ctx, wf, ch)
}

// commit submits ch to its workflow's committer and remembers the committed
// state, unless it is large. An uncertain outcome (a timeout may still
// commit) forgets it.
func (s *Store) commit(ctx context.Context, wf *workflow, ch *change) (*flow.Token, error) {
	if err := wf.committer.submit(ctx, ch); err != nil {
		s.recent.remove(ch.token.ID)
		return nil, s.gone(ctx, ch.token.WorkflowID, wf, err)
	}
	if ch.remove || len(ch.stored) > recentMaxBytes {
		s.recent.remove(ch.token.ID)
	} else {
		s.recent.put(ch.token.ID, recentState{token: ch.token, size: len(ch.stored)})
	}
	return ch.token, nil
}

// Recent returns the state of a token as this instance last committed it,
// if it still remembers it. It is a guess, not a read: another instance may
// have changed the token since. A change built on it is verified by the
// compare-and-swap like any other, and a caller must re-check any refusal
// against a real read. It saves the read before a change, which waits while
// a batch commits on the workflow's stream. The token must not be modified.
func (s *Store) Recent(tokenID string) (*flow.Token, bool) {
	r, ok := s.recent.get(tokenID)
	return r.token, ok
}

// Hint offers a state just read as the guess Recent returns (a bulk
// change read its tokens already): like any guess it is verified by the
// compare-and-swap.
func (s *Store) Hint(t *flow.Token) {
	if _, ok := s.recent.get(t.ID); !ok {
		s.recent.put(t.ID, recentState{token: t, size: len(t.Data) + len(t.Metadata) + 512})
	}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Deleting a token takes two steps, each idempotent, so that running the
// delete again finishes one that stopped half-way:
//
//  1. Remove: one atomic batch of a tombstone on the token's state (in its
//     place, or its archived state) with the compare-and-swap of any
//     change, and its token_deleted event. From then on the token reads as
//     absent everywhere.
//  2. Purge: filtered purges of every subject of the token (its state or
//     tombstone in any place, its archived state, its history), then of
//     its index entry, last, so that a delete stopped after step 1 is
//     still found by id (the index) and finished. Only its events remain.

// Remove commits the first step of deleting cur (as read): a tombstone on
// its state, if it is still at cur's revision (else CONFLICT), and ev.
func (s *Store) Remove(ctx context.Context, cur *flow.Token, ev wire.Event) error {
	wf, err := s.workflow(ctx, cur.WorkflowID)
	if err != nil {
		return err
	}
	gone := cur.Clone()
	gone.Revision++
	prevAttrs, err := s.indexedAttributes(ctx, wf, cur)
	if err != nil {
		return err
	}
	_, err = s.commit(ctx, wf, &change{token: gone, prev: cur, prevAttrs: prevAttrs, prevSubject: cur.NatsSubject, prevSeq: cur.NatsSequence, remove: true, event: ev})
	return err
}

// Purge removes every message of a token from its workflow's stream and
// then its index entry (the second step of a delete). A workflow that no
// longer exists has nothing left to purge but the index entry.
func (s *Store) Purge(ctx context.Context, workflowID, tokenID string) error {
	if err := s.purgeMessages(ctx, workflowID, tokenID); err != nil {
		return err
	}
	return s.purgeIndex(ctx, tokenID)
}

// purgeMessages purges a token's subjects from its workflow's stream.
func (s *Store) purgeMessages(ctx context.Context, workflowID, tokenID string) error {
	wf, err := s.workflow(ctx, workflowID)
	if errors.Is(err, fail.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, subj := range []string{subjects.TokenAnyPlace(workflowID, tokenID), subjects.ArchivedToken(workflowID, tokenID),
		subjects.TokenHistory(workflowID, tokenID), subjects.IndexEntry(workflowID, "*", "*", tokenID)} {
		if err := wf.stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			if err = s.gone(ctx, workflowID, wf, err); errors.Is(err, fail.ErrNotFound) {
				return nil
			}
			return err
		}
	}
	s.recent.remove(tokenID)
	return nil
}

// purgeIndex removes a token's index entry without a trace (a filtered
// purge of its key leaves no delete marker).
func (s *Store) purgeIndex(ctx context.Context, tokenID string) error {
	if err := s.indexStream.Purge(ctx, jetstream.WithPurgeSubject(subjects.KVKey(subjects.TokenIndexBucket, tokenID))); err != nil {
		return storeError(err)
	}
	s.ids.remove(tokenID)
	return nil
}

// Indexed reports whether the index holds an entry for a token (read from
// JetStream, not the cache), and its workflow.
func (s *Store) Indexed(ctx context.Context, tokenID string) (string, bool, error) {
	b, err := s.rd.KV(ctx, s.index, tokenID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		s.ids.remove(tokenID)
		return "", false, nil
	}
	if err != nil {
		return "", false, storeError(err)
	}
	return string(b), true, nil
}
