// Package store keeps tokens in JetStream, following the storage contract:
// one live message per token on workflows.<wf>.places.<place>.tokens.<id>
// in the workflow's stream, every change one atomic batch with its event
// (group-committed per stream), reads through direct get only, and a KV
// index from token id to workflow id.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/jsread"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/rules"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Cache bounds. The token id → workflow id cache takes about 150 bytes an
// entry (a few MiB). Recently committed states are bounded by the size of
// their JSON (a decoded token takes about as much again): recentBudget in
// all, ~30,000 small tokens; a state over recentMaxBytes is not kept.
const (
	idCacheSize    = 20_000
	recentBudget   = 16 << 20
	recentMaxBytes = 1 << 20
)

// upgradeTimeout bounds the upgrade of one workflow's stored tokens.
const upgradeTimeout = 10 * time.Minute

// recentState is a committed state and the size of its JSON.
type recentState struct {
	token *flow.Token
	size  int
}

// Options configure a Store.
type Options struct {
	Replicas int               // replicas of the token index bucket
	EventTTL time.Duration     // per-event TTL (0 keeps events)
	Metrics  *metrics.Registry // commit metrics, when set
	Expr     rules.Limits      // cost bounds of Expression rules
}

// Store reads and writes tokens. It is safe for concurrent use.
type Store struct {
	js    jetstream.JetStream
	index jetstream.KeyValue
	log   zerolog.Logger
	opts  Options
	ctx   context.Context // lifetime of the committers
	stop  context.CancelFunc

	ids    *cache[string]      // token id → workflow id
	recent *cache[recentState] // states this instance committed: a guess, see Recent
	rd     jsread.Reader       // direct gets, or leader reads when replicated
	read   metrics.Counter     // messages read, by operation

	mu        sync.Mutex // guards workflows, loading and evicted
	workflows map[string]*workflow
	loading   map[string]chan struct{} // workflows being loaded (and upgraded): closed when done
	evicted   map[string]bool          // workflows evicted while being loaded: not kept
	wg        sync.WaitGroup           // committer goroutines
	timers    timerState               // workflows with timers (timers.go)

	indexStream jetstream.Stream // the index bucket's stream: filtered purges remove entries without a trace
}

// workflow is what the store caches of one workflow: its stream handle,
// its committer and the machines of its definition's versions (each
// version never changes once stored), loaded on first use, until the
// workflow is deleted (Evict).
type workflow struct {
	id        string
	stream    jetstream.Stream
	created   time.Time // the stream's creation: tells a stream created again apart
	committer *committer
	stop      context.CancelFunc // ends the committer

	mu       sync.Mutex
	machines map[int]*flow.Machine // by version
}

// Open binds the store, creating the token index bucket if needed.
func Open(ctx context.Context, js jetstream.JetStream, log zerolog.Logger, o Options) (*Store, error) {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewRegistry()
	}
	idx, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      subjects.TokenIndexBucket,
		Description: "token id → workflow id",
		Replicas:    o.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, storeError(err)
	}
	idxStream, err := js.Stream(ctx, subjects.KVStream(subjects.TokenIndexBucket))
	if err != nil {
		return nil, storeError(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	return &Store{js: js, index: idx, indexStream: idxStream, log: log, opts: o, ctx: runCtx, stop: stop,
		ids:       newCache[string](idCacheSize, nil),
		recent:    newCache(recentBudget, func(r recentState) int { return r.size }),
		workflows: make(map[string]*workflow),
		loading:   make(map[string]chan struct{}),
		evicted:   make(map[string]bool),
		rd:        jsread.New(js, o.Replicas > 1),
		read:      o.Metrics.Counter("cb_token_messages_read_total", "Token messages read from JetStream, by operation (get, scan).", "op")}, nil
}

// Close stops the committers after failing what is still queued.
func (s *Store) Close() {
	s.mu.Lock() // no committer starts after this (loadOnce checks ctx under mu)
	s.stop()
	s.mu.Unlock()
	s.wg.Wait()
}

// Machine returns the machine of version v of a workflow's definition
// (0: the latest, read from the stream each time, so a create right
// after an update uses the new version).
func (s *Store) Machine(ctx context.Context, id string, v int) (*flow.Machine, error) {
	wf, err := s.workflow(ctx, id)
	if err != nil {
		return nil, err
	}
	if v == 0 {
		if v, err = s.latestVersion(ctx, wf); err != nil {
			return nil, err
		}
	}
	return s.machine(ctx, wf, v)
}

// latestVersion reads a workflow's latest version from its stream.
func (s *Store) latestVersion(ctx context.Context, wf *workflow) (int, error) {
	v, _, err := s.latest(ctx, wf)
	return v, err
}

// latest reads a workflow's latest version and the sequence of its
// latest-version record (0: none, version 1).
func (s *Store) latest(ctx context.Context, wf *workflow) (int, uint64, error) {
	msg, err := s.rd.Last(ctx, wf.stream, subjects.LatestVersion(wf.id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 1, 0, nil
	}
	if err != nil {
		return 0, 0, storeError(err)
	}
	var rec struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(msg.Data, &rec); err != nil || rec.Version < 1 {
		return 0, 0, fail.New(fail.Internal, "unreadable latest-version record of %s", wf.id)
	}
	return rec.Version, msg.Sequence, nil
}

// searchAttributes returns the search attributes of version v of a workflow.
func (s *Store) searchAttributes(ctx context.Context, wf *workflow, v int) ([]flow.SearchAttribute, error) {
	m, err := s.machine(ctx, wf, v)
	if err != nil {
		return nil, err
	}
	return m.Def.SearchAttributes, nil
}

// indexedAttributes returns the search attributes t's index entries follow.
func (s *Store) indexedAttributes(ctx context.Context, wf *workflow, t *flow.Token) ([]flow.SearchAttribute, error) {
	v := t.IndexVersion
	if v == 0 { // written before states recorded it: by its own version
		v = max(t.WorkflowVersion, 1)
	}
	return s.searchAttributes(ctx, wf, v)
}

// machine returns the cached machine of version v, loading it on first use.
func (s *Store) machine(ctx context.Context, wf *workflow, v int) (*flow.Machine, error) {
	wf.mu.Lock()
	m, ok := wf.machines[v]
	wf.mu.Unlock()
	if ok {
		return m, nil
	}
	msg, err := s.rd.Last(ctx, wf.stream, subjects.DefinitionVersion(wf.id, v))
	if errors.Is(err, jetstream.ErrMsgNotFound) && v == 1 {
		return nil, workflowNotFound(wf.id)
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fail.New(fail.NotFound, "Workflow %s has no version %d", wf.id, v)
	}
	if err != nil {
		return nil, storeError(err)
	}
	def := new(flow.Definition)
	if err := json.Unmarshal(msg.Data, def); err != nil {
		return nil, fail.Wrap(fail.Internal, err, "stored definition of "+wf.id+" is unreadable")
	}
	m, err = flow.NewMachineWithin(def, s.opts.Expr.Stored()) // admitted when stored: evaluation limits only
	if err != nil {
		return nil, fail.Wrap(fail.Internal, err, "stored definition of "+wf.id+" is invalid")
	}
	wf.mu.Lock()
	wf.machines[v] = m
	wf.mu.Unlock()
	return m, nil
}

// hasPlace reports whether any version of a workflow up to the latest has
// the place (tokens of an old version may sit in a place the latest lacks).
func (s *Store) hasPlace(ctx context.Context, wf *workflow, place string) (bool, error) {
	latest, err := s.latestVersion(ctx, wf)
	if err != nil {
		return false, err
	}
	for v := latest; v >= 1; v-- {
		m, err := s.machine(ctx, wf, v)
		if err != nil {
			return false, err
		}
		if slices.Contains(m.Def.Places, place) {
			return true, nil
		}
	}
	return false, nil
}

// Definition returns a workflow's latest definition: the cached
// workflow's, or one read of its stream (the workflow is not loaded).
func (s *Store) Definition(ctx context.Context, id string) (*flow.Definition, error) {
	s.mu.Lock()
	_, ok := s.workflows[id]
	s.mu.Unlock()
	if ok {
		m, err := s.Machine(ctx, id, 0)
		if err != nil {
			return nil, err
		}
		return m.Def, nil
	}
	v := 1
	if msg, err := s.rd.LastOf(ctx, subjects.StreamName(id), subjects.LatestVersion(id)); err == nil {
		var rec struct {
			Version int `json:"version"`
		}
		if json.Unmarshal(msg.Data, &rec) == nil && rec.Version > 1 {
			v = rec.Version
		}
	}
	msg, err := s.rd.LastOf(ctx, subjects.StreamName(id), subjects.DefinitionVersion(id, v))
	if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, workflowNotFound(id)
	}
	if err != nil {
		return nil, storeError(err)
	}
	def := new(flow.Definition)
	if err := json.Unmarshal(msg.Data, def); err != nil {
		return nil, fail.Wrap(fail.Internal, err, "stored definition of "+id+" is unreadable")
	}
	return def, nil
}

// workflow returns the cached workflow, loading it (and upgrading its
// stream, once) on first use; concurrent first uses wait for one load.
func (s *Store) workflow(ctx context.Context, id string) (*workflow, error) {
	for {
		s.mu.Lock()
		wf, ok := s.workflows[id]
		wait, busy := s.loading[id]
		if !ok && !busy {
			s.loading[id] = make(chan struct{})
		}
		s.mu.Unlock()
		switch {
		case ok:
			return wf, nil
		case !busy:
			return s.loadOnce(ctx, id)
		}
		select {
		case <-wait: // loaded, or failed: look again
		case <-ctx.Done():
			return nil, fail.New(fail.Unavailable, "workflow %s is being loaded (its stored tokens upgraded): retry", id)
		}
	}
}

// loadOnce loads the workflow this caller registered as loading, starts
// its committer and releases the callers waiting for it.
func (s *Store) loadOnce(ctx context.Context, id string) (*workflow, error) {
	wf, err := s.load(ctx, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.loading[id])
	delete(s.loading, id)
	evicted := s.evicted[id]
	delete(s.evicted, id)
	if err != nil {
		return nil, err
	}
	if s.ctx.Err() != nil { // closed meanwhile: no committer may start now
		return nil, fail.New(fail.Unavailable, "token service shutting down")
	}
	if evicted { // deleted while it loaded: what was read may be of the deleted stream
		return nil, errEvicted
	}
	s.workflows[id] = wf
	ctx, stop := context.WithCancel(s.ctx)
	wf.stop = stop
	s.wg.Add(1)
	go func() { defer s.wg.Done(); wf.committer.run(ctx) }()
	return wf, nil
}

// Evict drops what the store caches of a workflow: its definition, stream
// handle and committer (writes it still holds fail with UNAVAILABLE, to be
// retried). The workflow service's notice of a deleted workflow calls it on
// every instance, so a workflow created again under the same id is loaded
// afresh; a stream found deleted or created again does too (gone).
func (s *Store) Evict(id string) { s.evict(id, nil) }

// Stale reports whether the cached workflow id is of a stream that was
// deleted or deleted and created again (and then drops it). It costs one
// stream info request: the token service asks it before refusing a
// request on the grounds of a definition, so that a notice of a deleted
// workflow it missed cannot make it refuse (or allow) by the old one.
func (s *Store) Stale(ctx context.Context, id string) bool {
	s.mu.Lock()
	wf, ok := s.workflows[id]
	s.mu.Unlock()
	if !ok {
		return false
	}
	st, err := s.js.Stream(ctx, subjects.StreamName(id))
	if errors.Is(err, jetstream.ErrStreamNotFound) || (err == nil && !st.CachedInfo().Created.Equal(wf.created)) {
		s.evict(id, wf)
		return true
	}
	return false
}

// EvictAll drops every cached workflow: after a reconnection to NATS,
// since a notice of a deleted workflow may have been missed meanwhile.
func (s *Store) EvictAll() {
	s.mu.Lock()
	ids := make([]string, 0, len(s.workflows))
	for id := range s.workflows {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.evict(id, nil)
	}
}

// evict drops workflow id if it is still only (or any one when only is nil).
func (s *Store) evict(id string, only *workflow) {
	s.mu.Lock()
	wf, ok := s.workflows[id]
	if ok && (only == nil || wf == only) {
		delete(s.workflows, id)
	} else {
		ok = false
	}
	if _, busy := s.loading[id]; busy && only == nil {
		s.evicted[id] = true
	}
	s.mu.Unlock()
	if ok {
		wf.committer.evicted.Store(true)
		wf.stop()
		s.log.Info().Str("workflow", id).Msg("workflow dropped from the cache: its stream was deleted or created again")
	}
}

// gone turns err, met on workflow wf's stream, into what the caller is
// told. A stream that no longer exists (a deleted workflow: no responders
// to direct gets and batches, "stream not found" to the rest) is dropped
// from the cache and reads as NOT_FOUND; one created again since wf was
// loaded is dropped and the request told to retry. Anything else is a
// storage error.
func (s *Store) gone(ctx context.Context, id string, wf *workflow, err error) error {
	if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, errStreamChanged) {
		return storeError(err)
	}
	st, serr := s.js.Stream(ctx, subjects.StreamName(id))
	switch {
	case errors.Is(serr, jetstream.ErrStreamNotFound):
		s.evict(id, wf)
		return workflowNotFound(id)
	case serr == nil && !st.CachedInfo().Created.Equal(wf.created):
		s.evict(id, wf)
		return errEvicted
	}
	return storeError(err)
}

func (s *Store) load(ctx context.Context, id string) (*workflow, error) {
	st, err := s.js.Stream(ctx, subjects.StreamName(id))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, workflowNotFound(id)
	}
	if err != nil {
		return nil, storeError(err)
	}
	// An upgrade may outlast the request that first uses the workflow.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), upgradeTimeout)
	defer cancel()
	if err := s.upgrade(uctx, id, st); err != nil {
		return nil, err
	}
	log := s.log.With().Str("workflow", id).Logger()
	created := st.CachedInfo().Created
	wf := &workflow{id: id, stream: st, created: created, machines: map[int]*flow.Machine{}}
	attrs := func(ctx context.Context) (int, []flow.SearchAttribute, error) {
		v, _, err := s.latest(ctx, wf)
		if err != nil {
			return 0, nil, err
		}
		attrs, err := s.searchAttributes(ctx, wf, v)
		return v, attrs, err
	}
	wf.committer = newCommitter(streamBatcher{js: s.js, stream: st, rd: s.rd, created: created, attrs: attrs}, log, s.opts.EventTTL,
		s.js.Conn().MaxPayload, newCommitMetrics(s.opts.Metrics))
	if _, err := s.machine(ctx, wf, 1); err != nil { // a stream without a definition is no workflow
		return nil, err
	}
	if info := st.CachedInfo(); info != nil && info.Config.AllowMsgSchedules {
		s.timersEnabled(id)
	}
	return wf, nil
}

func workflowNotFound(id string) error { return tenant.WorkflowNotFound(id) }

func storeError(err error) error { return jserr.Classify(err) }

// AppendEvent stores an event that is no token's change (bulk_progress)
// on its workflow's lifecycle subject, deduplicated by msgID.
func (s *Store) AppendEvent(ctx context.Context, ev wire.Event, msgID string) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return fail.Wrap(fail.Internal, err, "encode event")
	}
	m := nats.NewMsg(subjects.LifecycleEvents(ev.WorkflowID))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	if s.opts.EventTTL >= time.Second {
		m.Header.Set(jetstream.MsgTTLHeader, s.opts.EventTTL.String())
	}
	if _, err := s.js.PublishMsg(ctx, m); err != nil {
		return storeError(err)
	}
	return nil
}
