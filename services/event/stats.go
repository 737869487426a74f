package event

import (
	"context"
	"errors"
	"time"

	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// stats counts a workflow's live tokens per place and its stored events per
// type, and the transitions committed in a recent window. It reads every
// token and event of the workflow: use it for dashboards, not hot paths.
func (s *Service) stats(ctx context.Context, r *wire.StatsRequest) (*wire.Stats, error) {
	st := &wire.Stats{WorkflowID: r.WorkflowID, TokensPerPlace: map[string]int{}, EventsPerType: map[string]int{},
		WindowMinutes: r.WindowMinutes}
	if st.WindowMinutes == 0 {
		st.WindowMinutes = 60
	}
	if err := s.countTokens(ctx, st); err != nil {
		return nil, err
	}
	since := s.now().Add(-time.Duration(st.WindowMinutes) * time.Minute)
	h := &wire.HistoryRequest{WorkflowID: r.WorkflowID, First: wire.MaxPageSize}
	for {
		var last uint64
		err := s.scan(ctx, h, func(rec wire.EventRecord, _ bool) bool {
			last = rec.Sequence
			st.Events++
			st.EventsPerType[rec.Event.EventType]++
			if rec.Event.EventType == wire.EventTokenTransitioned && rec.Time.After(since) {
				st.TransitionsInWindow++
			}
			return true
		})
		if err != nil {
			return nil, err
		}
		if last == 0 || last == h.AfterSequence {
			break
		}
		h.AfterSequence = last
	}
	st.TransitionsPerMinute = float64(st.TransitionsInWindow) / float64(st.WindowMinutes)
	return st, nil
}

func (s *Service) countTokens(ctx context.Context, st *wire.Stats) error {
	var after uint64
	for {
		it, err := jetstreamext.GetBatch(ctx, s.js, subjects.StreamName(st.WorkflowID), maxScan,
			jetstreamext.GetBatchSeq(after+1), jetstreamext.GetBatchSubject(subjects.AllTokens(st.WorkflowID)))
		if err != nil {
			return s.readError(ctx, st.WorkflowID, err)
		}
		n := 0
		for msg, err := range it {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				return nil
			}
			if err != nil {
				return s.readError(ctx, st.WorkflowID, err)
			}
			n, after = n+1, msg.Sequence
			if msg.Header.Get(subjects.HeaderTokenOp) != subjects.TokenOpDelete {
				st.Tokens++
				st.TokensPerPlace[subjects.PlaceFromSubject(msg.Subject)]++
			}
		}
		if n < maxScan {
			return nil
		}
	}
}
