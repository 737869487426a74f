package wire

import (
	"encoding/json"
	"strconv"

	"github.com/google/uuid"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
)

// Limits on free-form request fields.
const (
	MaxKeyLen  = 128  // idempotency keys and cursors
	MaxTextLen = 1024 // triggeredBy and similar labels
)

// CanonicalUUID reports whether s is a UUID in its canonical lowercase form.
func CanonicalUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// ValidTokenID checks a token id as every endpoint does: fail.BadInput
// unless it is a canonical UUID. Check ids before they name a subject.
func ValidTokenID(id string) error {
	if !CanonicalUUID(id) {
		return fail.New(fail.BadInput, "Invalid token ID format")
	}
	return nil
}

// ValidWorkflowID checks a workflow id as every endpoint does: fail.BadInput
// unless it is a name or tenant::name. Check ids before they name a stream
// or subject (">" would otherwise reach JetStream as a stream name).
func ValidWorkflowID(id string) error {
	if id == "" {
		return fail.New(fail.BadInput, "workflowId is required")
	}
	if !flow.ValidWorkflowID(id) {
		return fail.New(fail.BadInput, "Invalid workflow ID format: use letters, digits, '_' and '-' (at most 128), optionally as tenant::name")
	}
	return nil
}

// ValidPlace checks a place name as every endpoint does: fail.BadInput
// unless it is a non-empty name (no wildcard, dot or space).
func ValidPlace(place string) error { return name("place", place, true) }

func name(field, v string, required bool) error {
	if v == "" {
		if required {
			return fail.New(fail.BadInput, "%s must not be empty", field)
		}
		return nil
	}
	if !flow.ValidName(v) {
		return fail.New(fail.BadInput, "Invalid %s '%s': use letters, digits, '_' and '-' (at most 128)", field, v)
	}
	return nil
}

func text(field, v string, max int) error {
	if len(v) > max {
		return fail.New(fail.BadInput, "%s is longer than %d bytes", field, max)
	}
	return nil
}

func validJSON(field string, v json.RawMessage) error {
	if len(v) > 0 && !json.Valid(v) {
		return fail.New(fail.BadInput, "%s is not valid JSON", field)
	}
	return nil
}

func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the page cursor's size.
func (p Page) Validate() error {
	if p.First < 0 {
		return fail.New(fail.BadInput, "first must not be negative")
	}
	return text("after", p.After, MaxKeyLen)
}

// Validate checks the request's shape; the definition itself is validated by flow.
func (r *CreateWorkflowRequest) Validate() error {
	if r.ID != "" {
		if err := ValidWorkflowID(r.ID); err != nil {
			return err
		}
	}
	return first(text("idempotencyKey", r.IdempotencyKey, MaxKeyLen), text("archiveAfter", r.ArchiveAfter, MaxKeyLen))
}

// Validate checks the id and version.
func (r *GetWorkflowRequest) Validate() error {
	if r.Version < 0 {
		return fail.New(fail.BadInput, "version must not be negative")
	}
	return requiredWorkflowID(r.ID)
}

func requiredWorkflowID(id string) error {
	if id == "" {
		return fail.New(fail.BadInput, "id is required")
	}
	return ValidWorkflowID(id)
}

// Validate checks the id and the expected version.
func (r *UpdateWorkflowRequest) Validate() error {
	if r.ExpectedVersion < 1 {
		return fail.New(fail.BadInput, "expectedVersion is required: the version the update is based on (1 or more)")
	}
	return first(requiredWorkflowID(r.ID), r.CreateWorkflowRequest.Validate())
}

// Validate checks the id.
func (r *WorkflowVersionsRequest) Validate() error { return requiredWorkflowID(r.ID) }

// Validate checks the id.
func (r *DeleteWorkflowRequest) Validate() error {
	if r.ID == "" {
		return fail.New(fail.BadInput, "id is required")
	}
	return ValidWorkflowID(r.ID)
}

// Validate checks the id and labels.
func (r *ArchiveTokenRequest) Validate() error {
	return first(ValidTokenID(r.TokenID), text("triggeredBy", r.TriggeredBy, MaxTextLen),
		text("triggeredByClaim", r.TriggeredByClaim, MaxTextLen))
}

// Validate checks the id and labels.
func (r *DeleteTokenRequest) Validate() error {
	return first(ValidTokenID(r.TokenID), text("triggeredBy", r.TriggeredBy, MaxTextLen),
		text("triggeredByClaim", r.TriggeredByClaim, MaxTextLen))
}

// Validate checks the page.
func (r *ListWorkflowsRequest) Validate() error { return r.Page.Validate() }

// Validate checks ids, JSON and labels.
func (r *CreateTokenRequest) Validate() error {
	if r.WorkflowVersion < 0 {
		return fail.New(fail.BadInput, "workflowVersion must not be negative")
	}
	return first(ValidWorkflowID(r.WorkflowID), name("place", r.InitialPlace, false),
		validJSON("data", r.Data), validJSON("metadata", r.Metadata),
		text("triggeredBy", r.TriggeredBy, MaxTextLen), text("triggeredByClaim", r.TriggeredByClaim, MaxTextLen),
		text("idempotencyKey", r.IdempotencyKey, MaxKeyLen))
}

// Validate checks the id.
func (r *GetTokenRequest) Validate() error { return ValidTokenID(r.ID) }

// Validate checks both ids.
func (r *FindTokenRequest) Validate() error {
	return first(ValidWorkflowID(r.WorkflowID), ValidTokenID(r.TokenID))
}

// Validate checks the workflow id and page.
func (r *ListTokensRequest) Validate() error {
	return first(ValidWorkflowID(r.WorkflowID), r.Page.Validate())
}

// Validate checks ids and page.
func (r *TokensInPlaceRequest) Validate() error {
	return first(ValidWorkflowID(r.WorkflowID), ValidPlace(r.Place), r.Page.Validate())
}

// Validate checks the id.
func (r *AvailableRequest) Validate() error { return ValidTokenID(r.TokenID) }

// Validate checks ids, JSON and labels. A newPlace given as "" is refused:
// it would otherwise read as absent and fire without the place check.
func (r *FireRequest) Validate() error {
	return first(ValidTokenID(r.TokenID), name("transition id", r.TransitionID, true),
		r.validNewPlace(), validJSON("data", r.Data),
		text("triggeredBy", r.TriggeredBy, MaxTextLen), text("triggeredByClaim", r.TriggeredByClaim, MaxTextLen),
		text("idempotencyKey", r.IdempotencyKey, MaxKeyLen))
}

func (r *FireRequest) validNewPlace() error {
	if r.newPlaceGiven && r.NewPlace == "" {
		return fail.New(fail.BadInput, "newPlace must not be empty")
	}
	return name("place", r.NewPlace, false)
}

// Validate checks the id, JSON and that something changes.
func (r *UpdateTokenRequest) Validate() error {
	if len(r.Data) == 0 && len(r.Metadata) == 0 {
		return fail.New(fail.BadInput, "nothing to update: give data or metadata")
	}
	return first(ValidTokenID(r.TokenID), validJSON("data", r.Data), validJSON("metadata", r.Metadata),
		text("triggeredBy", r.TriggeredBy, MaxTextLen), text("triggeredByClaim", r.TriggeredByClaim, MaxTextLen))
}

// Validate checks the id, the page size and the cursor.
func (r *TokenHistoryRequest) Validate() error {
	if r.First < 0 {
		return fail.New(fail.BadInput, "first must not be negative")
	}
	_, err := ParseSequence("after", r.After)
	return first(ValidTokenID(r.TokenID), err)
}

// ParseSequence reads a stream-sequence cursor ("" is 0).
func ParseSequence(name, s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fail.New(fail.BadInput, "%s must be a stream sequence (a decimal number), not '%s'", name, clip(s))
	}
	return n, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// WorkflowScoped is a request that names one workflow. Before its handler
// runs, the endpoint resolves the id in the caller's tenant scope
// (shared/tenant): it becomes the full id, or the request ends NOT_FOUND.
type WorkflowScoped interface {
	WorkflowRef() *string
}

func (r *GetWorkflowRequest) WorkflowRef() *string       { return &r.ID }
func (r *UpdateWorkflowRequest) WorkflowRef() *string    { return &r.ID }
func (r *WorkflowVersionsRequest) WorkflowRef() *string  { return &r.ID }
func (r *DeleteWorkflowRequest) WorkflowRef() *string    { return &r.ID }
func (r *CreateTokenRequest) WorkflowRef() *string       { return &r.WorkflowID }
func (r *FindTokenRequest) WorkflowRef() *string         { return &r.WorkflowID }
func (r *ListTokensRequest) WorkflowRef() *string        { return &r.WorkflowID }
func (r *TokensInPlaceRequest) WorkflowRef() *string     { return &r.WorkflowID }
func (r *HistoryRequest) WorkflowRef() *string           { return &r.WorkflowID }
func (r *StatsRequest) WorkflowRef() *string             { return &r.WorkflowID }
func (r *SubscribeRequest) WorkflowRef() *string         { return &r.WorkflowID }
func (r *SubscriptionRef) WorkflowRef() *string          { return &r.WorkflowID }
func (r *ListSubscriptionsRequest) WorkflowRef() *string { return &r.WorkflowID }
