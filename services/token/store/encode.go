package store

import (
	"encoding/json"
	"time"

	"github.com/cbnats/circuitbreaker/shared/flow"
)

// histories is the JSON of a stored token's two history arrays, the
// elements joined without brackets, with how many elements each holds.
// A token carries its whole history and its entries never change once
// stored, so the next change of the token encodes only the entries it
// appends: encoding every entry again took half the CPU of writes to
// tokens with hundreds of transitions.
type histories struct {
	events, records   []byte
	nEvents, nRecords int
}

// size is the memory the JSON takes.
func (h *histories) size() int {
	if h == nil {
		return 0
	}
	return len(h.events) + len(h.records)
}

// tokenHead and tokenTail are flow.Token's fields before and after its
// histories, in order (TestEncodeTokenMatchesJSON holds them together).
type tokenHead struct {
	ID         string          `json:"id"`
	WorkflowID string          `json:"workflowId"`
	Place      string          `json:"place"`
	Data       json.RawMessage `json:"data"`
	Metadata   json.RawMessage `json:"metadata"`
	CreatedAt  time.Time       `json:"createdAt"`
	UpdatedAt  time.Time       `json:"updatedAt"`
}

type tokenTail struct {
	Revision      uint64    `json:"revision"`
	NatsSequence  uint64    `json:"natsSequence"`
	NatsSubject   string    `json:"natsSubject"`
	NatsTimestamp time.Time `json:"natsTimestamp"`
}

// encodeToken returns t's JSON, exactly as json.Marshal(t), and its
// histories. prev, the histories of the state t was made from (nil if
// unknown), must hold a prefix of t's: only the entries after it are
// encoded, and the rest is copied, not encoded or scanned again.
func encodeToken(t *flow.Token, prev *histories) ([]byte, *histories, error) {
	if prev == nil || prev.nEvents > len(t.History) || prev.nRecords > len(t.TransitionHistory) {
		prev = &histories{}
	}
	h := &histories{nEvents: len(t.History), nRecords: len(t.TransitionHistory)}
	var err error
	if h.events, err = appendElements(prev.events, t.History[prev.nEvents:]); err != nil {
		return nil, nil, err
	}
	if h.records, err = appendElements(prev.records, t.TransitionHistory[prev.nRecords:]); err != nil {
		return nil, nil, err
	}
	head, err := json.Marshal(tokenHead{ID: t.ID, WorkflowID: t.WorkflowID, Place: t.Place, Data: t.Data,
		Metadata: t.Metadata, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt})
	if err != nil {
		return nil, nil, err
	}
	tail, err := json.Marshal(tokenTail{Revision: t.Revision, NatsSequence: t.NatsSequence,
		NatsSubject: t.NatsSubject, NatsTimestamp: t.NatsTimestamp})
	if err != nil {
		return nil, nil, err
	}
	out := make([]byte, 0, len(head)+len(h.events)+len(h.records)+len(tail)+48)
	out = append(out, head[:len(head)-1]...) // without its closing brace
	out = appendArray(append(out, `,"history":`...), h.events, t.History == nil)
	out = appendArray(append(out, `,"transitionHistory":`...), h.records, t.TransitionHistory == nil)
	out = append(append(out, ','), tail[1:]...) // without its opening brace
	return out, h, nil
}

// appendElements returns a copy of joined (JSON elements joined by commas)
// with the elements of more appended. (A copy: two changes may grow the
// same state's histories.)
func appendElements[E any](joined []byte, more []E) ([]byte, error) {
	out := make([]byte, len(joined), len(joined)+len(more)*256)
	copy(out, joined)
	for _, e := range more {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 {
			out = append(out, ',')
		}
		out = append(out, b...)
	}
	return out, nil
}

// appendArray appends joined elements as a JSON array; a nil slice
// encodes as null.
func appendArray(out, joined []byte, isNil bool) []byte {
	if isNil {
		return append(out, "null"...)
	}
	return append(append(append(out, '['), joined...), ']')
}
