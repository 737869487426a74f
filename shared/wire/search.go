package wire

import (
	"encoding/json"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// TokenFilter selects tokens. Its conditions all hold for a token that
// matches (and each of And), and, when Or is given, one of Or's filters
// matches too.
//
// Data and Metadata compare values for equality at a path below data or
// metadata ("priority", "customer.tier"); Ranges compare ordered values.
// A search needs something to start from that costs its answer: an
// equality on a search attribute the workflow declares, a range on one,
// places, or only workflowIds (all their tokens). A key that is not
// declared is refused, naming the declared ones: nothing scans every token
// to evaluate an undeclared key.
type TokenFilter struct {
	WorkflowIDs   []string                   `json:"workflowIds,omitempty"`
	Places        []string                   `json:"places,omitempty"`
	Data          map[string]json.RawMessage `json:"data,omitempty"`
	Metadata      map[string]json.RawMessage `json:"metadata,omitempty"`
	Ranges        []Range                    `json:"ranges,omitempty"`
	CreatedAfter  *time.Time                 `json:"createdAfter,omitempty"`
	CreatedBefore *time.Time                 `json:"createdBefore,omitempty"`
	UpdatedAfter  *time.Time                 `json:"updatedAfter,omitempty"`
	UpdatedBefore *time.Time                 `json:"updatedBefore,omitempty"`
	And           []TokenFilter              `json:"and,omitempty"`
	Or            []TokenFilter              `json:"or,omitempty"`
}

// Range bounds a NUMBER or TIME search attribute (Path "data.amount");
// unset bounds are open.
type Range struct {
	Path string          `json:"path"`
	Gt   json.RawMessage `json:"gt,omitempty"`
	Gte  json.RawMessage `json:"gte,omitempty"`
	Lt   json.RawMessage `json:"lt,omitempty"`
	Lte  json.RawMessage `json:"lte,omitempty"`
}

// Bounds of a search.
const (
	MaxSearchWorkflows = 100
	maxFilterDepth     = 4
)

// FindTokensRequest asks for a page of the tokens a filter matches,
// ordered by workflow (as listed) and token id.
type FindTokensRequest struct {
	Filter TokenFilter `json:"filter"`
	Page
}

// CountTokensReply is how many tokens a filter matches.
type CountTokensReply struct {
	Count int `json:"count"`
}

// Validate checks the request's shape.
func (r *FindTokensRequest) Validate() error {
	if len(r.Filter.WorkflowIDs) == 0 || len(r.Filter.WorkflowIDs) > MaxSearchWorkflows {
		return fail.New(fail.BadInput, "filter.workflowIds: 1 to %d workflows to search", MaxSearchWorkflows)
	}
	for _, id := range r.Filter.WorkflowIDs {
		if err := ValidWorkflowID(id); err != nil {
			return err
		}
	}
	return first(r.Filter.validate(0), r.Page.Validate())
}

func (f *TokenFilter) validate(depth int) error {
	if depth > maxFilterDepth {
		return fail.New(fail.BadInput, "filter: and/or nested deeper than %d", maxFilterDepth)
	}
	for _, p := range f.Places {
		if err := ValidPlace(p); err != nil {
			return err
		}
	}
	for _, sub := range append(append([]TokenFilter{}, f.And...), f.Or...) {
		if len(sub.WorkflowIDs) > 0 {
			return fail.New(fail.BadInput, "filter: workflowIds only at the top")
		}
		if err := sub.validate(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// Search index states (SearchIndex.State).
const (
	IndexReady    = "READY"
	IndexBuilding = "BUILDING"
)

// SearchIndex is the state of a workflow's search index, stored on
// subjects.SearchIndexState. Every change writes the entries of the
// attributes its workflow's latest version declares, so only tokens that
// have not changed since a version added attributes lack theirs: a build
// (started by the update, run by the token service) writes them, and
// until it has, a search on those attributes is refused rather than
// answered incompletely. No record: READY.
type SearchIndex struct {
	WorkflowID string `json:"workflowId"`
	State      string `json:"state"`   // IndexReady or IndexBuilding
	Version    int    `json:"version"` // the definition version whose attributes the build indexes
	// Building are the paths of the attributes existing tokens may lack.
	Building []string `json:"building"`
	// Until is the stream sequence of the version that started the build:
	// states written after it were indexed by their own writes.
	Until uint64 `json:"until,omitempty"`
	// After is how far the build has read (a stream sequence): it resumes there.
	After uint64 `json:"after,omitempty"`
	// Indexed counts the tokens the build has indexed; Scanned the token
	// states it has read.
	Indexed    int        `json:"indexedTokens"`
	Scanned    int        `json:"scannedTokens"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	UpdatedAt  *time.Time `json:"updatedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Runner is the token-service instance building it, while its lease
	// (UpdatedAt) is fresh.
	Runner string `json:"runner,omitempty"`
}

// SearchIndexRequest names the workflow whose search index is read
// (token.searchindex) or built (token.reindex).
type SearchIndexRequest struct {
	WorkflowID string `json:"workflowId"`
}

// Validate checks the id.
func (r *SearchIndexRequest) Validate() error { return requiredWorkflowID(r.WorkflowID) }

// WorkflowRef is the workflow the request names.
func (r *SearchIndexRequest) WorkflowRef() *string { return &r.WorkflowID }
