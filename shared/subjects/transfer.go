package subjects

// Export and import (shared/transfer): export reads through the existing
// endpoints; import writes through these.
const (
	// WorkflowImport stores a workflow's versions as an export file holds
	// them (ids, version numbers and times kept).
	WorkflowImport Request = "workflow.import"
	// TokenImport stores tokens with their histories as an export file
	// holds them (ids, revisions, times and records kept).
	TokenImport Request = "token.import"
	// TokenImportEvents stores the retained events an export file holds.
	TokenImportEvents Request = "token.importevents"
)

// ImportedEvents is the subject recording how far the import of a
// workflow's events has come ({"sequence": N, "events": K}, rolled up): a
// re-run skips the events up to the source sequence N.
func ImportedEvents(workflowID string) string {
	return join("workflows", workflowID, "imported", "events")
}
