package wire

import (
	"encoding/json"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// EventBulkProgress reports how far a bulk transition has come.
const EventBulkProgress = "bulk_progress"

// BulkTransitionRequest fires one transition on every token of a workflow
// in FromPlace that Filter accepts: each token alone (guards evaluated
// per token, the usual compare-and-swap), many at once so that the
// committer packs them into groups. IdempotencyKey is the fire's key on
// every token: sent again (after a crash, or when Complete was false), a
// bulk transition fires each remaining token once and answers for the
// tokens it fired before as the first time.
type BulkTransitionRequest struct {
	WorkflowID     string          `json:"workflowId"`
	FromPlace      string          `json:"fromPlace"`
	ToPlace        string          `json:"toPlace,omitempty"`
	TransitionID   string          `json:"transitionId"`
	Filter         *TokenFilter    `json:"filter,omitempty"`
	Data           json.RawMessage `json:"data,omitempty"`
	DryRun         bool            `json:"dryRun,omitempty"`
	IdempotencyKey string          `json:"idempotencyKey"`
	TriggeredBy    string          `json:"triggeredBy,omitempty"`
}

func (r *BulkTransitionRequest) WorkflowRef() *string { return &r.WorkflowID }

// Validate checks the request's shape.
func (r *BulkTransitionRequest) Validate() error {
	if r.IdempotencyKey == "" {
		return fail.New(fail.BadInput, "idempotencyKey is required: it makes a bulk transition safe to send again")
	}
	if r.Filter != nil {
		if len(r.Filter.WorkflowIDs) > 0 {
			return fail.New(fail.BadInput, "filter.workflowIds: the bulk transition's workflow is workflowId")
		}
		if err := r.Filter.validate(0); err != nil {
			return err
		}
	}
	return first(ValidWorkflowID(r.WorkflowID), ValidPlace(r.FromPlace), name("place", r.ToPlace, false),
		name("transition", r.TransitionID, true), validJSON("data", r.Data),
		text("idempotencyKey", r.IdempotencyKey, MaxKeyLen), text("triggeredBy", r.TriggeredBy, MaxTextLen))
}

// BulkResult is what a bulk transition did (or would do, dry). Success
// is true when it is complete and no token failed.
type BulkResult struct {
	Success        bool          `json:"success"`
	ProcessedCount int           `json:"processedCount"`
	FailedCount    int           `json:"failedCount"`
	Complete       bool          `json:"complete"` // false: stopped at the deadline; send it again to go on
	DryRun         bool          `json:"dryRun,omitempty"`
	Errors         []string      `json:"errors"`   // distinct failure reasons
	Outcomes       []BulkOutcome `json:"outcomes"` // the first MaxMigrationOutcomes
}

// BulkOutcome is one token's part of a bulk transition.
type BulkOutcome struct {
	TokenID string `json:"tokenId"`
	ToPlace string `json:"toPlace,omitempty"`
	Error   string `json:"error,omitempty"`
	Code    string `json:"code,omitempty"`
}

// BulkProgress is a bulk_progress event's account.
type BulkProgress struct {
	IdempotencyKey string `json:"idempotency_key"`
	Processed      int    `json:"processed"`
	Failed         int    `json:"failed"`
	Done           bool   `json:"done"`
}
