package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Import (workflow.import): the versions of an export file (shared/transfer)
// are stored as they were, with their version numbers and times, each
// version once on its own subject (compare-and-swap: it must not exist),
// in order, then the catalogue entry. The catalogue entry comes last: a
// workflow whose import was cut short has versions in its stream but no
// catalogue entry, is not listed or readable yet, and the next import of
// the same file completes it. Every version already stored must equal the
// file's (field by field, the analysis aside, which is recomputed).

// importSpecs are the workflow service's import endpoints.
func (s *Service) importSpecs(srv *rpc.Server) []rpc.Spec {
	return []rpc.Spec{{Name: "import", Subject: subjects.WorkflowImport, Handler: rpc.Endpoint(srv, s.importWorkflow),
		Description: "Store a workflow's versions as an export file holds them (version numbers and times kept), idempotently: identical versions stored already are fine, different ones a conflict; merge adds the file's later versions to an existing workflow; emits workflow_imported",
		Request:     `{workflowId, versions: [Definition], merge?: bool}`,
		Response:    `{workflowId, outcome: created|resumed|merged|unchanged, versions, added}`}}
}

// importWorkflow stores the versions of r that are missing.
func (s *Service) importWorkflow(ctx context.Context, r *wire.ImportWorkflowRequest) (*wire.ImportWorkflowReply, error) {
	defs, err := s.importedVersions(ctx, r)
	if err != nil {
		return nil, err
	}
	id := r.WorkflowID
	// The catalogue first: an import catalogues its workflow after storing
	// every version, so versions read after seeing the catalogue entry are
	// complete (a concurrent import of the same file is not mistaken for
	// an older workflow that needs merge).
	catalogued := true
	if _, err := s.store.get(ctx, id); errors.Is(err, fail.ErrNotFound) {
		catalogued = false
	} else if err != nil {
		return nil, err
	}
	st, existing, err := s.store.importState(ctx, id)
	if err != nil {
		return nil, err
	}
	for v := 1; v <= min(len(existing), len(defs)); v++ {
		if !sameDefinition(existing[v-1], defs[v-1]) {
			return nil, fail.New(fail.Conflict, "workflow %s exists and its version %d differs from the file's: import it under another id", id, v)
		}
	}
	reply := &wire.ImportWorkflowReply{WorkflowID: id, Versions: max(len(existing), len(defs))}
	switch {
	case len(existing) == 0:
		reply.Outcome = wire.ImportCreated
	case !catalogued:
		reply.Outcome = wire.ImportResumed
	case len(existing) == len(defs):
		reply.Outcome = wire.ImportUnchanged
	case !r.Merge:
		return nil, fail.New(fail.Conflict, "workflow %s exists with %d version(s), the file has %d: import with merge to add the file's later versions",
			id, len(existing), len(defs))
	default:
		reply.Outcome = wire.ImportMerged
	}
	if len(existing) == 0 {
		if err := s.admit(ctx, id); err != nil {
			return nil, err
		}
		timers := slices.ContainsFunc(defs, (*flow.Definition).HasTimers)
		if st, err = s.store.createStream(ctx, id, timers); err != nil {
			return nil, err
		}
	}
	for v := len(existing) + 1; v <= len(defs); v++ {
		if err := s.store.importVersion(ctx, st, defs[v-1], v == len(defs), s.now()); err != nil {
			return nil, err
		}
		reply.Added++
	}
	latest := defs[len(defs)-1]
	if len(existing) > len(defs) {
		latest = existing[len(existing)-1]
	}
	if err := s.store.catalogueImported(ctx, latest); err != nil {
		return nil, err
	}
	return reply, nil
}

// importedVersions checks the request's versions as a create checks a
// definition, and returns them as they are stored: the workflow's full id,
// times in UTC, the analysis recomputed.
func (s *Service) importedVersions(ctx context.Context, r *wire.ImportWorkflowRequest) ([]*flow.Definition, error) {
	scope := tenant.FromContext(ctx)
	out := make([]*flow.Definition, len(r.Versions))
	for i, in := range r.Versions {
		d := *in
		if d.ID != "" && scope.Qualify(d.ID) != r.WorkflowID {
			return nil, fail.New(fail.BadInput, "version %d is of workflow %s, not %s", i+1, d.ID, r.WorkflowID)
		}
		if d.Version != i+1 {
			return nil, fail.New(fail.BadInput, "versions must be 1, 2, … in order: item %d is version %d", i+1, d.Version)
		}
		if d.CreatedAt.IsZero() || d.UpdatedAt.IsZero() {
			return nil, fail.New(fail.BadInput, "version %d: createdAt and updatedAt are required", i+1)
		}
		d.ID, d.CreatedAt, d.UpdatedAt = r.WorkflowID, d.CreatedAt.UTC(), d.UpdatedAt.UTC()
		d.Transitions = append([]flow.Transition(nil), d.Transitions...)
		for j := range d.Transitions {
			if d.Transitions[j].Conditions == nil {
				d.Transitions[j].Conditions = []string{}
			}
		}
		if err := s.check(&d); err != nil {
			return nil, fail.New(fail.BadInput, "version %d: %s", i+1, err.Error())
		}
		out[i] = &d
	}
	return out, nil
}

// sameDefinition reports whether two versions are the same, their
// analyses aside (recomputed where they are stored).
func sameDefinition(a, b *flow.Definition) bool {
	return reflect.DeepEqual(canonical(a), canonical(b))
}

// canonical is d as JSON values, without its analysis and with empty
// lists and absent ones alike.
func canonical(d *flow.Definition) any {
	c := *d
	c.Analysis = flow.Analysis{}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	b, _ := json.Marshal(c)
	var v any
	_ = json.Unmarshal(b, &v)
	return dropEmpty(v)
}

// dropEmpty removes nulls, empty lists and empty strings from JSON values.
func dropEmpty(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e = dropEmpty(e); isEmpty(e) {
				delete(x, k)
			} else {
				x[k] = e
			}
		}
	case []any:
		for i := range x {
			x[i] = dropEmpty(x[i])
		}
	}
	return v
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case []any:
		return len(x) == 0
	case string:
		return x == ""
	}
	return false
}

// importState returns a workflow's stream and the versions it holds (none,
// and a nil stream, when it does not exist).
func (s *store) importState(ctx context.Context, id string) (jetstream.Stream, []*flow.Definition, error) {
	st, err := s.js.Stream(ctx, subjects.StreamName(id))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, storeError(err)
	}
	latest, err := s.latestVersion(ctx, st, id)
	if err != nil {
		return nil, nil, err
	}
	var out []*flow.Definition
	for v := 1; v <= latest; v++ {
		d, err := s.version(ctx, id, v)
		if v == 1 && errors.Is(err, fail.ErrNotFound) {
			return st, nil, nil // a stream created by an import cut short before its first version
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, d)
	}
	return st, out, nil
}

// createStream creates (or finds) a workflow's stream.
func (s *store) createStream(ctx context.Context, id string, timers bool) (jetstream.Stream, error) {
	st, err := s.js.CreateStream(ctx, s.streamConfig(id, timers))
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		st, err = s.js.Stream(ctx, subjects.StreamName(id))
	}
	return st, storeError(err)
}

// importVersion stores version d.Version of a workflow in one atomic
// batch: the definition (which must not exist yet), the latest-version
// record, with version 1 the layout record (a new stream's tokens need
// no upgrade), and with the last version imported the workflow_imported
// event. A batch that lost the stream's last sequence to other writes is
// sent again; one whose version exists by now is fine if it is the same.
func (s *store) importVersion(ctx context.Context, st jetstream.Stream, d *flow.Definition, last bool, now time.Time) error {
	body, err := json.Marshal(d)
	if err != nil {
		return fail.Wrap(fail.Internal, err, "encode definition")
	}
	for attempt := 0; ; attempt++ {
		err := s.publishImported(ctx, st, d, body, last, now)
		if !jserr.WrongSequence(err) {
			return err
		}
		if cur, e := s.version(ctx, d.ID, d.Version); e == nil {
			if sameDefinition(cur, d) {
				return nil // a concurrent import of the same file stored it
			}
			return fail.New(fail.Conflict, "workflow %s: version %d was stored concurrently, differently", d.ID, d.Version)
		}
		if attempt == maxUpdateAttempts {
			return fail.New(fail.Unavailable, "workflow %s: the stream kept moving; retry the import", d.ID)
		}
		time.Sleep(time.Duration(attempt) * 100 * time.Microsecond)
	}
}

func (s *store) publishImported(ctx context.Context, st jetstream.Stream, d *flow.Definition, body []byte, last bool, now time.Time) error {
	info, err := st.Info(ctx)
	if err != nil {
		return storeError(err)
	}
	def := nats.NewMsg(subjects.DefinitionVersion(d.ID, d.Version))
	def.Data = body
	def.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	def.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(info.State.LastSeq, 10))
	msgs := []*nats.Msg{def}
	latest := nats.NewMsg(subjects.LatestVersion(d.ID))
	latest.Data, _ = json.Marshal(map[string]int{"version": d.Version})
	latest.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	msgs = append(msgs, latest)
	if d.Version == 1 {
		mark := nats.NewMsg(subjects.Layout(d.ID))
		mark.Data, _ = json.Marshal(map[string]int{"layout": subjects.CurrentLayout})
		msgs = append(msgs, mark)
	}
	if last {
		ev, err := json.Marshal(wire.Event{EventType: wire.EventWorkflowImported, WorkflowID: d.ID, Timestamp: now,
			NatsSequence: info.State.LastSeq + 1, Revision: uint64(d.Version)})
		if err != nil {
			return fail.Wrap(fail.Internal, err, "encode event")
		}
		evm := nats.NewMsg(subjects.LifecycleEvents(d.ID)) // no message id: the version's compare-and-swap makes it once
		evm.Data = ev
		if s.opts.EventTTL >= time.Second {
			evm.Header.Set(jetstream.MsgTTLHeader, s.opts.EventTTL.String())
		}
		msgs = append(msgs, evm)
	}
	_, err = jetstreamext.PublishMsgBatch(ctx, s.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: 5 * time.Second})
	if jserr.WrongSequence(err) {
		return err
	}
	return storeError(err)
}

// catalogueImported makes the catalogue list d, the workflow's latest
// version, unless it lists a later one already.
func (s *store) catalogueImported(ctx context.Context, d *flow.Definition) error {
	body, err := json.Marshal(d)
	if err != nil {
		return fail.Wrap(fail.Internal, err, "encode definition")
	}
	_, err = s.catalog.Create(ctx, catalogKey(d.ID), body)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return s.catalogue(ctx, d, body)
	}
	return storeError(err)
}
