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
}

// workflow is what the store caches of one workflow: its definition (which
// never changes once created), its stream handle and its committer.
type workflow struct {
	machine   *flow.Machine
	stream    jetstream.Stream
	committer *committer
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

// Workflow returns the cached workflow, loading its definition on first use.
func (s *Store) Workflow(ctx context.Context, id string) (*flow.Machine, error) {
	wf, err := s.workflow(ctx, id)
	if err != nil {
		return nil, err
	}
	return wf.machine, nil
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
	msg, err := s.rd.Last(ctx, st, subjects.Definition(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, workflowNotFound(id)
	}
	if err != nil {
		return nil, storeError(err)
	}
	def := new(flow.Definition)
	if err := json.Unmarshal(msg.Data, def); err != nil {
		return nil, fail.Wrap(fail.Internal, err, "stored definition of "+id+" is unreadable")
	}
	m, err := flow.NewMachineWithin(def, s.opts.Expr.Stored()) // admitted at create: evaluation limits only
	if err != nil {
		return nil, fail.Wrap(fail.Internal, err, "stored definition of "+id+" is invalid")
	}
	log := s.log.With().Str("workflow", id).Logger()
	return &workflow{machine: m, stream: st, committer: newCommitter(streamBatcher{js: s.js, stream: st, rd: s.rd}, log, s.opts.EventTTL,
		s.js.Conn().MaxPayload, newCommitMetrics(s.opts.Metrics))}, nil
}

func workflowNotFound(id string) error { return tenant.WorkflowNotFound(id) }

func storeError(err error) error { return jserr.Classify(err) }
