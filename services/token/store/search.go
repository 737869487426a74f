package store

import (
	"context"
	"errors"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// IndexedIDs returns the ids of a workflow's tokens whose index entries
// match filter (subjects.IndexValue or subjects.IndexKey) and whose
// encoded value keep accepts (nil: every one). It reads the index
// entries only, never a token's state: its cost is the entries that
// match filter, not the workflow (see lastEntries).
func (s *Store) IndexedIDs(ctx context.Context, workflowID, filter string, keep func(value string) bool) ([]string, error) {
	if _, err := s.workflow(ctx, workflowID); err != nil {
		return nil, err
	}
	live := map[string]string{} // subject → token id, the latest message of each subject winning
	add := func(msg *jetstream.RawStreamMsg) {
		s.read.Inc("index")
		delete(live, msg.Subject)
		if msg.Header.Get(subjects.HeaderTokenOp) == subjects.TokenOpDelete {
			return
		}
		parts := strings.Split(msg.Subject, ".") // workflows.<wf>.idx.<key>.<value>.<id>
		if keep == nil || keep(parts[len(parts)-2]) {
			live[msg.Subject] = parts[len(parts)-1]
		}
	}
	err := s.lastEntries(ctx, workflowID, filter, add)
	if errors.Is(err, errTooManySubjects) {
		err = s.scanEntries(ctx, workflowID, filter, add)
	}
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(live))
	for _, id := range live {
		ids = append(ids, id)
	}
	return ids, nil
}

// errTooManySubjects: more subjects match a filter than one multi-last
// direct get returns (the server's limit is 1024).
var errTooManySubjects = errors.New("more than 1024 subjects match")

// lastEntries calls add with the newest message of each subject matching
// filter, in one direct get; errTooManySubjects, before any call, when
// more than 1024 subjects match. The server finds the subjects in its
// subject index and reads each in the block holding its last message, so
// the cost is the subjects that match. A scan from the start of the
// stream (scanEntries) also costs the stream after the last match: its
// final step looks for one more match in every later block, since with
// over 64Ki subjects in the stream nats-server skips no block for a
// wildcard filter (fileStore.LoadNextMsg), and reads message by message
// through each such block whose cache is loaded (msgBlock.firstMatching).
func (s *Store) lastEntries(ctx context.Context, workflowID, filter string, add func(*jetstream.RawStreamMsg)) error {
	it, err := jetstreamext.GetLastMsgsFor(ctx, s.js, subjects.StreamName(workflowID), []string{filter})
	if err != nil {
		return storeError(err)
	}
	for msg, err := range it {
		switch {
		case errors.Is(err, jetstreamext.ErrNoMessages):
			return nil
		case errors.Is(err, jetstreamext.ErrBatchUnsupported):
			// jetstreamext v0.3.2 reports the server's "413 Too Many
			// Results" so (it has no Nats-Num-Pending header).
			return errTooManySubjects
		case err != nil:
			return storeError(err)
		}
		add(msg)
	}
	return nil
}

// scanEntries calls add with every message matching filter, in stream
// order, a page at a time. After the first page each page asks for at
// most the messages the server said were still pending, so the last one
// ends at the last match instead of searching the rest of the stream for
// one more. The first page cannot ask for too many: a scan runs only
// when more than 1024 subjects match.
func (s *Store) scanEntries(ctx context.Context, workflowID, filter string, add func(*jetstream.RawStreamMsg)) error {
	after := uint64(0)
	for want := scanPage; want > 0; {
		pending, err := s.batch(ctx, workflowID, filter, after, want, func(msg *jetstream.RawStreamMsg) bool {
			after = msg.Sequence
			add(msg)
			return true
		})
		if err != nil {
			return err
		}
		want = min(pending, scanPage)
	}
	return nil
}

// scanPage is the most messages a scan asks for at once.
const scanPage = 1000

// States returns the current states of a workflow's tokens by id, in one
// batch read per 256 ids; ids without a live state are left out.
func (s *Store) States(ctx context.Context, workflowID string, ids []string) (map[string]*flow.Token, error) {
	out := make(map[string]*flow.Token, len(ids))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 256)]
		ids = ids[len(chunk):]
		filters := make([]string, len(chunk))
		for i, id := range chunk {
			filters[i] = subjects.TokenAnyPlace(workflowID, id)
		}
		it, err := jetstreamext.GetLastMsgsFor(ctx, s.js, subjects.StreamName(workflowID), filters)
		if err != nil {
			return nil, storeError(err)
		}
		for msg, err := range it {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return nil, storeError(err)
			}
			s.read.Inc("get")
			if msg.Header.Get(subjects.HeaderTokenOp) == subjects.TokenOpDelete {
				continue
			}
			st, err := decodeState(msg.Data)
			if err != nil {
				return nil, err
			}
			t := st.token()
			if cur, ok := out[t.ID]; !ok || cur.Revision < t.Revision {
				out[t.ID] = t
			}
		}
	}
	return out, nil
}
