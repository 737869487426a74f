// Package workflow is the workflow service: it validates, analyses, stores,
// gets and lists workflow definitions over NATS micro endpoints. Creating a
// workflow creates its stream and publishes workflow_created.
package workflow

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/quota"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/rules"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// idempotencyNS derives workflow ids from idempotency keys.
var idempotencyNS = uuid.MustParse("0b9d7c4e-2f61-4a8b-8e3d-5c7a1f2e9b64")

// Service implements the workflow endpoints.
type Service struct {
	store  *store
	quotas *quota.Book
	usage  *quota.Usage // counts of live tokens, lowered when a workflow's go with it
	expr   rules.Limits
	now    func() time.Time
	log    zerolog.Logger
}

// New opens the workflow store (creating the catalogue bucket if needed)
// and follows the tenants' quotas.
func New(ctx context.Context, js jetstream.JetStream, o StoreOptions) (*Service, error) {
	st, err := openStore(ctx, js, o)
	if err != nil {
		return nil, err
	}
	book, err := quota.Watch(ctx, js, o.Replicas)
	if err != nil {
		return nil, err
	}
	return &Service{store: st, quotas: book, usage: quota.Counter(js), expr: o.Expr, log: zerolog.Nop(),
		now: func() time.Time { return time.Now().UTC() }}, nil
}

// Close stops following the quotas.
func (s *Service) Close() { s.quotas.Close() }

// admit refuses a new workflow of a tenant that has as many as its
// maxWorkflows quota allows. An id already stored passes: its create is
// answered as a conflict, or idempotently.
func (s *Service) admit(ctx context.Context, id string) error {
	name := tenant.OfWorkflow(id)
	limit := s.quotas.Of(name).MaxWorkflows
	if name == "" || limit == 0 {
		return nil
	}
	ids, err := s.store.keys(ctx, tenant.Scope(name))
	if err != nil || slices.Contains(ids, id) {
		return err
	}
	return quota.Check(name, "maxWorkflows", int64(len(ids)), int64(limit))
}

func (s *Service) create(ctx context.Context, r *wire.CreateWorkflowRequest) (*flow.Definition, error) {
	now := s.now()
	d := definition(r, now, now, 1)
	scope := tenant.FromContext(ctx)
	if d.ID == "" && r.IdempotencyKey != "" {
		d.ID = uuid.NewSHA1(idempotencyNS, []byte(scope.Prefix()+r.IdempotencyKey)).String()
	} else if d.ID == "" {
		d.ID = uuid.NewString()
	}
	if d.ID = scope.Qualify(d.ID); !scope.Sees(d.ID) {
		return nil, fail.New(fail.Forbidden, "tenant %s may only create workflows of its own (%s<name>)", scope, scope.Prefix())
	}
	if err := s.check(d); err != nil {
		return nil, err
	}
	if err := s.admit(ctx, d.ID); err != nil {
		return nil, err
	}
	err := s.store.create(ctx, d)
	if r.ID == "" && r.IdempotencyKey != "" && errors.Is(err, fail.ErrConflict) {
		return s.store.get(ctx, d.ID)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// definition is the definition a create or update request describes.
func definition(r *wire.CreateWorkflowRequest, created, updated time.Time, version int) *flow.Definition {
	d := &flow.Definition{ID: r.ID, Name: r.Name, Description: r.Description, Places: r.Places,
		InitialPlace: r.InitialPlace, Transitions: r.Transitions, CreatedAt: created, UpdatedAt: updated, Version: version,
		SearchAttributes: r.SearchAttributes, ArchiveAfter: r.ArchiveAfter}
	for i := range d.Transitions {
		if d.Transitions[i].Conditions == nil {
			d.Transitions[i].Conditions = []string{}
		}
	}
	return d
}

// check validates d within the expression limits and analyses it.
func (s *Service) check(d *flow.Definition) error {
	if err := d.ValidateWithin(s.expr); err != nil {
		return err
	}
	d.Analysis = flow.Analyze(d)
	return nil
}

// update stores the next version of a workflow, validated and analysed
// like a create, if the caller's expected version is still the latest.
// Tokens keep the version they were created on.
func (s *Service) update(ctx context.Context, r *wire.UpdateWorkflowRequest) (*flow.Definition, error) {
	cur, err := s.store.get(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if cur.Version != r.ExpectedVersion {
		return nil, fail.New(fail.Conflict, "workflow %s is at version %d, not %d: read it and update that", r.ID, cur.Version, r.ExpectedVersion)
	}
	d := definition(&r.CreateWorkflowRequest, cur.CreatedAt, s.now(), cur.Version+1)
	if err := s.check(d); err != nil {
		return nil, err
	}
	building, err := s.store.addVersion(ctx, d)
	if err != nil {
		return nil, err
	}
	if building {
		go s.startReindex(d.ID)
	}
	return d, nil
}

// startReindex asks the token service to build the search index entries
// an update added. A request that fails is logged, not retried: the
// token service's sweeper starts a build it finds waiting.
func (s *Service) startReindex(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := rpc.Call[wire.SearchIndexRequest, wire.SearchIndex](ctx, s.store.js.Conn(), subjects.TokenReindex.In(subjects.AllTenants),
		&wire.SearchIndexRequest{WorkflowID: id})
	if err != nil {
		s.log.Warn().Err(err).Str("workflow", id).Msg("start search index build: the token service's sweeper will start it")
	}
}

func (s *Service) get(ctx context.Context, r *wire.GetWorkflowRequest) (*flow.Definition, error) {
	d, err := s.store.get(ctx, r.ID)
	if err != nil || r.Version == 0 || r.Version == d.Version {
		return d, err
	}
	return s.store.version(ctx, r.ID, r.Version)
}

func (s *Service) versions(ctx context.Context, r *wire.WorkflowVersionsRequest) (*wire.WorkflowVersions, error) {
	if _, err := s.store.get(ctx, r.ID); err != nil { // NOT_FOUND as for any read
		return nil, err
	}
	items, err := s.store.versions(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	return &wire.WorkflowVersions{Items: items}, nil
}

func (s *Service) list(ctx context.Context, r *wire.ListWorkflowsRequest) (*wire.WorkflowPage, error) {
	return s.store.list(ctx, tenant.FromContext(ctx), r.Page)
}
