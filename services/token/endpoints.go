package token

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Version is the token service's semantic version.
const Version = "0.1.0"

const tokenReply = "Token {id, workflowId, place, data, metadata, createdAt, updatedAt, revision, records, natsSequence, natsSubject, natsTimestamp, archivedAt?}"

// Start registers the token service's endpoints on nc; requests run on srv.
func (s *Service) Start(nc *nats.Conn, srv *rpc.Server) (micro.Service, error) {
	svc := rpc.Service{
		Name:        subjects.TokenService,
		Version:     Version,
		Description: "Tokens (workflow instances): create, read, list by workflow or place, explain and fire transitions, archive and delete",
	}
	specs := []rpc.Spec{
		{Name: "create", Subject: subjects.TokenCreate, Handler: rpc.Endpoint(srv, s.create),
			Description: "Create a token in its workflow's initial place (or initialPlace); emits token_created",
			Request:     `{workflowId, initialPlace?, data?: JSON, metadata?: JSON object, triggeredBy?, idempotencyKey?}`,
			Response:    tokenReply},
		{Name: "get", Subject: subjects.TokenGet, Handler: rpc.Endpoint(srv, s.get),
			Description: "Get a token by id", Request: `{id: uuid}`, Response: tokenReply},
		{Name: "find", Subject: subjects.TokenFind, Handler: rpc.Endpoint(srv, s.find),
			Description: "Get a token of a known workflow", Request: `{workflowId, tokenId: uuid}`, Response: tokenReply},
		{Name: "list", Subject: subjects.TokenList, Handler: rpc.Endpoint(srv, s.list),
			Description: "List a workflow's tokens, oldest change first",
			Request:     `{workflowId, first?: int (≤1000), after?: cursor}`, Response: `{items: [Token], next?: cursor}`},
		{Name: "inplace", Subject: subjects.TokenInPlace, Handler: rpc.Endpoint(srv, s.inPlace),
			Description: "List the tokens currently in a place",
			Request:     `{workflowId, place, first?: int (≤1000), after?: cursor}`, Response: `{items: [Token], next?: cursor}`},
		{Name: "history", Subject: subjects.TokenHistoryPage, Handler: rpc.Endpoint(srv, s.history),
			Description: "Page through a token's history, oldest first: each change's transition record and, for a fire, its history event",
			Request:     `{tokenId: uuid, first?: int (≤1000, default 1000), after?: cursor, fires?: bool}`,
			Response:    `{items: [{sequence, record: TransitionRecord, event?: HistoryEvent}], next?: cursor}`},
		{Name: "available", Subject: subjects.TokenAvailable, Handler: rpc.Endpoint(srv, s.available),
			Description: "Transitions that can fire now (place and guards), with an explanation for every transition",
			Request:     `{tokenId: uuid}`, Response: `{token: Token, transitions: [Transition], evaluations: [Evaluation]}`},
		{Name: "fire", Subject: subjects.TokenFire, Handler: rpc.Endpoint(srv, s.fire),
			Description: "Fire a transition (compare-and-swap on the revision read); emits token_transitioned",
			Request:     `{tokenId: uuid, transitionId, newPlace?, data?: JSON merge patch, replaceData?, triggeredBy?, expectedRevision?, idempotencyKey?}`,
			Response:    tokenReply},
		{Name: "update", Subject: subjects.TokenUpdate, Handler: rpc.Endpoint(srv, s.update),
			Description: "Change a token's data or metadata without a transition; emits token_updated",
			Request:     `{tokenId: uuid, data?: JSON merge patch, replaceData?, metadata?: JSON merge patch, triggeredBy?, expectedRevision?}`,
			Response:    tokenReply},
		{Name: "search", Subject: subjects.TokenSearch, Handler: rpc.Endpoint(srv, s.findTokens),
			Description: "Tokens of the listed workflows that a filter matches, by workflow and id; equality and ranges on declared search attributes, places, created/updated times, and/or; a key not declared is refused",
			Request:     `{filter: {workflowIds: [id], places?, data?: {path: value}, metadata?: {path: value}, ranges?: [{path, gt?, gte?, lt?, lte?}], createdAfter?, createdBefore?, updatedAfter?, updatedBefore?, and?: [filter], or?: [filter]}, first?: int (≤1000), after?: cursor}`,
			Response:    `{items: [Token], next?: cursor}`},
		{Name: "count", Subject: subjects.TokenCount, Handler: rpc.Endpoint(srv, s.countTokens),
			Description: "How many tokens a filter matches (as search)", Request: `{filter}`, Response: `{count}`},
		{Name: "bulk", Subject: subjects.TokenBulk, Handler: rpc.Endpoint(srv, s.bulk),
			Description: "Fire a transition on every token in fromPlace that filter accepts, each alone (guards, compare-and-swap) and many at once (group commits); idempotencyKey makes it safe to send again (complete: false when it stopped at its deadline); bulk_progress events report progress",
			Request:     `{workflowId, fromPlace, transitionId, toPlace?, filter?: TokenFilter, data?, dryRun?, idempotencyKey, triggeredBy?}`,
			Response:    `{success, processedCount, failedCount, complete, dryRun?, errors: [string], outcomes: [{tokenId, toPlace?, error?, code?}]}`},
		{Name: "migrate", Subject: subjects.TokenMigrate, Handler: rpc.Endpoint(srv, s.migrate),
			Description: "Move tokens to another version of their workflow (each atomically, with a migrate record and token_migrated); placeMapping maps the places the target lacks; dryRun changes nothing; a token already on toVersion is left alone, so a migration that stopped at its deadline (complete: false) goes on when sent again",
			Request:     `{workflowId, fromVersion, toVersion, placeMapping?: {place: place}, tokenIds?: [uuid] | filter?: {places?, data?, metadata?}, dryRun?, triggeredBy?}`,
			Response:    `{migratedCount, failedCount, complete, dryRun?, outcomes: [{tokenId, fromPlace, toPlace?, error?}]}`},
		{Name: "archive", Subject: subjects.TokenArchive, Handler: rpc.Endpoint(srv, s.archive),
			Description: "Archive a token: it leaves its place and every list and count of live tokens, stays readable by id with its history, and can no longer change (compare-and-swap on the revision read); emits token_archived. An archived token is returned as it is",
			Request:     `{tokenId: uuid, triggeredBy?, expectedRevision?}`,
			Response:    tokenReply},
		{Name: "delete", Subject: subjects.TokenDelete, Handler: rpc.Endpoint(srv, s.del),
			Description: "Delete a token, live or archived: its state, history and index entry (its events keep a token_deleted record); idempotent, and finishes a delete that stopped half-way",
			Request:     `{tokenId: uuid, triggeredBy?}`,
			Response:    `{deleted: bool}`},
		{Name: "searchindex", Subject: subjects.TokenSearchIndex, Handler: rpc.Endpoint(srv, s.searchIndex),
			Description: "The state of a workflow's search index: READY, or BUILDING the entries of the attributes a version added for the tokens that existed then (a search on those is refused until READY), with the build's progress",
			Request:     `{workflowId}`,
			Response:    `{workflowId, state: READY|BUILDING, version, building: [path], indexedTokens, scannedTokens, startedAt?, updatedAt?, finishedAt?}`},
		{Name: "reindex", Subject: subjects.TokenReindex, Handler: rpc.Endpoint(srv, s.reindex),
			Description: "Start (or resume) the build of a workflow's search index in the background, on the instance that writes the workflow, unless it is READY or another instance is building it; replies with the state as read. An update that adds search attributes sends it",
			Request:     `{workflowId}`, Response: "as searchindex"},
	}
	specs = append(specs, s.importSpecs(srv)...)
	if s.writers != nil {
		svc.Metadata = map[string]string{subjects.MetaWriter: s.writers.self}
		specs = append(specs, s.writerSpecs(srv)...)
	}
	return rpc.AddService(nc, svc, specs, srv)
}

// writerSpecs are this instance's own endpoints for the writes other
// instances pass on to it: the same requests and replies as create, fire
// and update, served here without being passed on again.
func (s *Service) writerSpecs(srv *rpc.Server) []rpc.Spec {
	const why = "Internal, between token-service instances: a %s passed on to this instance, which writes its workflow"
	at := func(op string) subjects.Request { return subjects.TokenWriter(s.writers.self, op) }
	return []rpc.Spec{
		{Name: "writer-create", Subject: at(opCreate), Handler: rpc.Endpoint(srv, s.createHere),
			Description: fmt.Sprintf(why, "create"), Request: "as create", Response: tokenReply},
		{Name: "writer-fire", Subject: at(opFire), Handler: rpc.Endpoint(srv, s.fireHere),
			Description: fmt.Sprintf(why, "fire"), Request: "as fire", Response: tokenReply},
		{Name: "writer-update", Subject: at(opUpdate), Handler: rpc.Endpoint(srv, s.updateHere),
			Description: fmt.Sprintf(why, "update"), Request: "as update", Response: tokenReply},
		{Name: "writer-bulk", Subject: at(opBulk), Handler: rpc.Endpoint(srv, s.bulkHere),
			Description: fmt.Sprintf(why, "bulk transition"), Request: "as bulk", Response: "as bulk"},
		{Name: "writer-migrate", Subject: at(opMigrate), Handler: rpc.Endpoint(srv, s.migrateHere),
			Description: fmt.Sprintf(why, "migration"), Request: "as migrate", Response: "as migrate"},
		{Name: "writer-archive", Subject: at(opArchive), Handler: rpc.Endpoint(srv, s.archiveHere),
			Description: fmt.Sprintf(why, "archive"), Request: "as archive", Response: tokenReply},
		{Name: "writer-delete", Subject: at(opDelete), Handler: rpc.Endpoint(srv, s.deleteHere),
			Description: fmt.Sprintf(why, "delete"), Request: "as delete", Response: `{deleted: bool}`},
		{Name: "writer-timer", Subject: at(opTimer), Handler: rpc.Endpoint(srv, s.timerHere),
			Description: fmt.Sprintf(why, "due timer"), Request: "{workflowId, tokenId, transitionId, revision, dueAt}",
			Response: "{result: fired|stale|skipped|rescheduled, dueAt}"},
		{Name: "writer-reindex", Subject: at(opReindex), Handler: rpc.Endpoint(srv, s.reindexHere),
			Description: fmt.Sprintf(why, "search index build"), Request: "as reindex", Response: "as searchindex"},
	}
}
