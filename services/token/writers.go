package token

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
)

// Membership timing: instances look for each other this often, and wait
// this long for answers.
const (
	discoverEvery = 2 * time.Second
	discoverWait  = 100 * time.Millisecond
)

// writers routes each workflow's writes to one token-service instance.
//
// A committer pins its stream's last sequence, so two instances writing to
// one workflow keep invalidating each other's batches (measured: 965
// transitions/s with two instances against 3,379/s with one), and each
// instance's guess of a token's state (store.Recent) is only as good as
// the share of its writes it saw. Instead, every instance finds the others
// with micro's PING (each advertises its writer prefix in its metadata)
// and picks a workflow's writer by rendezvous hashing: instances that see
// the same members agree, and a member joining or leaving moves only its
// own share of workflows. A create, fire or update that lands on another
// instance is passed on as it came, to the writer's own subjects, and
// served there. Routing is an optimisation: a write keeps its
// compare-and-swap wherever it is committed, so instances that briefly
// disagree only contend. A write the writer refuses unworked (no
// responders, stopping, full) is served here, and a writer that has gone
// or is stopping is dropped until it answers a PING again.
type writers struct {
	nc        *nats.Conn
	self      string // this instance's writer id
	forwarded metrics.Counter

	mu      sync.RWMutex
	members []string // writer prefixes of the live instances, self included

	stop chan struct{}
	done chan struct{}
}

func newWriters(nc *nats.Conn, reg *metrics.Registry) *writers {
	self := uuid.NewString()
	return &writers{nc: nc, self: self, members: []string{self},
		forwarded: reg.Counter("cb_token_writes_forwarded_total", "Token writes passed on to the instance that writes their workflow."),
		stop:      make(chan struct{}), done: make(chan struct{})}
}

// Write operations, the last token of the writer subjects.
const (
	opCreate  = "create"
	opFire    = "fire"
	opUpdate  = "update"
	opMigrate = "migrate"
	opBulk    = "bulk"
	opArchive = "archive"
	opDelete  = "delete"
	opReindex = "reindex"
)

// route serves req with here, unless another instance writes workflow:
// then it passes req on to that instance and returns its reply. A write the
// writer refuses unworked is served here after all; so is every write when
// w is nil (routing off).
func route[Req any](ctx context.Context, w *writers, workflow, op string, req *Req, here handler[Req]) (*json.RawMessage, error) {
	if w == nil {
		return here(ctx, req)
	}
	to := w.writerOf(workflow)
	if to == w.self {
		return here(ctx, req)
	}
	raw, err := rpc.CallRaw(ctx, w.nc, subjects.TokenWriter(to, op).In(string(tenant.FromContext(ctx))), req)
	if rpc.NotServed(err) { // gone, stopping or full: never worked on
		if !errors.Is(err, rpc.ErrOverloaded) {
			w.drop(to)
		}
		return here(ctx, req)
	}
	w.forwarded.Inc()
	return &raw, err
}

// handler serves a write here.
type handler[Req any] func(context.Context, *Req) (*json.RawMessage, error)

// writerOf returns the writer id of the member that writes workflow:
// the one with the highest score (rendezvous hashing).
func (w *writers) writerOf(workflow string) string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	best, bestScore := w.self, uint64(0)
	for _, m := range w.members {
		if s := score(m, workflow); s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	return best
}

// score ranks member for workflow, the same in every process: FNV-1a of
// both, then the splitmix64 finaliser (FNV alone barely changes its high
// bits with the last bytes hashed, so one member would win every
// workflow).
func score(member, workflow string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(member))
	h.Write([]byte{0})
	h.Write([]byte(workflow))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (w *writers) drop(member string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.members = slices.DeleteFunc(w.members, func(m string) bool { return m == member })
}

// run refreshes the members until close.
func (w *writers) run() {
	defer close(w.done)
	t := time.NewTicker(discoverEvery)
	defer t.Stop()
	for {
		w.discover()
		select {
		case <-t.C:
		case <-w.stop:
			return
		}
	}
}

func (w *writers) close() {
	close(w.stop)
	<-w.done
}

// discover pings the token service and keeps the writer ids of the
// instances that answer within discoverWait (always including itself).
func (w *writers) discover() {
	inbox := w.nc.NewInbox()
	sub, err := w.nc.SubscribeSync(inbox)
	if err != nil {
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := w.nc.PublishRequest(subjects.ServicePing(subjects.TokenService), inbox, nil); err != nil {
		return
	}
	members := []string{w.self}
	for deadline := time.Now().Add(discoverWait); ; {
		msg, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		var p micro.Ping
		if json.Unmarshal(msg.Data, &p) == nil && p.Metadata[subjects.MetaWriter] != "" && p.Metadata[subjects.MetaWriter] != w.self {
			members = append(members, p.Metadata[subjects.MetaWriter])
		}
	}
	w.mu.Lock()
	w.members = members
	w.mu.Unlock()
}
