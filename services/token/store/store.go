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

	mu        sync.Mutex // guards workflows and loading
	workflows map[string]*workflow
	loading   map[string]chan struct{} // workflows being loaded (and upgraded): closed when done
	wg        sync.WaitGroup           // committer goroutines
	timers    timerState               // workflows with timers (timers.go)
}

// workflow is what the store caches of one workflow: its stream handle,
// its committer and the machines of its definition's versions (each
// version never changes once stored), loaded on first use.
type workflow struct {
	id        string
	stream    jetstream.Stream
	committer *committer

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
	runCtx, stop := context.WithCancel(context.Background())
	return &Store{js: js, index: idx, log: log, opts: o, ctx: runCtx, stop: stop,
		ids:       newCache[string](idCacheSize, nil),
		recent:    newCache(recentBudget, func(r recentState) int { return r.size }),
		workflows: make(map[string]*workflow),
		loading:   make(map[string]chan struct{}),
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
	msg, err := s.rd.Last(ctx, wf.stream, subjects.LatestVersion(wf.id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, storeError(err)
	}
	var rec struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(msg.Data, &rec); err != nil || rec.Version < 1 {
		return 0, fail.New(fail.Internal, "unreadable latest-version record of %s", wf.id)
	}
	return rec.Version, nil
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
	if err != nil {
		return nil, err
	}
	if s.ctx.Err() != nil { // closed meanwhile: no committer may start now
		return nil, fail.New(fail.Unavailable, "token service shutting down")
	}
	s.workflows[id] = wf
	s.wg.Add(1)
	go func() { defer s.wg.Done(); wf.committer.run(s.ctx) }()
	return wf, nil
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
	wf := &workflow{id: id, stream: st, machines: map[int]*flow.Machine{}, committer: newCommitter(streamBatcher{js: s.js, stream: st, rd: s.rd},
		log, s.opts.EventTTL, s.js.Conn().MaxPayload, newCommitMetrics(s.opts.Metrics))}
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
