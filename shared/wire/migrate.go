package wire

import (
	"bytes"
	"encoding/json"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// EventTokenMigrated is the event of a token moved to another version.
const EventTokenMigrated = "token_migrated"

// MaxMigrationOutcomes bounds the per-token outcomes a migration reply
// lists; its counts cover every token.
const MaxMigrationOutcomes = 1000

// MigrateRequest moves tokens of a workflow from one version of its
// definition to another, each to its place under PlaceMapping (a place
// of FromVersion that ToVersion lacks must be mapped). The tokens are
// TokenIDs, or every token on FromVersion that Filter accepts. DryRun
// reports what would happen and changes nothing. Idempotent: a token
// already on ToVersion is left as it is, so a migration stopped at its
// deadline (Complete false) continues when sent again.
type MigrateRequest struct {
	WorkflowID   string            `json:"workflowId"`
	FromVersion  int               `json:"fromVersion"`
	ToVersion    int               `json:"toVersion"`
	PlaceMapping map[string]string `json:"placeMapping,omitempty"`
	TokenIDs     []string          `json:"tokenIds,omitempty"`
	Filter       *MigrateFilter    `json:"filter,omitempty"`
	DryRun       bool              `json:"dryRun,omitempty"`
	TriggeredBy  string            `json:"triggeredBy,omitempty"`
}

// MigrateFilter selects tokens: in one of Places (any when empty), and
// whose data and metadata hold each given top-level key with an equal
// value.
type MigrateFilter struct {
	Places   []string                   `json:"places,omitempty"`
	Data     map[string]json.RawMessage `json:"data,omitempty"`
	Metadata map[string]json.RawMessage `json:"metadata,omitempty"`
}

func (r *MigrateRequest) WorkflowRef() *string { return &r.WorkflowID }

// UnmarshalJSON refuses keys it does not know: a misspelt filter must not
// select every token.
func (f *MigrateFilter) UnmarshalJSON(b []byte) error {
	type plain MigrateFilter
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode((*plain)(f)); err != nil {
		return fail.Wrap(fail.BadInput, err, "filter: "+err.Error()+" (keys: places, data, metadata)")
	}
	return nil
}

// Validate checks the request's shape; the mapping is checked against the
// versions by the token service.
func (r *MigrateRequest) Validate() error {
	if r.FromVersion < 1 || r.ToVersion < 1 || r.FromVersion == r.ToVersion {
		return fail.New(fail.BadInput, "fromVersion and toVersion must be two different versions (1 or more)")
	}
	if len(r.TokenIDs) > 0 && r.Filter != nil {
		return fail.New(fail.BadInput, "give tokenIds or filter, not both")
	}
	if len(r.TokenIDs) > MaxPageSize {
		return fail.New(fail.BadInput, "at most %d tokenIds: send more in another request", MaxPageSize)
	}
	for _, id := range r.TokenIDs {
		if err := ValidTokenID(id); err != nil {
			return err
		}
	}
	for p, q := range r.PlaceMapping {
		if err := first(ValidPlace(p), ValidPlace(q)); err != nil {
			return err
		}
	}
	return first(ValidWorkflowID(r.WorkflowID), text("triggeredBy", r.TriggeredBy, MaxTextLen))
}

// Accepts reports whether a token in place with data and metadata passes
// the filter (a nil filter accepts every token).
func (f *MigrateFilter) Accepts(place string, data, metadata json.RawMessage) bool {
	if f == nil {
		return true
	}
	if len(f.Places) > 0 && !contains(f.Places, place) {
		return false
	}
	return holds(data, f.Data) && holds(metadata, f.Metadata)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// holds reports whether the JSON object doc has every key of want with an
// equal value (compared as compact JSON).
func holds(doc json.RawMessage, want map[string]json.RawMessage) bool {
	if len(want) == 0 {
		return true
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(doc, &obj) != nil {
		return false
	}
	for k, v := range want {
		got, ok := obj[k]
		if !ok || !sameJSON(got, v) {
			return false
		}
	}
	return true
}

func sameJSON(a, b json.RawMessage) bool {
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}

// MigrationResult is what a migration did (or would do, dry).
type MigrationResult struct {
	MigratedCount int                `json:"migratedCount"`
	FailedCount   int                `json:"failedCount"`
	Complete      bool               `json:"complete"` // false: stopped at the deadline; send it again to go on
	DryRun        bool               `json:"dryRun,omitempty"`
	Outcomes      []MigrationOutcome `json:"outcomes"` // the first MaxMigrationOutcomes
}

// MigrationOutcome is one token's migration.
type MigrationOutcome struct {
	TokenID   string `json:"tokenId"`
	FromPlace string `json:"fromPlace"`
	ToPlace   string `json:"toPlace,omitempty"`
	Error     string `json:"error,omitempty"`
}
