package store

import (
	"encoding/json"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// The stored forms: what the token service writes to a workflow's stream.
// They are not the domain's types (shared/flow) and not the wire's: each
// has named conversions, and golden files pin their bytes
// (TestStoredFormsAreStable), so the domain can change without a storage
// migration, and a change of the stored form is a deliberate one.
//
// Layout 2 (this one) keeps a token's state and its history apart:
//
//	workflows.<wf>.places.<place>.tokens.<id>  storedToken: the current state, no history (rolled up)
//	workflows.<wf>.history.<id>                storedEntry: one per change that adds to the history
//	workflows.<wf>.archive.<id>                storedToken of an archived token (ArchivedAt set), out of every place
//
// Layout 1 held the whole history inside the state message; Upgrade
// converts it (migrate.go).

// layout is the stored layout this code writes; a workflow stream records
// the layout of its tokens on subjects.Layout once upgraded.
const layout = subjects.CurrentLayout

// storedToken is a token's state message.
type storedToken struct {
	Layout     int    `json:"layout"` // 2; layout-1 states have none (and carry their history)
	ID         string `json:"id"`
	WorkflowID string `json:"workflowId"`
	// WorkflowVersion is the definition version; 0 (states written before
	// versions existed) reads as 1.
	WorkflowVersion int              `json:"workflowVersion,omitempty"`
	Place           string           `json:"place"`
	Data            json.RawMessage  `json:"data"`
	Metadata        json.RawMessage  `json:"metadata"`
	CreatedAt       time.Time        `json:"createdAt"`
	UpdatedAt       time.Time        `json:"updatedAt"`
	Revision        uint64           `json:"revision"`
	Records         int              `json:"records"` // history entries so far
	Keys            []storedKey      `json:"keys,omitempty"`
	NatsSequence    uint64           `json:"natsSequence"`
	NatsSubject     string           `json:"natsSubject"`
	NatsTimestamp   time.Time        `json:"natsTimestamp"`
	ArchivedAt      *time.Time       `json:"archivedAt,omitempty"`      // set on workflows.<wf>.archive.<id>
	EnteredAt       time.Time        `json:"enteredAt,omitzero"`        // timers count from the entry into the place
	EnteredRevision uint64           `json:"enteredRevision,omitempty"` // the revision that entered it
	Timers          []storedTimer    `json:"timers,omitempty"`          // pending timers, scheduled in the same batch
	IndexVersion    int              `json:"indexVersion,omitempty"`    // the version whose search attributes its index entries follow (0: WorkflowVersion)
	Legacy          *legacyHistories `json:"-"`                         // a layout-1 state's history, when read
}

// storedTimer is one pending timer of a token (timers.go).
type storedTimer struct {
	TransitionID string    `json:"transitionId"`
	DueAt        time.Time `json:"dueAt"`
	Revision     uint64    `json:"revision"`
}

// storedKey is one remembered idempotency key.
type storedKey struct {
	Key      string `json:"key"`
	Hash     string `json:"hash,omitempty"`
	Revision uint64 `json:"revision"`
}

// storedEntry is one history message: the change's transition record
// and, for a fired transition, its history event. N numbers the entries
// of a token from 1, so an interrupted upgrade knows where it stopped.
type storedEntry struct {
	N      int          `json:"n"`
	Record storedRecord `json:"record"`
	Event  *storedEvent `json:"event,omitempty"`
}

type storedRecord struct {
	FromPlace        string          `json:"fromPlace"`
	ToPlace          string          `json:"toPlace"`
	TransitionID     string          `json:"transitionId"`
	Timestamp        time.Time       `json:"timestamp"`
	TriggeredBy      string          `json:"triggeredBy,omitempty"`
	TriggeredByClaim string          `json:"triggeredByClaim,omitempty"`
	NatsSequence     uint64          `json:"natsSequence"`
	Metadata         json.RawMessage `json:"metadata,omitempty"`
	IdempotencyKey   string          `json:"idempotencyKey,omitempty"`
	RequestHash      string          `json:"requestHash,omitempty"`
}

type storedEvent struct {
	Timestamp  time.Time       `json:"timestamp"`
	Transition string          `json:"transition"`
	From       string          `json:"from"`
	To         string          `json:"to"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// legacyHistories is the history a layout-1 state message carried.
type legacyHistories struct {
	History           []storedEvent  `json:"history"`
	TransitionHistory []storedRecord `json:"transitionHistory"`
}

// toStored is t as its state message holds it.
func toStored(t *flow.Token) storedToken {
	s := storedToken{Layout: layout, ID: t.ID, WorkflowID: t.WorkflowID, WorkflowVersion: t.WorkflowVersion, Place: t.Place, Data: t.Data, Metadata: t.Metadata,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, Revision: t.Revision, Records: t.Records,
		NatsSequence: t.NatsSequence, NatsSubject: t.NatsSubject, NatsTimestamp: t.NatsTimestamp, ArchivedAt: t.ArchivedAt,
		EnteredAt: t.EnteredAt, EnteredRevision: t.EnteredRevision, IndexVersion: t.IndexVersion}
	for _, k := range t.Keys {
		s.Keys = append(s.Keys, storedKey(k))
	}
	for _, tm := range t.Timers {
		s.Timers = append(s.Timers, storedTimer(tm))
	}
	return s
}

// token is the domain's token of a state message.
func (s *storedToken) token() *flow.Token {
	t := &flow.Token{ID: s.ID, WorkflowID: s.WorkflowID, WorkflowVersion: max(1, s.WorkflowVersion), Place: s.Place, Data: s.Data, Metadata: s.Metadata,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, Revision: s.Revision, Records: s.Records,
		NatsSequence: s.NatsSequence, NatsSubject: s.NatsSubject, NatsTimestamp: s.NatsTimestamp, ArchivedAt: s.ArchivedAt,
		EnteredAt: s.EnteredAt, EnteredRevision: s.EnteredRevision, IndexVersion: s.IndexVersion}
	for _, k := range s.Keys {
		t.Keys = append(t.Keys, flow.KeyUse(k))
	}
	for _, tm := range s.Timers {
		t.Timers = append(t.Timers, flow.Timer(tm))
	}
	return t
}

// encodeState is t's state message body.
func encodeState(t *flow.Token) ([]byte, error) {
	b, err := json.Marshal(toStored(t))
	if err != nil {
		return nil, fail.Wrap(fail.Internal, err, "encode token "+t.ID)
	}
	return b, nil
}

// decodeState reads a state message of either layout. A layout-1 state
// keeps its history in Legacy and counts its records.
func decodeState(data []byte) (*storedToken, error) {
	s := new(storedToken)
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fail.Wrap(fail.Internal, err, "stored token is unreadable")
	}
	if s.Layout >= layout {
		return s, nil
	}
	s.Legacy = new(legacyHistories)
	if err := json.Unmarshal(data, s.Legacy); err != nil {
		return nil, fail.Wrap(fail.Internal, err, "stored token "+s.ID+" is unreadable")
	}
	s.Records = len(s.Legacy.TransitionHistory)
	for _, r := range s.Legacy.TransitionHistory {
		if r.IdempotencyKey != "" {
			s.Keys = append(s.Keys, storedKey{Key: r.IdempotencyKey, Hash: r.RequestHash, Revision: s.Revision})
		}
	}
	if n := len(s.Keys); n > flow.MaxKeys {
		s.Keys = s.Keys[n-flow.MaxKeys:]
	}
	return s, nil
}

// toStoredEntry is entry number n of a token, stamped with the stream
// sequence of the state its change wrote.
func toStoredEntry(e *flow.Entry, n int, seq uint64) storedEntry {
	s := storedEntry{N: n, Record: storedRecord{FromPlace: e.Record.FromPlace, ToPlace: e.Record.ToPlace,
		TransitionID: e.Record.TransitionID, Timestamp: e.Record.Timestamp, TriggeredBy: e.Record.TriggeredBy,
		TriggeredByClaim: e.Record.TriggeredByClaim, NatsSequence: seq, Metadata: e.Record.Metadata, IdempotencyKey: e.Record.IdempotencyKey, RequestHash: e.Record.RequestHash}}
	if ev := e.Event; ev != nil {
		s.Event = &storedEvent{Timestamp: ev.Timestamp, Transition: ev.Transition, From: ev.From, To: ev.To, Data: ev.Data}
	}
	return s
}

// entry is the domain's history entry of a history message.
func (s *storedEntry) entry() flow.Entry {
	r := s.Record
	e := flow.Entry{Record: flow.TransitionRecord{FromPlace: r.FromPlace, ToPlace: r.ToPlace, TransitionID: r.TransitionID,
		Timestamp: r.Timestamp, TriggeredBy: r.TriggeredBy, TriggeredByClaim: r.TriggeredByClaim, NatsSequence: r.NatsSequence, Metadata: r.Metadata,
		IdempotencyKey: r.IdempotencyKey, RequestHash: r.RequestHash}}
	if ev := s.Event; ev != nil {
		e.Event = &flow.HistoryEvent{Timestamp: ev.Timestamp, Transition: ev.Transition, From: ev.From, To: ev.To, Data: ev.Data}
	}
	return e
}

func decodeEntry(data []byte) (*storedEntry, error) {
	s := new(storedEntry)
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fail.Wrap(fail.Internal, err, "stored history entry is unreadable")
	}
	return s, nil
}

// legacyEntries pairs a layout-1 history into entries: the n-th record,
// and for every record but a create the next history event in order.
func (h *legacyHistories) entries() []storedEntry {
	out := make([]storedEntry, len(h.TransitionHistory))
	events := h.History
	for i, r := range h.TransitionHistory {
		out[i] = storedEntry{N: i + 1, Record: r}
		if r.TransitionID != "create" && len(events) > 0 {
			ev := events[0]
			out[i].Event, events = &ev, events[1:]
		}
	}
	return out
}
