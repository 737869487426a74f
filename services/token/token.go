// Package token is the token service: it creates workflow instances
// (tokens), reads them, lists them by workflow and by place, explains which
// transitions can fire, and fires them, all over NATS micro endpoints.
package token

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/cbnats/circuitbreaker/services/token/store"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// maxAttempts bounds how often a change re-reads and re-validates a token
// after losing a race to another instance; backoff spreads the retries.
const (
	maxAttempts = 100
	maxBackoff  = 5 * time.Millisecond
)

// idempotencyNS derives token ids from idempotency keys, so a retried
// create lands on the token the first attempt made.
var idempotencyNS = uuid.MustParse("6f1e8d5a-3c1b-4f7e-9a42-0c2b7d9e5f10")

// Service implements the token endpoints on a Store.
type Service struct {
	store   *store.Store
	locks   *tokenLocks
	writers *writers // nil: every write is served here
	tenants *tenants // quotas and counts of live tokens
	indexer *indexer // search index builds (set by Start)
	now     func() time.Time
}

// New returns a Service on st that routes writes with w (nil: none) and
// keeps tenants within their quotas with t.
func New(st *store.Store, w *writers, t *tenants) *Service {
	return &Service{store: st, locks: newTokenLocks(), writers: w, tenants: t, now: func() time.Time { return time.Now().UTC() }}
}

// Writes are served by the instance that writes their workflow (writers):
// create, fire and update pass a request on when that is another
// instance; createHere, fireHere and updateHere serve it.

func (s *Service) create(ctx context.Context, r *wire.CreateTokenRequest) (*json.RawMessage, error) {
	return route(ctx, s.writers, r.WorkflowID, opCreate, r, s.createHere)
}

func (s *Service) fire(ctx context.Context, r *wire.FireRequest) (*json.RawMessage, error) {
	return routeByToken(ctx, s, r.TokenID, opFire, r, s.fireHere)
}

func (s *Service) update(ctx context.Context, r *wire.UpdateTokenRequest) (*json.RawMessage, error) {
	return routeByToken(ctx, s, r.TokenID, opUpdate, r, s.updateHere)
}

func (s *Service) archive(ctx context.Context, r *wire.ArchiveTokenRequest) (*json.RawMessage, error) {
	return routeByToken(ctx, s, r.TokenID, opArchive, r, s.archiveHere)
}

func (s *Service) del(ctx context.Context, r *wire.DeleteTokenRequest) (*json.RawMessage, error) {
	raw, err := routeByToken(ctx, s, r.TokenID, opDelete, r, s.deleteHere)
	if errors.Is(err, fail.ErrNotFound) { // no index entry to route by: no token
		return deleteReply(false), nil
	}
	return raw, err
}

// routeByToken routes a write on a token by the token's workflow.
func routeByToken[Req any](ctx context.Context, s *Service, tokenID, op string, r *Req, here handler[Req]) (*json.RawMessage, error) {
	if s.writers == nil {
		return here(ctx, r)
	}
	wf, err := s.store.WorkflowOf(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	return route(ctx, s.writers, wf, op, r, here)
}

// Writes reply with the token's JSON (reply), which a routed write passes on as it is.

// createHere creates a token; once more when its workflow was found
// deleted and created again as it committed (the new one is loaded).
func (s *Service) createHere(ctx context.Context, r *wire.CreateTokenRequest) (*json.RawMessage, error) {
	raw, err := s.createOnce(ctx, r)
	if errors.Is(err, store.ErrEvicted) {
		return s.createOnce(ctx, r)
	}
	return raw, err
}

func (s *Service) createOnce(ctx context.Context, r *wire.CreateTokenRequest) (*json.RawMessage, error) {
	m, err := s.store.Machine(ctx, r.WorkflowID, r.WorkflowVersion)
	if err != nil {
		return nil, err
	}
	id, hash := uuid.NewString(), ""
	if r.IdempotencyKey != "" {
		id = uuid.NewSHA1(idempotencyNS, []byte(r.WorkflowID+"\x00"+r.IdempotencyKey)).String()
		keyless := *r
		keyless.IdempotencyKey = ""
		hash = fingerprint(keyless)
		if t, err := s.store.Find(ctx, r.WorkflowID, id); err == nil {
			return sameRequest(t, t.Idempotent(r.IdempotencyKey), hash)
		}
	}
	if err := s.tenants.admit(ctx, r.WorkflowID); err != nil {
		return nil, err
	}
	t, entry, err := m.Create(flow.CreateRequest{TokenID: id, InitialPlace: r.InitialPlace, Data: r.Data,
		Metadata: r.Metadata, TriggeredBy: r.TriggeredBy, TriggeredByClaim: r.TriggeredByClaim, IdempotencyKey: r.IdempotencyKey,
		RequestHash: hash, Now: s.now()})
	if s.refusedByStale(ctx, r.WorkflowID, err) {
		return nil, store.ErrEvicted // createHere runs it again on the current definition
	}
	if err != nil {
		return nil, err
	}
	t, err = s.store.Create(ctx, t, entry)
	if err == nil {
		s.tenants.created(ctx, r.WorkflowID)
	}
	if r.IdempotencyKey != "" && errors.Is(err, fail.ErrConflict) {
		if t, err = s.store.Find(ctx, r.WorkflowID, id); err != nil {
			return nil, err
		}
		return sameRequest(t, t.Idempotent(r.IdempotencyKey), hash)
	}
	return reply(t, err)
}

// reply is a written token as its writer is told: the token's JSON (passed
// on as it is when the write was routed to another instance).
func reply(t *flow.Token, err error) (*json.RawMessage, error) {
	if err != nil {
		return nil, err
	}
	return rawReply(t, "token "+t.ID)
}

func (s *Service) get(ctx context.Context, r *wire.GetTokenRequest) (*flow.Token, error) {
	if err := s.inScope(ctx, r.ID); err != nil {
		return nil, err
	}
	return s.store.Get(ctx, r.ID)
}

// inScope ends a request on a token its tenant scope may not see as if the
// token did not exist (tenant.TokenNotFound, the store's own answer).
// Requests naming a workflow are resolved before their handler runs
// (rpc); those naming only a token are checked here.
func (s *Service) inScope(ctx context.Context, tokenID string) error {
	scope := tenant.FromContext(ctx)
	if scope == tenant.All {
		return nil
	}
	wf, err := s.store.WorkflowOf(ctx, tokenID)
	if err != nil {
		return err
	}
	if !scope.Sees(wf) {
		return tenant.TokenNotFound(tokenID)
	}
	return nil
}

func (s *Service) find(ctx context.Context, r *wire.FindTokenRequest) (*flow.Token, error) {
	return s.store.Find(ctx, r.WorkflowID, r.TokenID)
}

func (s *Service) list(ctx context.Context, r *wire.ListTokensRequest) (*wire.TokenPage, error) {
	if r.Archived {
		return s.store.ListArchived(ctx, r.WorkflowID, r.Page)
	}
	return s.store.List(ctx, r.WorkflowID, r.Page)
}

func (s *Service) inPlace(ctx context.Context, r *wire.TokensInPlaceRequest) (*wire.TokenPage, error) {
	return s.store.InPlace(ctx, r.WorkflowID, r.Place, r.Page)
}

// history pages through a token's history: a page holds at most
// wire.MaxPageSize entries (every one that fits when First is 0).
func (s *Service) history(ctx context.Context, r *wire.TokenHistoryRequest) (*wire.TokenHistoryPage, error) {
	after, err := wire.ParseSequence("after", r.After)
	if err != nil {
		return nil, err
	}
	if err := s.inScope(ctx, r.TokenID); err != nil {
		return nil, err
	}
	limit := wire.MaxPageSize
	if r.First > 0 {
		limit = min(r.First, limit)
	}
	return s.store.History(ctx, r.TokenID, after, limit, r.Fires)
}

// current reads a token by id with the machine of its workflow.
func (s *Service) current(ctx context.Context, tokenID string) (*flow.Token, *flow.Machine, error) {
	t, err := s.store.Get(ctx, tokenID)
	if err != nil {
		return nil, nil, err
	}
	m, err := s.store.Machine(ctx, t.WorkflowID, t.WorkflowVersion)
	if err != nil {
		return nil, nil, err
	}
	return t, m, nil
}

func (s *Service) available(ctx context.Context, r *wire.AvailableRequest) (*wire.AvailableReply, error) {
	if err := s.inScope(ctx, r.TokenID); err != nil {
		return nil, err
	}
	t, m, err := s.current(ctx, r.TokenID)
	if err != nil {
		return nil, err
	}
	evals := m.EvaluateContext(ctx, t) // each guard runs once for both answers
	return &wire.AvailableReply{Token: t, Transitions: m.Fireable(evals), Evaluations: evals}, nil
}

// mutation computes a token's next state from its current one, with the
// history entry it adds (nil for none) and its event.
type mutation func(m *flow.Machine, cur *flow.Token) (next *flow.Token, entry *flow.Entry, ev wire.Event, err error)

// apply reads the token, computes the change and commits it with a
// compare-and-swap on the revision read. When a concurrent change wins, it
// reads again and re-validates, unless the caller pinned a revision.
func (s *Service) apply(ctx context.Context, tokenID string, expected uint64, idemKey, idemHash string, f mutation) (*json.RawMessage, error) {
	defer s.locks.lock(tokenID)()
	if t, done, err := s.guess(ctx, tokenID, expected, idemKey, f); done {
		return reply(t, err)
	}
	for attempt := 1; ; attempt++ {
		cur, err := s.store.Get(ctx, tokenID)
		if err != nil {
			return nil, err
		}
		if rec := cur.Idempotent(idemKey); rec != nil {
			return sameRequest(cur, rec, idemHash)
		}
		if expected != 0 && cur.Revision != expected {
			return nil, fail.New(fail.Conflict, "token %s is at revision %d, not %d", tokenID, cur.Revision, expected)
		}
		next, entry, ev, err := s.mutate(ctx, cur, f)
		if s.refusedByStale(ctx, cur.WorkflowID, err) && attempt < 3 {
			continue // read again, on the current definition
		}
		if err != nil {
			return nil, err
		}
		t, err := s.store.Change(ctx, cur, next, entry, ev)
		if errors.Is(err, fail.ErrConflict) && expected == 0 && attempt < maxAttempts {
			if err := backoff(ctx, attempt); err != nil {
				return nil, err
			}
			continue
		}
		if errors.Is(err, store.ErrEvicted) && attempt < 3 { // read again, on the workflow as it is now
			continue
		}
		return reply(t, err)
	}
}

// refusedByStale reports that err refuses a change by a workflow's
// definition (no such transition or place, a guard, bad data) that was
// cached of a stream since deleted or created again; the definition is
// then dropped, to be loaded afresh. The workflow service's notice of a
// deleted workflow drops it first; this covers an instance that missed
// the notice, at the cost of one stream info per refusal.
func (s *Service) refusedByStale(ctx context.Context, workflowID string, err error) bool {
	if !errors.Is(err, fail.ErrInvalidTransition) && !errors.Is(err, fail.ErrGuardFailed) && !errors.Is(err, fail.ErrBadInput) {
		return false
	}
	return s.store.Stale(ctx, workflowID)
}

// guess tries the change on the state this instance last committed, which
// saves the read (a read waits while a batch commits on the stream). The
// compare-and-swap verifies the guess. It reports done when the change
// committed or its outcome is not a refusal; a refusal may be the guess's
// fault (another instance changed the token), so apply settles it on a
// real read, as it does an idempotency key or a pinned revision.
func (s *Service) guess(ctx context.Context, tokenID string, expected uint64, idemKey string, f mutation) (*flow.Token, bool, error) {
	cur, ok := s.store.Recent(tokenID)
	if !ok || cur.Idempotent(idemKey) != nil || (expected != 0 && cur.Revision != expected) {
		return nil, false, nil
	}
	next, entry, ev, err := s.mutate(ctx, cur, f)
	if err != nil {
		return nil, false, nil
	}
	t, err := s.store.Change(ctx, cur, next, entry, ev)
	if errors.Is(err, fail.ErrConflict) || errors.Is(err, store.ErrEvicted) {
		return nil, false, nil
	}
	return t, true, err
}

// mutate applies f to cur with the machine of its workflow.
func (s *Service) mutate(ctx context.Context, cur *flow.Token, f mutation) (*flow.Token, *flow.Entry, wire.Event, error) {
	m, err := s.store.Machine(ctx, cur.WorkflowID, cur.WorkflowVersion)
	if err != nil {
		return nil, nil, wire.Event{}, err
	}
	return f(m, cur)
}

func (s *Service) fireHere(ctx context.Context, r *wire.FireRequest) (*json.RawMessage, error) {
	if err := s.inScope(ctx, r.TokenID); err != nil {
		return nil, err
	}
	hash := ""
	if r.IdempotencyKey != "" {
		keyless := *r
		keyless.IdempotencyKey, keyless.ExpectedRevision = "", 0
		hash = fingerprint(keyless)
	}
	return s.apply(ctx, r.TokenID, r.ExpectedRevision, r.IdempotencyKey, hash,
		func(m *flow.Machine, cur *flow.Token) (*flow.Token, *flow.Entry, wire.Event, error) {
			now := s.now()
			next, entry, err := m.FireContext(ctx, cur, flow.FireRequest{TransitionID: r.TransitionID, NewPlace: r.NewPlace,
				Data: r.Data, ReplaceData: r.ReplaceData, TriggeredBy: r.TriggeredBy, TriggeredByClaim: r.TriggeredByClaim,
				IdempotencyKey: r.IdempotencyKey, RequestHash: hash, Now: now})
			ev := wire.Event{EventType: wire.EventTokenTransitioned, TokenID: cur.ID, WorkflowID: cur.WorkflowID,
				FromPlace: cur.Place, TransitionID: r.TransitionID, Timestamp: now, TriggeredBy: optional(r.TriggeredBy),
				TriggeredByClaim: optional(r.TriggeredByClaim)}
			if next != nil {
				ev.ToPlace = next.Place
			}
			return next, entry, ev, err
		})
}

func (s *Service) updateHere(ctx context.Context, r *wire.UpdateTokenRequest) (*json.RawMessage, error) {
	if err := s.inScope(ctx, r.TokenID); err != nil {
		return nil, err
	}
	return s.apply(ctx, r.TokenID, r.ExpectedRevision, "", "",
		func(m *flow.Machine, cur *flow.Token) (*flow.Token, *flow.Entry, wire.Event, error) {
			now := s.now()
			next, err := m.Update(cur, flow.UpdateRequest{Data: r.Data, ReplaceData: r.ReplaceData,
				Metadata: r.Metadata, Now: now})
			ev := wire.Event{EventType: wire.EventTokenUpdated, TokenID: cur.ID, WorkflowID: cur.WorkflowID,
				Place: cur.Place, Timestamp: now, TriggeredBy: optional(r.TriggeredBy), TriggeredByClaim: optional(r.TriggeredByClaim)}
			return next, nil, ev, err
		})
}

// errArchived ends an archive whose token turned out archived already:
// archiveHere answers with the token as it is.
var errArchived = errors.New("token already archived")

// archiveHere archives a token: a change like any other (the
// compare-and-swap on the revision read, one atomic batch), which moves its
// state out of its place to workflows.<wf>.archive.<id> and adds an
// "archive" record to its history, with a token_archived event. A token
// archived already is returned as it is. The tenant's count of live tokens
// drops once, when the archive commits.
func (s *Service) archiveHere(ctx context.Context, r *wire.ArchiveTokenRequest) (*json.RawMessage, error) {
	if err := s.inScope(ctx, r.TokenID); err != nil {
		return nil, err
	}
	raw, err := s.apply(ctx, r.TokenID, r.ExpectedRevision, "", "",
		func(m *flow.Machine, cur *flow.Token) (*flow.Token, *flow.Entry, wire.Event, error) {
			if cur.ArchivedAt != nil {
				return nil, nil, wire.Event{}, errArchived
			}
			now := s.now()
			next, entry, err := m.Archive(cur, flow.ArchiveRequest{TriggeredBy: r.TriggeredBy, TriggeredByClaim: r.TriggeredByClaim, Now: now})
			ev := wire.Event{EventType: wire.EventTokenArchived, TokenID: cur.ID, WorkflowID: cur.WorkflowID,
				Place: cur.Place, Timestamp: now, TriggeredBy: optional(r.TriggeredBy), TriggeredByClaim: optional(r.TriggeredByClaim)}
			return next, entry, ev, err
		})
	if errors.Is(err, errArchived) {
		return reply(s.store.Get(ctx, r.TokenID))
	}
	if err == nil {
		wf, _ := s.store.WorkflowOf(ctx, r.TokenID)
		s.tenants.removed(ctx, wf)
	}
	return raw, err
}

// deleteHere deletes a token in the two steps of store.Remove and
// store.Purge. Run again, it finishes a delete that stopped half-way:
// a token whose index entry is left but whose state is gone skips to
// the purge. It answers whether there was a token to delete; another
// tenant's token is no token.
func (s *Service) deleteHere(ctx context.Context, r *wire.DeleteTokenRequest) (*json.RawMessage, error) {
	deleted, err := s.deleteToken(ctx, r)
	if err != nil {
		return nil, err
	}
	return deleteReply(deleted), nil
}

func deleteReply(deleted bool) *json.RawMessage {
	b, _ := json.Marshal(wire.DeleteTokenReply{Deleted: deleted})
	raw := json.RawMessage(b)
	return &raw
}

func (s *Service) deleteToken(ctx context.Context, r *wire.DeleteTokenRequest) (bool, error) {
	if err := s.inScope(ctx, r.TokenID); errors.Is(err, fail.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	defer s.locks.lock(r.TokenID)()
	wf, ok, err := s.store.Indexed(ctx, r.TokenID)
	if err != nil || !ok {
		return false, err
	}
	for attempt := 1; ; attempt++ {
		cur, err := s.store.Find(ctx, wf, r.TokenID)
		if errors.Is(err, fail.ErrNotFound) {
			break // removed already (a delete that stopped half-way), or its workflow is gone
		}
		if err != nil {
			return false, err
		}
		ev := wire.Event{EventType: wire.EventTokenDeleted, TokenID: cur.ID, WorkflowID: cur.WorkflowID, Place: cur.Place,
			Timestamp: s.now(), TriggeredBy: optional(r.TriggeredBy), TriggeredByClaim: optional(r.TriggeredByClaim)}
		err = s.store.Remove(ctx, cur, ev)
		if errors.Is(err, fail.ErrConflict) && attempt < maxAttempts {
			if err := backoff(ctx, attempt); err != nil {
				return false, err
			}
			continue
		}
		if err != nil {
			return false, err
		}
		if cur.ArchivedAt == nil {
			s.tenants.removed(ctx, wf)
		}
		break
	}
	return true, s.store.Purge(ctx, wf, r.TokenID)
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// backoff sleeps a random time that grows with attempt, or until ctx ends.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(min(time.Duration(attempt)*250*time.Microsecond, maxBackoff)) + 1))
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return fail.New(fail.Conflict, "token kept changing concurrently; gave up at the deadline")
	}
}

// fingerprint identifies a request (without its idempotency key), so a key
// reused for a different request is refused instead of answered with the
// first result.
func fingerprint(req any) string {
	b, _ := json.Marshal(req)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// sameRequest returns t when the keyed change was made by the same request.
func sameRequest(t *flow.Token, k *flow.KeyUse, hash string) (*json.RawMessage, error) {
	if k != nil && k.Hash != "" && k.Hash != hash {
		return nil, fail.New(fail.Conflict, "idempotency key %q was used for a different request", k.Key)
	}
	return reply(t, nil)
}
