package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Upgrade in place: a workflow stream written by the layout-1 release
// (each token's state message held its whole history) is brought to
// layout 2 the first time this store uses the workflow. For each token
// whose state still holds its history, the history is written as entries
// on the token's history subject, then the state without it — the last
// entries and the new state in one atomic batch, with compare-and-swap on
// both subjects, so the upgrade is idempotent and resumes where a crash
// left it (entries carry their number; the ones already written are not
// written again). Then the stream records the layout on subjects.Layout.
// A token's revision, times, data and history are kept; its state's
// natsSequence becomes that of the rewritten message.
//
// Stop every token service of the old release before starting the new
// one: an old instance would write layout-1 states again.

// layoutMark is the body of the layout record.
type layoutMark struct {
	Layout int `json:"layout"`
}

// upgrade brings the workflow's stream to the current layout, if needed.
func (s *Store) upgrade(ctx context.Context, wfID string, st jetstream.Stream) error {
	if msg, err := s.rd.Last(ctx, st, subjects.Layout(wfID)); err == nil {
		var m layoutMark
		if json.Unmarshal(msg.Data, &m) == nil && m.Layout >= layout {
			return nil
		}
	} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return storeError(err)
	}
	log := s.log.With().Str("workflow", wfID).Logger()
	log.Info().Msg("upgrading stored tokens to layout 2 (history apart from state)")
	if err := s.unlimitSubjects(ctx, st); err != nil {
		return err
	}
	n, err := s.upgradeTokens(ctx, wfID, st)
	if err != nil {
		return fmt.Errorf("upgrade workflow %s after %d tokens: %w", wfID, n, err)
	}
	mark, _ := json.Marshal(layoutMark{Layout: layout})
	if _, err := s.js.Publish(ctx, subjects.Layout(wfID), mark); err != nil {
		return storeError(err)
	}
	log.Info().Int("tokens", n).Msg("upgraded stored tokens to layout 2")
	return nil
}

// unlimitSubjects lifts the per-subject message limit layout 1 used for
// event retention: a history subject holds a message per change. (The
// event service now trims events by count itself.)
func (s *Store) unlimitSubjects(ctx context.Context, st jetstream.Stream) error {
	info, err := st.Info(ctx)
	if err != nil {
		return storeError(err)
	}
	if info.Config.MaxMsgsPerSubject <= 0 {
		return nil
	}
	cfg := info.Config
	cfg.MaxMsgsPerSubject = -1
	_, err = s.js.UpdateStream(ctx, cfg)
	return storeError(err)
}

// upgradeTokens upgrades every layout-1 token state of the stream and
// returns how many it upgraded.
func (s *Store) upgradeTokens(ctx context.Context, wfID string, st jetstream.Stream) (int, error) {
	n := 0
	for after := uint64(0); ; {
		it, err := jetstreamext.GetBatch(ctx, s.js, subjects.StreamName(wfID), 256,
			jetstreamext.GetBatchSeq(after+1), jetstreamext.GetBatchSubject(subjects.AllTokens(wfID)))
		if err != nil {
			return n, storeError(err)
		}
		read := 0
		for msg, err := range it {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return n, storeError(err)
			}
			read, after = read+1, msg.Sequence
			done, err := s.upgradeToken(ctx, wfID, st, msg)
			if err != nil {
				return n, err
			}
			if done {
				if n++; n%1000 == 0 {
					s.log.Info().Str("workflow", wfID).Int("tokens", n).Msg("upgrading")
				}
			}
		}
		if read == 0 {
			return n, nil
		}
	}
}

// upgradeToken rewrites one layout-1 state (a message read by a scan,
// possibly superseded since); done reports that it did.
func (s *Store) upgradeToken(ctx context.Context, wfID string, st jetstream.Stream, msg *jetstream.RawStreamMsg) (bool, error) {
	if msg.Header.Get(subjects.HeaderTokenOp) == subjects.TokenOpDelete {
		return false, nil
	}
	cur, err := decodeState(msg.Data)
	if err != nil || cur.Legacy == nil {
		return false, err
	}
	if latest, err := s.rd.Last(ctx, st, msg.Subject); err != nil || latest.Sequence != msg.Sequence {
		return false, storeError(err) // superseded: the newer message is seen later in the scan
	}
	entries := cur.Legacy.entries()
	hist := subjects.TokenHistory(wfID, cur.ID)
	histSeq, written, err := s.lastEntry(ctx, st, hist)
	if err != nil {
		return false, err
	}
	for {
		chunk := entries[min(written, len(entries)):min(written+maxBatchMsgs-1, len(entries))]
		final := written+len(chunk) == len(entries)
		last, err := s.writeChunk(ctx, st, hist, histSeq, chunk, cur, msg, final)
		if err != nil || final {
			return err == nil, err
		}
		histSeq, written = last, written+len(chunk)
	}
}

// lastEntry returns the sequence and number of a history subject's last
// entry (0, 0 when it has none).
func (s *Store) lastEntry(ctx context.Context, st jetstream.Stream, hist string) (uint64, int, error) {
	msg, err := s.rd.Last(ctx, st, hist)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, storeError(err)
	}
	e, err := decodeEntry(msg.Data)
	if err != nil {
		return 0, 0, err
	}
	return msg.Sequence, e.N, nil
}

// writeChunk writes entries as one atomic batch after the history
// subject's entry at histSeq, and with the final chunk the token's
// layout-2 state replacing old. It returns the sequence of the batch's
// last message.
func (s *Store) writeChunk(ctx context.Context, st jetstream.Stream, hist string, histSeq uint64,
	entries []storedEntry, cur *storedToken, old *jetstream.RawStreamMsg, final bool) (uint64, error) {
	info, err := st.Info(ctx)
	if err != nil {
		return 0, storeError(err)
	}
	last := info.State.LastSeq
	var msgs []*nats.Msg
	for i, e := range entries {
		m := nats.NewMsg(hist)
		if m.Data, err = json.Marshal(e); err != nil {
			return 0, storeError(err)
		}
		if i == 0 {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(histSeq, 10))
		}
		msgs = append(msgs, m)
	}
	if final {
		msgs = append(msgs, s.upgradedState(cur, old, last+uint64(len(msgs))+1))
	}
	msgs[0].Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(last, 10))
	ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs, jetstreamext.BatchFlowControl{AckTimeout: commitTimeout})
	if err != nil {
		return 0, storeError(err)
	}
	return ack.Sequence, nil
}

// upgradedState is old's token as a layout-2 state message at sequence seq.
func (s *Store) upgradedState(cur *storedToken, old *jetstream.RawStreamMsg, seq uint64) *nats.Msg {
	next := *cur
	next.Layout, next.Legacy, next.NatsSequence = layout, nil, seq
	m := nats.NewMsg(old.Subject)
	m.Data, _ = json.Marshal(next)
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(old.Sequence, 10))
	m.Header.Set(subjects.HeaderTokenRev, strconv.FormatUint(cur.Revision, 10))
	return m
}
