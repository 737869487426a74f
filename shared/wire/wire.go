// Package wire holds the request and reply bodies of every NATS endpoint and
// the JSON of every event. Bodies are JSON with camelCase keys; events keep
// the original system's snake_case keys so its subscribers keep working.
package wire

import (
	"encoding/json"
	"time"

	"github.com/cbnats/circuitbreaker/shared/flow"
)

// Page limits shared by every list endpoint. A page also stops once its
// items take MaxPageBytes (it then holds fewer than asked, with a cursor
// to go on), so that large items never make a reply too large to send.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
	MaxPageBytes    = 4 << 20
)

// CreateWorkflowRequest asks the workflow service to store a new definition.
// ID is optional: a UUID is assigned when it is empty.
type CreateWorkflowRequest struct {
	ID           string            `json:"id,omitempty"`
	Name         string            `json:"name"`
	Description  string            `json:"description,omitempty"`
	Places       []string          `json:"places"`
	InitialPlace string            `json:"initialPlace"`
	Transitions  []flow.Transition `json:"transitions"`
	// SearchAttributes are the keys findTokens searches by.
	SearchAttributes []flow.SearchAttribute `json:"searchAttributes,omitempty"`
	// ArchiveAfter, when set, archives tokens that sat this long in a
	// terminal place without changing ("P30D", "720h"; flow.ParseArchiveAfter).
	ArchiveAfter string `json:"archiveAfter,omitempty"`
	// IdempotencyKey makes a retried create without ID return the first result.
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
}

// GetWorkflowRequest asks for one definition: its latest version, or
// Version.
type GetWorkflowRequest struct {
	ID      string `json:"id"`
	Version int    `json:"version,omitempty"`
}

// UpdateWorkflowRequest stores a new version of a definition: the create
// request's fields, checked and analysed the same way, for the workflow
// ID, provided its latest version is still ExpectedVersion (so two editors
// cannot overwrite each other).
type UpdateWorkflowRequest struct {
	CreateWorkflowRequest
	ExpectedVersion int `json:"expectedVersion"`
}

// WorkflowVersionsRequest asks for every version of a definition.
type WorkflowVersionsRequest struct {
	ID string `json:"id"`
}

// WorkflowVersions is every version of a definition, oldest first.
type WorkflowVersions struct {
	Items []*flow.Definition `json:"items"`
}

// DeleteWorkflowRequest deletes a workflow: its stream (definition,
// tokens, histories, events, durable subscriptions), its catalogue entry
// and the token index entries of its tokens. It is refused while the
// workflow has live (not archived) tokens, unless Force.
type DeleteWorkflowRequest struct {
	ID    string `json:"id"`
	Force bool   `json:"force,omitempty"`
}

// DeleteWorkflowReply says what a workflow delete did.
type DeleteWorkflowReply struct {
	// Deleted is false when there was no such workflow (nothing to do).
	Deleted bool `json:"deleted"`
	// Tokens is how many tokens it had (live and archived), LiveTokens how
	// many of them were live.
	Tokens     int `json:"tokens"`
	LiveTokens int `json:"liveTokens"`
}

// ListWorkflowsRequest asks for a page of definitions, ordered by id.
type ListWorkflowsRequest struct {
	Page
}

// WorkflowPage is one page of definitions.
type WorkflowPage struct {
	Items []*flow.Definition `json:"items"`
	// Next is the cursor of the following page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// Page selects a page of a list: at most First items after the cursor After.
type Page struct {
	First int    `json:"first,omitempty"`
	After string `json:"after,omitempty"`
}

// Size returns the page size to use: First within [1, MaxPageSize], or the default.
func (p Page) Size() int {
	switch {
	case p.First <= 0:
		return DefaultPageSize
	case p.First > MaxPageSize:
		return MaxPageSize
	}
	return p.First
}

// CreateTokenRequest creates a token (a workflow instance). It serves both
// createToken and createWorkflowInstance of the original API.
type CreateTokenRequest struct {
	WorkflowID   string          `json:"workflowId"`
	InitialPlace string          `json:"initialPlace,omitempty"`
	Data         json.RawMessage `json:"data,omitempty"`
	Metadata     json.RawMessage `json:"metadata,omitempty"`
	TriggeredBy  string          `json:"triggeredBy,omitempty"`
	// WorkflowVersion is the definition version the token runs on
	// (0: the latest).
	WorkflowVersion int `json:"workflowVersion,omitempty"`
	// TriggeredByClaim is what the client claimed as triggeredBy when the
	// edge recorded its authenticated identity instead: a note, never
	// the identity.
	TriggeredByClaim string `json:"triggeredByClaim,omitempty"`
	IdempotencyKey   string `json:"idempotencyKey,omitempty"`
}

// GetTokenRequest asks for a token by id alone.
type GetTokenRequest struct {
	ID string `json:"id"`
}

// FindTokenRequest asks for a token of a known workflow.
type FindTokenRequest struct {
	WorkflowID string `json:"workflowId"`
	TokenID    string `json:"tokenId"`
}

// ListTokensRequest asks for a page of a workflow's tokens, ordered by the
// stream sequence of their current state (oldest change first).
type ListTokensRequest struct {
	WorkflowID string `json:"workflowId"`
	// Archived lists the workflow's archived tokens instead of its live ones.
	Archived bool `json:"archived,omitempty"`
	Page
}

// TokensInPlaceRequest asks for a page of the tokens currently in a place.
type TokensInPlaceRequest struct {
	WorkflowID string `json:"workflowId"`
	Place      string `json:"place"`
	Page
}

// TokenPage is one page of tokens.
type TokenPage struct {
	Items []*flow.Token `json:"items"`
	// Next is the cursor of the following page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// TokenHistoryRequest asks for a page of a token's history: its
// transition records (with the history event of each fired transition),
// oldest first: at most First entries (1000 when 0, and fewer when they
// are large), after the Sequence After of the previous page's last entry.
// Fires keeps only fired transitions.
type TokenHistoryRequest struct {
	TokenID string `json:"tokenId"`
	First   int    `json:"first,omitempty"`
	After   string `json:"after,omitempty"`
	Fires   bool   `json:"fires,omitempty"`
}

// TokenHistoryPage is a page of a token's history.
type TokenHistoryPage struct {
	Items []HistoryItem `json:"items"`
	// Next is the After of the following page; 0 when this one is the last.
	Next uint64 `json:"next,omitempty"`
}

// HistoryItem is one entry of a token's history: what one change added.
type HistoryItem struct {
	Sequence uint64                `json:"sequence"` // the entry's stream sequence: its cursor
	Record   flow.TransitionRecord `json:"record"`
	Event    *flow.HistoryEvent    `json:"event,omitempty"` // for a fired transition
}

// RawTokenPage is a TokenPage as a client may read it without decoding
// its tokens (cbbench does, as the raw rows do); it has the same JSON.
type RawTokenPage struct {
	Items []json.RawMessage `json:"items"`
	Next  string            `json:"next,omitempty"`
}

// MarshalJSON writes the page without re-validating each stored token
// (encoding/json would scan every json.RawMessage again).
func (p *RawTokenPage) MarshalJSON() ([]byte, error) {
	if p == nil {
		return []byte("null"), nil
	}
	n := 32 + len(p.Next)
	for _, it := range p.Items {
		n += len(it) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"items":[`...)
	for i, it := range p.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	b = append(b, ']')
	if p.Next != "" {
		next, _ := json.Marshal(p.Next)
		b = append(append(b, `,"next":`...), next...)
	}
	return append(b, '}'), nil
}

// AvailableRequest asks which transitions a token can fire now.
type AvailableRequest struct {
	TokenID string `json:"tokenId"`
}

// AvailableReply lists the transitions that can fire now (place and guards)
// and, for every transition of the workflow, why it can or cannot fire.
type AvailableReply struct {
	Token       *flow.Token       `json:"token"`
	Transitions []flow.Transition `json:"transitions"`
	Evaluations []flow.Evaluation `json:"evaluations"`
}

// FireRequest fires a transition on a token. It serves fireTransition and
// transitionTokenWithNats (which also names NewPlace) of the original API.
type FireRequest struct {
	TokenID      string          `json:"tokenId"`
	TransitionID string          `json:"transitionId"`
	NewPlace     string          `json:"newPlace,omitempty"`
	Data         json.RawMessage `json:"data,omitempty"`
	// ReplaceData replaces the token's data instead of merge-patching it.
	ReplaceData      bool   `json:"replaceData,omitempty"`
	TriggeredBy      string `json:"triggeredBy,omitempty"`
	TriggeredByClaim string `json:"triggeredByClaim,omitempty"` // as in CreateTokenRequest
	// ExpectedRevision, when set, makes the fire fail with a conflict unless
	// the token is still at that revision.
	ExpectedRevision uint64 `json:"expectedRevision,omitempty"`
	IdempotencyKey   string `json:"idempotencyKey,omitempty"`

	// newPlaceGiven records that a decoded body named newPlace, even as
	// "", which Validate refuses (omitempty cannot tell "" from absent).
	newPlaceGiven bool
}

// UpdateTokenRequest changes a token's data or metadata without a transition.
type UpdateTokenRequest struct {
	TokenID          string          `json:"tokenId"`
	Data             json.RawMessage `json:"data,omitempty"`
	ReplaceData      bool            `json:"replaceData,omitempty"`
	Metadata         json.RawMessage `json:"metadata,omitempty"`
	TriggeredBy      string          `json:"triggeredBy,omitempty"`
	TriggeredByClaim string          `json:"triggeredByClaim,omitempty"` // as in CreateTokenRequest
	ExpectedRevision uint64          `json:"expectedRevision,omitempty"`
}

// ArchiveTokenRequest archives a token: it leaves its place, and every
// list and count of live tokens, and stays readable by id with its
// history; it can no longer change. Archiving an archived token returns it
// as it is. ExpectedRevision, when set, makes it fail with a conflict
// unless the token is still at that revision.
type ArchiveTokenRequest struct {
	TokenID          string `json:"tokenId"`
	TriggeredBy      string `json:"triggeredBy,omitempty"`
	TriggeredByClaim string `json:"triggeredByClaim,omitempty"` // as in CreateTokenRequest
	ExpectedRevision uint64 `json:"expectedRevision,omitempty"`
}

// DeleteTokenRequest deletes a token, live or archived: its state, its
// history and its index entry; the events keep a token_deleted record.
type DeleteTokenRequest struct {
	TokenID          string `json:"tokenId"`
	TriggeredBy      string `json:"triggeredBy,omitempty"`
	TriggeredByClaim string `json:"triggeredByClaim,omitempty"` // as in CreateTokenRequest
}

// DeleteTokenReply says whether there was a token to delete (false: no
// such token, or already deleted).
type DeleteTokenReply struct {
	Deleted bool `json:"deleted"`
}

// Event types.
const (
	EventWorkflowCreated   = "workflow_created"
	EventWorkflowUpdated   = "workflow_updated"
	EventTokenCreated      = "token_created"
	EventTokenTransitioned = "token_transitioned"
	EventTokenUpdated      = "token_updated"
	EventTokenArchived     = "token_archived"
	EventTokenDeleted      = "token_deleted"
)

// Event is the JSON of every event, in the original system's shape.
// NatsSequence is the stream sequence of the state message the change wrote
// (the definition for workflow_created).
type Event struct {
	EventType    string    `json:"event_type"`
	TokenID      string    `json:"token_id,omitempty"`
	WorkflowID   string    `json:"workflow_id"`
	Place        string    `json:"place,omitempty"`
	FromPlace    string    `json:"from_place,omitempty"`
	ToPlace      string    `json:"to_place,omitempty"`
	TransitionID string    `json:"transition_id,omitempty"`
	Timestamp    time.Time `json:"timestamp"`
	TriggeredBy  *string   `json:"triggered_by"`
	// TriggeredByClaim is the client's claim when the edge recorded its
	// authenticated identity as TriggeredBy instead.
	TriggeredByClaim *string `json:"triggered_by_claim,omitempty"`
	NatsSequence     uint64  `json:"nats_sequence"`
	// WorkflowVersion is the version a token_migrated event moved the
	// token to.
	WorkflowVersion int `json:"workflow_version,omitempty"`
	// Progress is a bulk_progress event's account.
	Progress *BulkProgress `json:"progress,omitempty"`
	Revision uint64        `json:"revision,omitempty"`
}
