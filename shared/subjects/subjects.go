// Package subjects names every NATS subject, stream, bucket and header the
// system uses. Nothing else in the code base spells a subject literally.
//
// Request subjects live under "cb.>" (see Request); stored data lives under "workflows.>",
// which per-workflow streams capture; notices between services (core NATS,
// never stored) live under "cbnotify.>". The trees never overlap, so a
// request can never be captured by a stream, and no endpoint (listening on
// cb.*.<service>.>) receives a notice.
package subjects

import (
	"strconv"
	"strings"
)

// Service names, as registered with micro and shown by `nats micro ls`.
const (
	WorkflowService = "workflow"
	TokenService    = "token"
	EventService    = "event"
)

// QueueGroup is the queue group every endpoint of every service joins.
const QueueGroup = "cb"

// Request names one operation of a service, "<service>.<op>". A request
// travels on cb.<scope>.<service>.<op> (In), where scope is a tenant's
// name or "_all" for a caller acting for every tenant (shared/tenant); an
// endpoint listens on every scope (Pattern) and serves the request within
// the scope its subject names. NATS permissions on cb.<tenant>.> thereby
// confine a tenant's own NATS user to its tenant.
type Request string

// AllTenants is the scope of a caller acting for every tenant (the edge,
// operators). Tenant names cannot start with '_'.
const AllTenants = "_all"

// In is the subject of the request in scope.
func (r Request) In(scope string) string { return "cb." + scope + "." + string(r) }

// Pattern is the subject the endpoint listens on: every scope.
func (r Request) Pattern() string { return "cb.*." + string(r) }

// ScopeOf returns the scope token of a request subject, or "" if subject
// is not one.
func ScopeOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, "cb.")
	if !ok {
		return ""
	}
	scope, _, _ := strings.Cut(rest, ".")
	return scope
}

// PatternOf is the endpoint subject a request subject reached: its scope
// replaced by '*' (metrics count per endpoint, not per tenant).
func PatternOf(subject string) string {
	scope := ScopeOf(subject)
	if scope == "" {
		return subject
	}
	return "cb.*" + subject[len("cb.")+len(scope):]
}

// Requests of the workflow service.
const (
	WorkflowCreate Request = "workflow.create"
	WorkflowGet    Request = "workflow.get"
	WorkflowList   Request = "workflow.list"
	// WorkflowUpdate stores a new version of a definition.
	WorkflowUpdate Request = "workflow.update"
	// WorkflowVersions lists every version of a definition.
	WorkflowVersions Request = "workflow.versions"
	// WorkflowDelete deletes a workflow: its stream, catalogue entry and
	// every token index entry of its tokens.
	WorkflowDelete Request = "workflow.delete"
)

// Requests of the token service.
const (
	TokenCreate    Request = "token.create"
	TokenGet       Request = "token.get"
	TokenFind      Request = "token.find"
	TokenList      Request = "token.list"
	TokenInPlace   Request = "token.inplace"
	TokenAvailable Request = "token.available"
	TokenFire      Request = "token.fire"
	TokenUpdate    Request = "token.update"
	// TokenSearch and TokenCount find and count tokens by a filter.
	TokenSearch Request = "token.search"
	TokenCount  Request = "token.count"
	// TokenBulk fires a transition on many tokens of a workflow.
	TokenBulk Request = "token.bulk"
	// TokenMigrate moves tokens to another version of their workflow.
	TokenMigrate Request = "token.migrate"
	// TokenHistoryPage pages through one token's history.
	TokenHistoryPage Request = "token.history"
	// TokenArchive archives a token: it leaves its place (and every list
	// and count of live tokens) and stays readable by id.
	TokenArchive Request = "token.archive"
	// TokenDelete deletes a token: its state, history and index entry.
	TokenDelete Request = "token.delete"
	// TokenSearchIndex reads the state of a workflow's search index;
	// TokenReindex starts or resumes the build of its missing entries.
	TokenSearchIndex Request = "token.searchindex"
	TokenReindex     Request = "token.reindex"
)

// WorkflowDeleted is the core-NATS notice the workflow service publishes
// once it has deleted a workflow's stream (its body is empty): every
// token-service instance drops what it caches of the workflow, so that an
// id created again starts afresh. Notices are not requests: they live
// outside cb.> and no endpoint receives them.
func WorkflowDeleted(workflowID string) string { return "cbnotify.workflow.deleted." + workflowID }

// WorkflowDeletedAll matches the notice of every workflow (no queue group:
// every instance gets each).
const WorkflowDeletedAll = "cbnotify.workflow.deleted.*"

// WorkflowIDFromNotice returns the workflow id of a WorkflowDeleted subject.
func WorkflowIDFromNotice(subject string) string {
	id, _ := strings.CutPrefix(subject, "cbnotify.workflow.deleted.")
	return id
}

// TokenWriter is the request by which one token-service instance takes
// a write (op: create, fire or update) that another instance routes to
// it because it writes that workflow. id is the instance's writer id,
// advertised in its micro metadata under MetaWriter.
func TokenWriter(id, op string) Request { return Request("token.writer." + id + "." + op) }

// MetaWriter is the token service's micro metadata key for an instance's
// writer id.
const MetaWriter = "writer"

// ServicePing is micro's discovery subject: every instance of the named
// service answers it.
func ServicePing(service string) string { return "$SRV.PING." + service }

// Buckets.
const (
	// CatalogBucket is the KV bucket listing workflow definitions (id → definition).
	CatalogBucket = "CB_WORKFLOWS"
	// TokenIndexBucket is the KV bucket mapping a token id to its workflow id.
	TokenIndexBucket = "CB_TOKEN_INDEX"
	// TenantsBucket is the KV bucket of quotas per tenant (tenant → quota).
	TenantsBucket = "CB_TENANTS"
	// UsageStream is the counter stream of what each tenant uses.
	UsageStream = "CB_USAGE"
)

// KVKey is the subject that stores key in a KV bucket: a filtered purge
// of it removes the key without leaving a delete marker.
func KVKey(bucket, key string) string { return "$KV." + bucket + "." + key }

// KVStream is the stream behind a KV bucket.
func KVStream(bucket string) string { return "KV_" + bucket }

// UsageTokens is the counter subject of a tenant's live tokens.
func UsageTokens(tenant string) string { return "usage." + tenant + ".tokens" }

// Headers carried on stored messages and requests.
const (
	// HeaderTokenOp marks a tombstone left in a place a token has left.
	HeaderTokenOp = "Token-Op"
	// TokenOpDelete is the value of HeaderTokenOp on a tombstone.
	TokenOpDelete = "DEL"
	// HeaderTokenRev carries a token state's revision.
	HeaderTokenRev = "Token-Rev"
	// HeaderRequestID carries the edge's request id through NATS.
	HeaderRequestID = "Cb-Request-Id"
	// HeaderErrorKind carries the exact error kind beside micro's numeric code.
	HeaderErrorKind = "Cb-Error-Kind"
	// HeaderDeadline carries the caller's deadline (RFC 3339 nano) so a
	// service stops working on a request its caller has given up on.
	HeaderDeadline = "Cb-Deadline"
)

// StreamName is the stream holding one workflow: its definition, its tokens
// and its events. Workflow ids are case-sensitive and restricted to
// [A-Za-z0-9_-], so the mapping is injective.
func StreamName(workflowID string) string { return "WORKFLOW_" + workflowID }

// WorkflowOfStream returns the workflow id of a workflow stream's name,
// and false for any other stream.
func WorkflowOfStream(stream string) (string, bool) { return strings.CutPrefix(stream, "WORKFLOW_") }

// StreamSubjects are the subjects the workflow's stream captures.
func StreamSubjects(workflowID string) []string { return []string{"workflows." + workflowID + ".>"} }

// Definition is the subject of a workflow's definition message: its
// first version.
func Definition(workflowID string) string { return "workflows." + workflowID + ".definition" }

// DefinitionVersion is the subject of version v of a definition: v 1 is
// the Definition message (as stored before versions existed), every later
// one has a subject of its own, written once.
func DefinitionVersion(workflowID string, v int) string {
	if v <= 1 {
		return Definition(workflowID)
	}
	return join("workflows", workflowID, "versions", strconv.Itoa(v))
}

// LatestVersion is the subject recording a workflow's latest version
// ({"version": N}, rolled up); a stream without it is at version 1.
func LatestVersion(workflowID string) string { return join("workflows", workflowID, "version") }

// TokenState is the subject of a token's state while it sits in place.
func TokenState(workflowID, place, tokenID string) string {
	return join("workflows", workflowID, "places", place, "tokens", tokenID)
}

// TokenAnyPlace matches a token's state subject in every place.
func TokenAnyPlace(workflowID, tokenID string) string { return TokenState(workflowID, "*", tokenID) }

// PlaceTokens matches every token state subject of one place.
func PlaceTokens(workflowID, place string) string { return TokenState(workflowID, place, "*") }

// AllTokens matches every token state subject of a workflow.
func AllTokens(workflowID string) string { return TokenState(workflowID, "*", "*") }

// LifecycleEvents is the subject of token_created and workflow_created events.
func LifecycleEvents(workflowID string) string {
	return "workflows." + workflowID + ".events.lifecycle"
}

// TransitionEvents is the subject of token_transitioned events.
func TransitionEvents(workflowID string) string {
	return "workflows." + workflowID + ".events.transitions"
}

// AllEvents matches every event subject of a workflow.
func AllEvents(workflowID string) string { return "workflows." + workflowID + ".events.>" }

// PlaceFromSubject returns the place token of a token state subject.
func PlaceFromSubject(subject string) string {
	parts := strings.Split(subject, ".")
	if len(parts) != 6 {
		return ""
	}
	return parts[3]
}

// TokenHistory is the subject of a token's history entries, one message
// per change that adds to it, never rolled up and never expired.
func TokenHistory(workflowID, tokenID string) string {
	return join("workflows", workflowID, "history", tokenID)
}

// ArchivedToken is the subject of an archived token's state: outside
// every place, so no place listing, list of a workflow's tokens or count of
// live tokens sees it, while a read by id still finds it.
func ArchivedToken(workflowID, tokenID string) string {
	return join("workflows", workflowID, "archive", tokenID)
}

// AllArchived matches every archived token state subject of a workflow.
func AllArchived(workflowID string) string { return ArchivedToken(workflowID, "*") }

// AllHistories matches every token history subject of a workflow.
func AllHistories(workflowID string) string { return TokenHistory(workflowID, "*") }

// Layout is the subject recording the stored layout of a workflow's
// tokens: {"layout": N}. Layout 2 keeps each token's history apart from
// its state (TokenHistory); a stream without the record is of layout 1
// and the token service upgrades it.
func Layout(workflowID string) string { return join("workflows", workflowID, "layout") }

// IndexEntry is the subject of a token's index entry for one search
// attribute (its key, flow.SearchAttribute.Key) and value (its index
// encoding): an empty message, rolled up; a tombstone when the token no
// longer has the value.
func IndexEntry(workflowID, key, value, tokenID string) string {
	return join("workflows", workflowID, "idx", key, value, tokenID)
}

// SearchIndexState is the subject of a workflow's search index record
// (wire.SearchIndex): whether existing tokens have the entries of every
// attribute the latest version declares, and how far a build has got.
func SearchIndexState(workflowID string) string { return join("workflows", workflowID, "searchindex") }

// IndexValue matches the index entries of every token with a value.
func IndexValue(workflowID, key, value string) string { return IndexEntry(workflowID, key, value, "*") }

// IndexKey matches every index entry of an attribute.
func IndexKey(workflowID, key string) string { return IndexEntry(workflowID, key, "*", "*") }

// CurrentLayout is the stored layout of tokens written by this release.
const CurrentLayout = 2

// TokenIDFromSubject returns the token id of a token state subject, or "".
func TokenIDFromSubject(subject string) string {
	parts := strings.Split(subject, ".")
	if len(parts) != 6 {
		return ""
	}
	return parts[5]
}

// LastToken returns the last token of a subject: the token id of a state,
// archived-state or history subject.
func LastToken(subject string) string { return subject[strings.LastIndexByte(subject, '.')+1:] }

func join(parts ...string) string { return strings.Join(parts, ".") }

// Requests of the event service.
const (
	EventHistory       Request = "event.history"
	EventReplay        Request = "event.replay"
	EventStats         Request = "event.stats"
	EventSubscribe     Request = "event.subscribe"
	EventSubscriptions Request = "event.subscriptions"
	EventUnsubscribe   Request = "event.unsubscribe"
)

// Requests of the event service: analytics and health.
const (
	// EventAnalytics is a workflow's analytics, folded incrementally from
	// its events into the AnalyticsBucket.
	EventAnalytics Request = "event.analytics"
	// EventWorkflowHealth is a workflow's stream, subscriptions and rates.
	EventWorkflowHealth Request = "event.workflowhealth"
	// EventSystemHealth is the account's JetStream and servers as the
	// services' NATS user sees them (every tenant only).
	EventSystemHealth Request = "event.systemhealth"
	// EventPerformance is message and request rates and latencies over a
	// recent time range (every tenant only).
	EventPerformance Request = "event.performance"
)

// AnalyticsBucket is the KV bucket of workflow analytics: per workflow an
// aggregate (key AnalyticsKey) with the last event sequence it applied,
// and per live token the time it entered its place (AnalyticsTokenKey).
const AnalyticsBucket = "CB_ANALYTICS"

// analyticsWorkflowKey maps a workflow id to a key token sequence: the
// tenant separator "::" becomes "." (no name contains a dot).
func analyticsWorkflowKey(workflowID string) string {
	return strings.Replace(workflowID, "::", ".", 1)
}

// AnalyticsKey is the key of a workflow's analytics aggregate.
func AnalyticsKey(workflowID string) string { return "w." + analyticsWorkflowKey(workflowID) }

// AnalyticsTokenKey is the key of a live token's place entry time.
func AnalyticsTokenKey(workflowID, tokenID string) string {
	return "t." + analyticsWorkflowKey(workflowID) + "." + tokenID
}

// KVSubject is the subject a key of a KV bucket is stored on.
func KVSubject(bucket, key string) string { return "$KV." + bucket + "." + key }
