package store

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

func tokenNotFound(id string) error { return fail.New(fail.NotFound, "Token not found: %s", id) }

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
func (s *Store) Get(ctx context.Context, tokenID string) (*flow.Token, error) {
	wf, err := s.WorkflowOf(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	return s.Find(ctx, wf, tokenID)
}

// Find returns a token of a known workflow: a wildcard last-by-subject
// direct get, which always yields the token's newest message.
func (s *Store) Find(ctx context.Context, workflowID, tokenID string) (*flow.Token, error) {
	wf, err := s.workflow(ctx, workflowID)
	if err != nil {
		return nil, err
	}
	s.read.Inc("get")
	msg, err := s.rd.Last(ctx, wf.stream, subjects.TokenAnyPlace(workflowID, tokenID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, tokenNotFound(tokenID)
	}
	if err != nil {
		return nil, storeError(err)
	}
	if msg.Header.Get(subjects.HeaderTokenOp) == subjects.TokenOpDelete {
		return nil, tokenNotFound(tokenID)
	}
	return decodeToken(msg.Data)
}

func decodeToken(data []byte) (*flow.Token, error) {
	t := new(flow.Token)
	if err := json.Unmarshal(data, t); err != nil {
		return nil, fail.Wrap(fail.Internal, err, "stored token is unreadable")
	}
	return t, nil
}

// List returns a page of a workflow's tokens in stream order.
func (s *Store) List(ctx context.Context, workflowID string, p wire.Page) (*wire.TokenPage, error) {
	return s.scan(ctx, workflowID, subjects.AllTokens(workflowID), p)
}

// InPlace returns a page of the tokens in a place. Tokens that left the
// place are never listed: their old subject holds only a tombstone.
func (s *Store) InPlace(ctx context.Context, workflowID, place string, p wire.Page) (*wire.TokenPage, error) {
	wf, err := s.workflow(ctx, workflowID)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(wf.machine.Def.Places, place) {
		return nil, fail.New(fail.NotFound, "Place '%s' not found in workflow '%s'", place, workflowID)
	}
	return s.scan(ctx, workflowID, subjects.PlaceTokens(workflowID, place), p)
}

// scan pages through the newest message of each subject matching filter
// with direct batch gets, skipping tombstones. The cursor is the stream
// sequence of the last token returned. Rollups leave one message per token
// subject, so the scan costs what the answer holds plus its tombstones.
func (s *Store) scan(ctx context.Context, workflowID, filter string, p wire.Page) (*wire.TokenPage, error) {
	if _, err := s.workflow(ctx, workflowID); err != nil {
		return nil, err
	}
	after, err := cursor(p.After)
	if err != nil {
		return nil, err
	}
	size := p.Size()
	page := &wire.TokenPage{Items: make([]*flow.Token, 0, min(size, 64))}
	for more := true; more; {
		if len(page.Items) == size {
			page.Next = strconv.FormatUint(after, 10)
			break
		}
		more, err = s.scanBatch(ctx, workflowID, filter, &after, size-len(page.Items), page)
		if err != nil {
			return nil, err
		}
	}
	return page, nil
}

// scanBatch reads one direct batch after *after, appending at most want live
// tokens to page, and reports whether more messages match.
func (s *Store) scanBatch(ctx context.Context, wfID, filter string, after *uint64, want int, page *wire.TokenPage) (bool, error) {
	if s.rd.Leader() {
		return s.scanLeader(ctx, wfID, filter, after, want, page)
	}
	it, err := jetstreamext.GetBatch(ctx, s.js, subjects.StreamName(wfID), min(want+want/2+8, 1000),
		jetstreamext.GetBatchSeq(*after+1), jetstreamext.GetBatchSubject(filter))
	if err != nil {
		return false, storeError(err)
	}
	more, added := false, 0
	for msg, err := range it {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			return false, nil
		}
		if err != nil {
			return false, storeError(err)
		}
		more = msg.Header.Get("Nats-Num-Pending") != "0"
		*after = msg.Sequence
		s.read.Inc("scan")
		if msg.Header.Get(subjects.HeaderTokenOp) == subjects.TokenOpDelete {
			continue
		}
		t, err := decodeToken(msg.Data)
		if err != nil {
			return false, err
		}
		page.Items = append(page.Items, t)
		if added++; added == want {
			break
		}
	}
	return more, nil
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

// Create stores a new token and its token_created event atomically. The
// index entry is written first; a crash before the batch leaves an entry
// that reads as "not found".
func (s *Store) Create(ctx context.Context, t *flow.Token, triggeredBy string) error {
	wf, err := s.workflow(ctx, t.WorkflowID)
	if err != nil {
		return err
	}
	if _, err := s.index.Create(ctx, t.ID, []byte(t.WorkflowID)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return storeError(err)
	}
	s.ids.put(t.ID, t.WorkflowID)
	ev := wire.Event{EventType: wire.EventTokenCreated, TokenID: t.ID, WorkflowID: t.WorkflowID,
		Place: t.Place, Timestamp: t.CreatedAt, TriggeredBy: optional(triggeredBy)}
	return wf.committer.submit(ctx, &change{token: t, event: ev})
}

// Change commits next, which replaces prev (as read), with its event, if and
// only if prev is still the token's current state; otherwise fail.Conflict.
func (s *Store) Change(ctx context.Context, prev, next *flow.Token, ev wire.Event) error {
	wf, err := s.workflow(ctx, next.WorkflowID)
	if err != nil {
		return err
	}
	ch := &change{token: next, prevSubject: prev.NatsSubject, prevSeq: prev.NatsSequence, event: ev}
	return wf.committer.submit(ctx, ch)
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// scanLeader is scanBatch through the stream leader, one message a request.
func (s *Store) scanLeader(ctx context.Context, wfID, filter string, after *uint64, want int, page *wire.TokenPage) (bool, error) {
	for added := 0; added < want; {
		msg, err := s.rd.Next(ctx, subjects.StreamName(wfID), *after+1, filter)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil
		}
		if err != nil {
			return false, storeError(err)
		}
		*after = msg.Sequence
		s.read.Inc("scan")
		if msg.Header.Get(subjects.HeaderTokenOp) == subjects.TokenOpDelete {
			continue
		}
		t, err := decodeToken(msg.Data)
		if err != nil {
			return false, err
		}
		page.Items = append(page.Items, t)
		added++
	}
	return true, nil
}
