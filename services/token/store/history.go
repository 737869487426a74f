package store

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// History returns a page of a token's history entries, oldest first: at
// most limit of those after stream sequence after (0: from the first),
// only those of fired transitions when fires is set. Next is the cursor
// of the following page; 0 when this page reached the end. The cost is
// the entries read, never the token's whole past.
func (s *Store) History(ctx context.Context, tokenID string, after uint64, limit int, fires bool) (*wire.TokenHistoryPage, error) {
	wfID, err := s.WorkflowOf(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	if _, err := s.state(ctx, wfID, tokenID); errors.Is(err, fail.ErrNotFound) { // the token must exist (and its workflow)
		return nil, tokenNotFound(tokenID)
	} else if err != nil {
		return nil, err
	}
	h := &historyPage{limit: limit, fires: fires, page: &wire.TokenHistoryPage{Items: []wire.HistoryItem{}}}
	if after == wire.MaxSequence {
		return h.page, nil
	}
	read := s.historyDirect
	if s.rd.Leader() {
		read = s.historyLeader
	}
	for cur, more := after, true; more && !h.full(); {
		if cur, more, err = read(ctx, wfID, tokenID, cur, h); err != nil {
			return nil, err
		}
		if more && h.full() {
			h.page.Next = cur
		}
	}
	return h.page, nil
}

// historyPage collects a page of entries.
type historyPage struct {
	limit int
	fires bool
	page  *wire.TokenHistoryPage
	bytes int // stored size of the entries taken
}

// full reports that the page holds as many entries, or as many bytes, as
// it may (a page of large fire data stops early, with a cursor).
func (h *historyPage) full() bool {
	return len(h.page.Items) >= h.limit || h.bytes >= wire.MaxPageBytes
}

// add decodes one history message into the page.
func (h *historyPage) add(msg *jetstream.RawStreamMsg) error {
	st, err := decodeEntry(msg.Data)
	if err != nil {
		return err
	}
	if h.fires && st.Event == nil {
		return nil
	}
	e := st.entry()
	h.page.Items = append(h.page.Items, wire.HistoryItem{Sequence: msg.Sequence, Record: e.Record, Event: e.Event})
	h.bytes += len(msg.Data)
	return nil
}

// historyDirect reads one direct batch of a token's entries after cur; it
// returns the sequence of the last message read and whether more follow.
func (s *Store) historyDirect(ctx context.Context, wfID, tokenID string, cur uint64, h *historyPage) (uint64, bool, error) {
	it, err := jetstreamext.GetBatch(ctx, s.js, subjects.StreamName(wfID), min(h.limit-len(h.page.Items)+1, 1000),
		jetstreamext.GetBatchSeq(cur+1), jetstreamext.GetBatchSubject(subjects.TokenHistory(wfID, tokenID)))
	if err != nil {
		return cur, false, storeError(err)
	}
	more := false
	for msg, err := range it {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			return cur, false, nil
		}
		if err != nil {
			return cur, false, storeError(err)
		}
		s.read.Inc("history")
		if h.full() {
			return cur, true, nil // one more exists
		}
		if err := h.add(msg); err != nil {
			return cur, false, err
		}
		cur, more = msg.Sequence, msg.Header.Get("Nats-Num-Pending") != "0"
	}
	return cur, more, nil
}

// historyLeader reads through the stream leader, one message a request.
func (s *Store) historyLeader(ctx context.Context, wfID, tokenID string, cur uint64, h *historyPage) (uint64, bool, error) {
	for !h.full() {
		msg, err := s.rd.Next(ctx, subjects.StreamName(wfID), cur+1, subjects.TokenHistory(wfID, tokenID))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return cur, false, nil
		}
		if err != nil {
			return cur, false, storeError(err)
		}
		s.read.Inc("history")
		if err := h.add(msg); err != nil {
			return cur, false, err
		}
		cur = msg.Sequence
	}
	_, err := s.rd.Next(ctx, subjects.StreamName(wfID), cur+1, subjects.TokenHistory(wfID, tokenID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return cur, false, nil
	}
	return cur, err == nil, storeError(err)
}
