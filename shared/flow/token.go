package flow

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// Token is one instance of a workflow: it sits in one place and carries data
// and metadata. The Nats* fields are set by storage.
type Token struct {
	ID                string             `json:"id"`
	WorkflowID        string             `json:"workflowId"`
	Place             string             `json:"place"`
	Data              json.RawMessage    `json:"data"`     // any JSON, default {}
	Metadata          json.RawMessage    `json:"metadata"` // always a JSON object, default {}
	CreatedAt         time.Time          `json:"createdAt"`
	UpdatedAt         time.Time          `json:"updatedAt"`
	History           []HistoryEvent     `json:"history"`
	TransitionHistory []TransitionRecord `json:"transitionHistory"`
	Revision          uint64             `json:"revision"`      // 1 at creation, +1 per change
	NatsSequence      uint64             `json:"natsSequence"`  // set by storage
	NatsSubject       string             `json:"natsSubject"`   // set by storage
	NatsTimestamp     time.Time          `json:"natsTimestamp"` // set by storage
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
	FromPlace      string          `json:"fromPlace"`
	ToPlace        string          `json:"toPlace"`
	TransitionID   string          `json:"transitionId"`
	Timestamp      time.Time       `json:"timestamp"`
	TriggeredBy    string          `json:"triggeredBy,omitempty"`
	NatsSequence   uint64          `json:"natsSequence"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
	IdempotencyKey string          `json:"idempotencyKey,omitempty"`
	RequestHash    string          `json:"requestHash,omitempty"` // fingerprint of the keyed request
}

// Clone returns a deep copy of t.
func (t *Token) Clone() *Token {
	c := *t
	c.Data, c.Metadata = cloneRaw(t.Data), cloneRaw(t.Metadata)
	c.History = make([]HistoryEvent, len(t.History), len(t.History)+1)
	for i, e := range t.History {
		e.Data = cloneRaw(e.Data)
		c.History[i] = e
	}
	c.TransitionHistory = make([]TransitionRecord, len(t.TransitionHistory), len(t.TransitionHistory)+1)
	for i, r := range t.TransitionHistory {
		r.Metadata = cloneRaw(r.Metadata)
		c.TransitionHistory[i] = r
	}
	return &c
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
	TokenID        string          // "" = a new UUID
	InitialPlace   string          // "" = the definition's initial place
	Data           json.RawMessage // any JSON; default {}
	Metadata       json.RawMessage // a JSON object; default {}
	TriggeredBy    string
	IdempotencyKey string
	RequestHash    string    // fingerprint of the request, kept with the key
	Now            time.Time // zero = time.Now()
}

// Create returns a new token of m's workflow at revision 1, with one
// "create" TransitionRecord.
func (m *Machine) Create(r CreateRequest) (*Token, error) {
	id, place, err := m.createTarget(r)
	if err != nil {
		return nil, err
	}
	data, err := jsonOrDefault(r.Data, "data")
	if err != nil {
		return nil, err
	}
	md, err := objectOrDefault(r.Metadata)
	if err != nil {
		return nil, err
	}
	now := nowOr(r.Now)
	recMD, _ := json.Marshal(map[string]string{"event_type": "token_created", "workflow_id": m.Def.ID})
	return &Token{
		ID: id, WorkflowID: m.Def.ID, Place: place, Data: data, Metadata: md,
		CreatedAt: now, UpdatedAt: now, Revision: 1, History: []HistoryEvent{},
		TransitionHistory: []TransitionRecord{{
			FromPlace: place, ToPlace: place, TransitionID: "create", Timestamp: now,
			TriggeredBy: r.TriggeredBy, Metadata: recMD, IdempotencyKey: r.IdempotencyKey, RequestHash: r.RequestHash,
		}},
	}, nil
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
