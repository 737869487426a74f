package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/jsread"
	"github.com/cbnats/circuitbreaker/shared/rules"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// StoreOptions configure the workflow store.
type StoreOptions struct {
	Replicas     int           // replicas of workflow streams and the catalogue
	DedupeWindow time.Duration // duplicate window of workflow streams
	EventTTL     time.Duration // per-event TTL (0 keeps events)
	Expr         rules.Limits  // cost bounds of Expression rules, checked at create
}

// store keeps definitions: each in its workflow's stream (the authority,
// so a stream backup is self-contained) and in a catalogue bucket for listing.
type store struct {
	js      jetstream.JetStream
	catalog jetstream.KeyValue
	rd      jsread.Reader // direct gets, or leader reads when replicated
	opts    StoreOptions
}

func openStore(ctx context.Context, js jetstream.JetStream, o StoreOptions) (*store, error) {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      subjects.CatalogBucket,
		Description: "workflow definitions by id, for listing",
		Replicas:    o.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, storeError(err)
	}
	return &store{js: js, catalog: kv, rd: jsread.New(js, o.Replicas > 1), opts: o}, nil
}

// streamConfig is the layout of a workflow's stream. Limits retention with
// no stream-wide and no per-subject limit: state and history are never
// discarded, and DiscardNew makes a write fail rather than drop data should
// such a limit be added by hand. Events expire by their own TTL; the event
// service trims them by count and size (filtered purges of event subjects).
//
// A workflow with timers gets a stream that takes message schedules from
// the start (the server refuses them with DiscardNew; the stream has no
// limit, so nothing is discarded either way): the token service then
// never has to update a stream that tokens are being written to.
func (s *store) streamConfig(id string, timers bool) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:               subjects.StreamName(id),
		Description:        "Circuit Breaker workflow " + id + ": definition, tokens and events",
		Subjects:           subjects.StreamSubjects(id),
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardNew,
		Storage:            jetstream.FileStorage,
		Replicas:           s.opts.Replicas,
		Duplicates:         s.opts.DedupeWindow,
		AllowDirect:        true,
		AllowRollup:        true,
		AllowAtomicPublish: true,
		AllowMsgTTL:        true,
		DenyDelete:         true,
	}
	if timers {
		cfg.AllowMsgSchedules, cfg.Discard = true, jetstream.DiscardOld
	}
	return cfg
}

// create stores a new definition and its workflow_created event in one
// atomic batch; fail.Conflict if the id is taken.
func (s *store) create(ctx context.Context, d *flow.Definition) error {
	st, err := s.js.CreateStream(ctx, s.streamConfig(d.ID, d.HasTimers()))
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		st, err = s.js.Stream(ctx, subjects.StreamName(d.ID))
	}
	if err != nil {
		return storeError(err)
	}
	body, err := json.Marshal(d)
	if err != nil {
		return fail.Wrap(fail.Internal, err, "encode definition")
	}
	if err := s.publish(ctx, st, d, body); err != nil {
		return err
	}
	if _, err := s.catalog.Put(ctx, catalogKey(d.ID), body); err != nil {
		return storeError(err)
	}
	return nil
}

func (s *store) publish(ctx context.Context, st jetstream.Stream, d *flow.Definition, body []byte) error {
	info, err := st.Info(ctx)
	if err != nil {
		return storeError(err)
	}
	def := nats.NewMsg(subjects.Definition(d.ID))
	def.Data = body
	def.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	def.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(info.State.LastSeq, 10))
	mark := nats.NewMsg(subjects.Layout(d.ID)) // a new stream needs no upgrade of its tokens
	mark.Data, _ = json.Marshal(map[string]int{"layout": subjects.CurrentLayout})
	ev, err := json.Marshal(wire.Event{EventType: wire.EventWorkflowCreated, WorkflowID: d.ID,
		Timestamp: d.CreatedAt, NatsSequence: info.State.LastSeq + 1})
	if err != nil {
		return fail.Wrap(fail.Internal, err, "encode event")
	}
	evm := nats.NewMsg(subjects.LifecycleEvents(d.ID))
	evm.Data = ev
	evm.Header.Set(jetstream.MsgIDHeader, "workflow:"+d.ID)
	if s.opts.EventTTL >= time.Second {
		evm.Header.Set(jetstream.MsgTTLHeader, s.opts.EventTTL.String())
	}
	_, err = jetstreamext.PublishMsgBatch(ctx, s.js, []*nats.Msg{def, mark, evm},
		jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: 5 * time.Second})
	if jserr.WrongSequence(err) {
		s.repair(ctx, st, d.ID)
		return fail.New(fail.Conflict, "Workflow '%s' already exists", d.ID)
	}
	return storeError(err)
}

// repair puts a definition that is in its stream but missing from the
// catalogue (a crash between the two writes) back into the catalogue.
func (s *store) repair(ctx context.Context, st jetstream.Stream, id string) {
	if _, err := s.catalog.Get(ctx, catalogKey(id)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		return
	}
	if msg, err := st.GetLastMsgForSubject(ctx, subjects.Definition(id)); err == nil {
		_, _ = s.catalog.Create(ctx, catalogKey(id), msg.Data)
	}
}

func (s *store) get(ctx context.Context, id string) (*flow.Definition, error) {
	b, err := s.rd.KV(ctx, s.catalog, catalogKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, tenant.WorkflowNotFound(id)
	}
	if err != nil {
		return nil, storeError(err)
	}
	return decode(b)
}

func decode(b []byte) (*flow.Definition, error) {
	d := new(flow.Definition)
	if err := json.Unmarshal(b, d); err != nil {
		return nil, fail.Wrap(fail.Internal, err, "stored definition is unreadable")
	}
	return d, nil
}

// list returns a page of the scope's definitions ordered by id.
func (s *store) list(ctx context.Context, scope tenant.Scope, p wire.Page) (*wire.WorkflowPage, error) {
	keys, err := s.keys(ctx, scope)
	if err != nil {
		return nil, err
	}
	slices.Sort(keys)
	start, _ := slices.BinarySearch(keys, p.After)
	if start < len(keys) && keys[start] == p.After {
		start++
	}
	end := min(start+p.Size(), len(keys))
	page := &wire.WorkflowPage{Items: make([]*flow.Definition, 0, end-start)}
	bytes := 0
	for i, k := range keys[start:end] {
		if bytes >= wire.MaxPageBytes {
			end = start + i // a full page of large definitions: go on from here
			break
		}
		d, err := s.get(ctx, k)
		if err != nil {
			return nil, err
		}
		b, _ := json.Marshal(d)
		bytes += len(b)
		page.Items = append(page.Items, d)
	}
	if end < len(keys) {
		page.Next = keys[end-1]
	}
	return page, nil
}

// keys lists the ids of the scope's workflows in the catalogue: with a KV
// key listing (an ordered consumer) on one server, and through the
// bucket's stream leader when replicated (a consumer may be served by a
// lagging replica). A tenant's ids are the keys "<tenant>.*", so listing
// them reads only that tenant's entries.
func (s *store) keys(ctx context.Context, scope tenant.Scope) ([]string, error) {
	filter := ">"
	if scope != tenant.All {
		filter = string(scope) + ".*"
	}
	if s.rd.Leader() {
		return s.leaderKeys(ctx, filter)
	}
	lister, err := s.catalog.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, storeError(err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, workflowID(k))
	}
	return keys, nil
}

func (s *store) leaderKeys(ctx context.Context, filter string) ([]string, error) {
	prefix := "$KV." + subjects.CatalogBucket + "."
	var keys []string
	for seq := uint64(1); ; {
		msg, err := s.rd.Next(ctx, "KV_"+subjects.CatalogBucket, seq, prefix+filter)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return keys, nil
		}
		if err != nil {
			return nil, storeError(err)
		}
		if msg.Header.Get("KV-Operation") == "" { // not a delete marker
			keys = append(keys, workflowID(strings.TrimPrefix(msg.Subject, prefix)))
		}
		seq = msg.Sequence + 1
	}
}

// catalogKey maps a workflow id to its catalogue key: KV keys cannot hold
// ':', so a tenant id's "::" becomes '.', which no name contains.
func catalogKey(id string) string { return strings.Replace(id, flow.TenantSeparator, ".", 1) }

// workflowID is catalogKey's inverse.
func workflowID(key string) string { return strings.Replace(key, ".", flow.TenantSeparator, 1) }

func storeError(err error) error { return jserr.Classify(err) }
