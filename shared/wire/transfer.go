package wire

import (
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
)

// Import: the bodies of workflow.import, token.import and
// token.importevents, through which an export file (shared/transfer) is
// written into a deployment. Each is idempotent: sending it again changes
// nothing that is already there.

// Event types of imports: one event per import that stored something.
const (
	EventWorkflowImported = "workflow_imported" // versions were stored (revision: the latest stored)
	EventTokenImported    = "token_imported"    // a token was stored with its history (revision: its revision)
)

// Limits of one import request.
const (
	MaxImportVersions = 1000 // versions of one workflow
	MaxImportTokens   = 1000 // token parts in one token.import
	MaxImportEntries  = 5000 // history entries in one token.import
	MaxImportEvents   = 5000 // events in one token.importevents
)

// Outcomes of an import, per workflow and per token.
const (
	ImportCreated   = "created"   // the workflow was new
	ImportResumed   = "resumed"   // an import cut short was completed
	ImportMerged    = "merged"    // versions were added to an existing workflow (merge)
	ImportUnchanged = "unchanged" // everything was there already, identical
	ImportImported  = "imported"  // the token is stored now (and counted)
	ImportPartial   = "partial"   // a part of a token's history was stored; the token is not visible yet
	ImportConflict  = "conflict"  // something different is stored under the id
	ImportFailed    = "failed"    // the item was refused or could not be written (error says why)
)

// ImportWorkflowRequest stores every version of a workflow with its
// original version numbers and times. An existing workflow with identical
// versions is left as it is; one with different versions is a CONFLICT;
// with Merge, an existing workflow whose versions equal the first ones of
// the request gets the later ones added. A workflow whose import was cut
// short (its versions stored, its catalogue entry not yet) is completed
// without Merge.
type ImportWorkflowRequest struct {
	WorkflowID string             `json:"workflowId"`
	Versions   []*flow.Definition `json:"versions"` // 1, 2, … in order
	Merge      bool               `json:"merge,omitempty"`
}

// ImportWorkflowReply says what the import did.
type ImportWorkflowReply struct {
	WorkflowID string `json:"workflowId"`
	Outcome    string `json:"outcome"`  // created, resumed, merged or unchanged
	Versions   int    `json:"versions"` // the workflow's versions now
	Added      int    `json:"added"`    // versions this request stored
}

// ImportTokensRequest stores tokens of one workflow, each with its history,
// as parts: a part carries entries of one token's history numbered from
// First (1 for the first entry), and the last part (Final) carries the
// token's state, which is written after every entry. A token is visible
// only once its state is written, so a token cut off part-way stays
// invisible; sending its parts again completes it (entries already stored
// are skipped by number).
type ImportTokensRequest struct {
	WorkflowID string            `json:"workflowId"`
	Tokens     []ImportTokenPart `json:"tokens"`
	// TriggeredBy is recorded as who imported, in each token_imported event.
	TriggeredBy string `json:"triggeredBy,omitempty"`
}

// ImportTokenPart is one token's state and history entries, or some of them.
type ImportTokenPart struct {
	TokenID string        `json:"tokenId"`
	First   int           `json:"first,omitempty"` // number of Entries[0] (1 when 0)
	Entries []HistoryItem `json:"entries,omitempty"`
	// Token is the token's state (its Nats* fields are ignored); set on
	// the final part only, which Final marks.
	Token *flow.Token `json:"token,omitempty"`
	Final bool        `json:"final,omitempty"`
}

// ImportTokensReply has one outcome per part, in order.
type ImportTokensReply struct {
	Items []ImportOutcome `json:"items"`
}

// ImportOutcome is what became of one part (or one token).
type ImportOutcome struct {
	TokenID string `json:"tokenId"`
	Outcome string `json:"outcome"`
	Entries int    `json:"entries,omitempty"` // history entries this request stored
	Code    string `json:"code,omitempty"`    // error kind, for conflict and failed
	Error   string `json:"error,omitempty"`
}

// ImportEventsRequest stores retained events of a workflow in order. Each
// event's Sequence (its sequence in the source) must grow through an
// import: events up to the last one imported are skipped, so a re-run
// stores each once.
type ImportEventsRequest struct {
	WorkflowID string        `json:"workflowId"`
	Events     []EventRecord `json:"events"`
}

// ImportEventsReply counts what became of the events.
type ImportEventsReply struct {
	Imported int `json:"imported"`
	Skipped  int `json:"skipped"` // imported before
	Expired  int `json:"expired"` // older than the event retention here: not stored
}

// Validate checks the id and the number of versions.
func (r *ImportWorkflowRequest) Validate() error {
	if len(r.Versions) == 0 {
		return fail.New(fail.BadInput, "versions: at least one is required")
	}
	if len(r.Versions) > MaxImportVersions {
		return fail.New(fail.BadInput, "versions: at most %d in one import", MaxImportVersions)
	}
	for i, d := range r.Versions {
		if d == nil {
			return fail.New(fail.BadInput, "versions[%d] is null", i)
		}
	}
	return ValidWorkflowID(r.WorkflowID)
}

// Validate checks the ids, sizes and numbering of the parts; the token
// service checks their contents.
func (r *ImportTokensRequest) Validate() error {
	if err := ValidWorkflowID(r.WorkflowID); err != nil {
		return err
	}
	if len(r.Tokens) > MaxImportTokens {
		return fail.New(fail.BadInput, "tokens: at most %d parts in one import", MaxImportTokens)
	}
	entries := 0
	for i, p := range r.Tokens {
		if err := ValidTokenID(p.TokenID); err != nil {
			return fail.New(fail.BadInput, "tokens[%d]: %s", i, err.Error())
		}
		if p.First < 0 {
			return fail.New(fail.BadInput, "tokens[%d]: first must not be negative", i)
		}
		if p.Final != (p.Token != nil) {
			return fail.New(fail.BadInput, "tokens[%d]: the final part, and only it, carries the token", i)
		}
		entries += len(p.Entries)
	}
	if entries > MaxImportEntries {
		return fail.New(fail.BadInput, "tokens: at most %d history entries in one import", MaxImportEntries)
	}
	return text("triggeredBy", r.TriggeredBy, MaxTextLen)
}

// Validate checks the id and the number of events.
func (r *ImportEventsRequest) Validate() error {
	if len(r.Events) > MaxImportEvents {
		return fail.New(fail.BadInput, "events: at most %d in one import", MaxImportEvents)
	}
	return ValidWorkflowID(r.WorkflowID)
}

func (r *ImportWorkflowRequest) WorkflowRef() *string { return &r.WorkflowID }
func (r *ImportTokensRequest) WorkflowRef() *string   { return &r.WorkflowID }
func (r *ImportEventsRequest) WorkflowRef() *string   { return &r.WorkflowID }
