package store

import (
	"context"
	"errors"
	"strings"

	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// IndexedIDs returns the ids of a workflow's tokens whose index entries
// match filter (subjects.IndexValue or subjects.IndexKey) and whose
// encoded value keep accepts (nil: every one). It reads the index
// entries only, never a token's state: its cost is the entries that
// match filter.
func (s *Store) IndexedIDs(ctx context.Context, workflowID, filter string, keep func(value string) bool) ([]string, error) {
	if _, err := s.workflow(ctx, workflowID); err != nil {
		return nil, err
	}
	live := map[string]string{} // subject → token id, the latest message of each subject winning
	for after := uint64(0); ; {
		it, err := jetstreamext.GetBatch(ctx, s.js, subjects.StreamName(workflowID), 1000,
			jetstreamext.GetBatchSeq(after+1), jetstreamext.GetBatchSubject(filter))
		if err != nil {
			return nil, storeError(err)
		}
		more := false
		for msg, err := range it {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return nil, storeError(err)
			}
			after, more = msg.Sequence, msg.Header.Get("Nats-Num-Pending") != "0"
			s.read.Inc("index")
			delete(live, msg.Subject)
			if msg.Header.Get(subjects.HeaderTokenOp) == subjects.TokenOpDelete {
				continue
			}
			parts := strings.Split(msg.Subject, ".") // workflows.<wf>.idx.<key>.<value>.<id>
			if keep == nil || keep(parts[len(parts)-2]) {
				live[msg.Subject] = parts[len(parts)-1]
			}
		}
		if !more {
			break
		}
	}
	ids := make([]string, 0, len(live))
	for _, id := range live {
		ids = append(ids, id)
	}
	return ids, nil
}

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
