package flow

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// Token is one instance of a workflow: it sits in one place and carries data
// and metadata. The Nats* fields are set by storage. A token does not
// carry its history: each change that adds to it returns its Entry, which
// storage keeps apart from the token's state, so that a change costs what
// it changes, not the token's past.
type Token struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflowId"`
	// WorkflowVersion is the definition version the token runs on: the
	// latest when it was created, until a migration moves it.
	WorkflowVersion int             `json:"workflowVersion"`
	Place           string          `json:"place"`
	Data            json.RawMessage `json:"data"`     // any JSON, default {}
	Metadata        json.RawMessage `json:"metadata"` // always a JSON object, default {}
	CreatedAt       time.Time       `json:"createdAt"`
	UpdatedAt       time.Time       `json:"updatedAt"`
	Revision        uint64          `json:"revision"`      // 1 at creation, +1 per change
	Records         int             `json:"records"`       // transition records in its history
	NatsSequence    uint64          `json:"natsSequence"`  // set by storage
	NatsSubject     string          `json:"natsSubject"`   // set by storage
	NatsTimestamp   time.Time       `json:"natsTimestamp"` // set by storage
	// ArchivedAt is when the token was archived (nil while it is live): an
	// archived token has left its place, and every list and count of live
	// tokens, and can no longer change; it stays readable by id with its
	// history.
	ArchivedAt *time.Time `json:"archivedAt,omitempty"`
	// EnteredAt and EnteredRevision are when and with which revision the
	// token entered its place (a create or a fire); timers count from them.
	EnteredAt       time.Time `json:"enteredAt,omitzero"`
	EnteredRevision uint64    `json:"enteredRevision,omitempty"`
	// Timers are the token's pending timers in its place (timer.go), set
	// by storage with each change.
	Timers []Timer `json:"timers,omitempty"`
	// Keys are the idempotency keys of the token's latest keyed changes
	// (at most MaxKeys), so that a retry is recognised without reading the
	// history. Not part of the token as clients see it.
	Keys []KeyUse `json:"-"`
	// IndexVersion is the definition version whose search attributes the
	// token's index entries follow (0: its WorkflowVersion), set by
	// storage with each change. Not part of the token as clients see it.
	IndexVersion int `json:"-"`
}

// MaxKeys is how many of a token's latest idempotency keys are
// remembered: a retry with an older key is not recognised.
const MaxKeys = 64

// KeyUse is an idempotency key one change of a token was made with.
type KeyUse struct {
	Key      string `json:"key"`
	Hash     string `json:"hash,omitempty"` // fingerprint of the keyed request
	Revision uint64 `json:"revision"`       // the revision the change made
}

// Entry is what one change adds to a token's history: its transition
// record and, for a fired transition, its history event. Create and fire
// add an entry; an update adds none.
type Entry struct {
	Record TransitionRecord
	Event  *HistoryEvent
}

// HistoryEvent records one fired transition.
type HistoryEvent struct {
	Timestamp  time.Time       `json:"timestamp"`
	Transition string          `json:"transition"`
	From       string          `json:"from"`
	To         string          `json:"to"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// TransitionRecord records a token's creation (TransitionID "create") or a
// fired transition, with who triggered it and its idempotency key.
type TransitionRecord struct {
	FromPlace    string    `json:"fromPlace"`
	ToPlace      string    `json:"toPlace"`
	TransitionID string    `json:"transitionId"`
	Timestamp    time.Time `json:"timestamp"`
	TriggeredBy  string    `json:"triggeredBy,omitempty"`
	// TriggeredByClaim is who the client said triggered the change when
	// the edge knew better (an authenticated identity): kept as a note,
	// never taken as the identity.
	TriggeredByClaim string          `json:"triggeredByClaim,omitempty"`
	NatsSequence     uint64          `json:"natsSequence"`
	Metadata         json.RawMessage `json:"metadata,omitempty"`
	IdempotencyKey   string          `json:"idempotencyKey,omitempty"`
	RequestHash      string          `json:"requestHash,omitempty"` // fingerprint of the keyed request
}

// Clone returns a deep copy of t.
func (t *Token) Clone() *Token {
	c := *t
	c.Data, c.Metadata = cloneRaw(t.Data), cloneRaw(t.Metadata)
	c.Keys = append(make([]KeyUse, 0, len(t.Keys)+1), t.Keys...)
	c.Timers = slices.Clone(t.Timers)
	return &c
}

// Idempotent returns the latest change of t made with key, or nil.
func (t *Token) Idempotent(key string) *KeyUse {
	if key == "" {
		return nil
	}
	for i := len(t.Keys) - 1; i >= 0; i-- {
		if t.Keys[i].Key == key {
			return &t.Keys[i]
		}
	}
	return nil
}

// remember records that the change to revision rev was made with key.
func (t *Token) remember(key, hash string, rev uint64) {
	if key == "" {
		return
	}
	t.Keys = append(t.Keys, KeyUse{Key: key, Hash: hash, Revision: rev})
	if n := len(t.Keys); n > MaxKeys {
		t.Keys = append([]KeyUse(nil), t.Keys[n-MaxKeys:]...)
	}
}

// cloneRaw copies raw, keeping nil as nil.
func cloneRaw(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	return append(json.RawMessage{}, raw...)
}

// CreateRequest asks for a new token.
type CreateRequest struct {
	TokenID          string          // "" = a new UUID
	InitialPlace     string          // "" = the definition's initial place
	Data             json.RawMessage // any JSON; default {}
	Metadata         json.RawMessage // a JSON object; default {}
	TriggeredBy      string
	TriggeredByClaim string // what the client claimed, when not TriggeredBy
	IdempotencyKey   string
	RequestHash      string    // fingerprint of the request, kept with the key
	Now              time.Time // zero = time.Now()
}

// Create returns a new token of m's workflow at revision 1 and its first
// history entry, the "create" TransitionRecord.
func (m *Machine) Create(r CreateRequest) (*Token, *Entry, error) {
	id, place, err := m.createTarget(r)
	if err != nil {
		return nil, nil, err
	}
	data, err := jsonOrDefault(r.Data, "data")
	if err != nil {
		return nil, nil, err
	}
	md, err := objectOrDefault(r.Metadata)
	if err != nil {
		return nil, nil, err
	}
	now := nowOr(r.Now)
	recMD, _ := json.Marshal(map[string]string{"event_type": "token_created", "workflow_id": m.Def.ID})
	t := &Token{ID: id, WorkflowID: m.Def.ID, WorkflowVersion: max(1, m.Def.Version), Place: place, Data: data, Metadata: md,
		CreatedAt: now, UpdatedAt: now, Revision: 1, Records: 1}
	t.Enter(now)
	t.remember(r.IdempotencyKey, r.RequestHash, 1)
	return t, &Entry{Record: TransitionRecord{
		FromPlace: place, ToPlace: place, TransitionID: "create", Timestamp: now,
		TriggeredBy: r.TriggeredBy, TriggeredByClaim: r.TriggeredByClaim, Metadata: recMD, IdempotencyKey: r.IdempotencyKey, RequestHash: r.RequestHash,
	}}, nil
}

// createTarget checks or chooses the new token's id and place.
func (m *Machine) createTarget(r CreateRequest) (id, place string, err error) {
	id = r.TokenID
	if id == "" {
		id = uuid.NewString()
	} else if !ValidName(id) {
		return "", "", fail.New(fail.BadInput, "%s", unsafeName("token id", id))
	}
	place = r.InitialPlace
	if place == "" {
		place = m.Def.InitialPlace
	}
	if !m.places[place] {
		return "", "", fail.New(fail.BadInput, "Place '%s' not found in workflow '%s'", place, m.Def.ID)
	}
	return id, place, nil
}

// jsonOrDefault returns raw compacted, or {} when raw is blank.
func jsonOrDefault(raw json.RawMessage, what string) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage(`{}`), nil
	}
	return compact(raw, what)
}

// compact validates raw and returns it without insignificant space.
func compact(raw json.RawMessage, what string) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fail.New(fail.BadInput, "%s is not valid JSON: %v", what, err)
	}
	return buf.Bytes(), nil
}

// objectOrDefault returns raw compacted if it is a JSON object, {} when raw
// is blank or null, and a BadInput error otherwise.
func objectOrDefault(raw json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return json.RawMessage(`{}`), nil
	}
	if !isObject(trimmed) {
		return nil, fail.New(fail.BadInput, "metadata must be a JSON object")
	}
	return compact(trimmed, "metadata")
}

// isObject reports whether raw is a syntactically valid JSON object.
func isObject(raw json.RawMessage) bool {
	trimmed := bytes.TrimSpace(raw)
	return len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed)
}

// nowOr returns now, or the current UTC time when now is zero.
func nowOr(now time.Time) time.Time {
	if now.IsZero() {
		return time.Now().UTC()
	}
	return now
}
