package workflow

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Version is the workflow service's semantic version.
const Version = "0.1.0"

const definitionReply = "Definition {id, name, description, places, initialPlace, transitions, archiveAfter?, createdAt, updatedAt, version, analysis}"

// Start registers the workflow service's endpoints on nc; requests run on srv.
func (s *Service) Start(nc *nats.Conn, srv *rpc.Server) (micro.Service, error) {
	return rpc.AddService(nc, rpc.Service{
		Name:        subjects.WorkflowService,
		Version:     Version,
		Description: "Workflow definitions: validate, analyse, store (and version), get, list, delete and import",
	}, append([]rpc.Spec{
		{Name: "create", Subject: subjects.WorkflowCreate, Handler: rpc.Endpoint(srv, s.create),
			Description: "Validate and store a definition; creates its stream and emits workflow_created",
			Request:     `{id?, name, description?, places: [place], initialPlace, transitions: [{id, name?, description?, fromPlaces, toPlace, conditions?, rules?}], archiveAfter?, idempotencyKey?}`,
			Response:    definitionReply},
		{Name: "update", Subject: subjects.WorkflowUpdate, Handler: rpc.Endpoint(srv, s.update),
			Description: "Store the next version of a definition (validated like a create) if expectedVersion is still the latest; emits workflow_updated. Tokens keep their version",
			Request:     `{id, expectedVersion, name, description?, places, initialPlace, transitions}`, Response: definitionReply},
		{Name: "get", Subject: subjects.WorkflowGet, Handler: rpc.Endpoint(srv, s.get),
			Description: "Get a definition by id: its latest version, or version", Request: `{id, version?}`, Response: definitionReply},
		{Name: "versions", Subject: subjects.WorkflowVersions, Handler: rpc.Endpoint(srv, s.versions),
			Description: "Every version of a definition, oldest first", Request: `{id}`, Response: `{items: [Definition]}`},
		{Name: "delete", Subject: subjects.WorkflowDelete, Handler: rpc.Endpoint(srv, s.deleteWorkflow),
			Description: "Delete a workflow: its stream (definition, every version, tokens, histories, events, durable subscriptions), catalogue entry and token index entries, freeing their storage; refused (409) while it has live tokens unless force; idempotent. The id can be created again",
			Request:     `{id, force?: bool}`, Response: `{deleted: bool, tokens: int, liveTokens: int}`},
		{Name: "list", Subject: subjects.WorkflowList, Handler: rpc.Endpoint(srv, s.list),
			Description: "List definitions ordered by id",
			Request:     `{first?: int (≤1000), after?: cursor}`, Response: `{items: [Definition], next?: cursor}`},
	}, s.importSpecs(srv)...), srv)
}
