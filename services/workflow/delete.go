package workflow

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Deleting a workflow, in an order that a run stopped anywhere can be
// finished by running it again:
//
//  1. census: read the workflow's tokens (their states in every place, and
//     their histories) and count the live ones; refuse (CONFLICT) while
//     any is live, unless forced.
//  2. purge every token's index entry (a filtered purge: no delete marker
//     is left), then again for any token created meanwhile, until none is
//     new. While the stream exists, its tokens can be found again.
//  3. delete the stream: definition, states, histories, events and durable
//     subscriptions go at once, and JetStream frees their storage.
//  4. purge the catalogue entry, last: a workflow still listed without a
//     stream is a delete to finish, and running it again does.
//  5. publish the WorkflowDeleted notice, on which every token-service
//     instance drops what it caches of the workflow, and lower the tenant's
//     count of live tokens by those deleted.
//
// Afterwards the id is free: creating it again makes a new, empty stream.
// No event is written (the workflow's events go with its stream).
func (s *Service) deleteWorkflow(ctx context.Context, r *wire.DeleteWorkflowRequest) (*wire.DeleteWorkflowReply, error) {
	rep, err := s.store.remove(ctx, r.ID, r.Force)
	if err != nil || !rep.Deleted {
		return rep, err
	}
	if err := s.store.js.Conn().Publish(subjects.WorkflowDeleted(r.ID), nil); err != nil {
		s.log.Warn().Err(err).Str("workflow", r.ID).Msg("publish the notice of a deleted workflow")
	}
	_ = s.store.js.Conn().FlushTimeout(time.Second)
	if name := tenant.OfWorkflow(r.ID); name != "" && rep.LiveTokens > 0 && s.usage != nil {
		if err := s.usage.AddLiveTokens(ctx, name, -int64(rep.LiveTokens)); err != nil {
			s.log.Warn().Err(err).Str("tenant", name).Str("workflow", r.ID).Msg("uncount the live tokens of a deleted workflow")
		}
	}
	return rep, nil
}

// remove runs steps 1 to 4 of a delete.
func (s *store) remove(ctx context.Context, id string, force bool) (*wire.DeleteWorkflowReply, error) {
	rep := &wire.DeleteWorkflowReply{}
	_, err := s.js.Stream(ctx, subjects.StreamName(id))
	if errors.Is(err, jetstream.ErrStreamNotFound) { // nothing, or a delete stopped after step 3
		rep.Deleted, err = s.purgeCatalog(ctx, id)
		return rep, err
	}
	if err != nil {
		return nil, storeError(err)
	}
	c := &census{tokens: map[string]bool{}, live: map[string]bool{}}
	if err := s.count(ctx, id, c, 0); err != nil {
		return nil, err
	}
	rep.Tokens, rep.LiveTokens = len(c.tokens), c.liveTokens()
	if rep.LiveTokens > 0 && !force {
		tokens := "tokens: archive or delete them"
		if rep.LiveTokens == 1 {
			tokens = "token: archive or delete it"
		}
		return nil, fail.New(fail.Conflict, "workflow %s has %d live %s first, or delete the workflow with force", id, rep.LiveTokens, tokens)
	}
	purge, err := s.purger(ctx, subjects.TokenIndexBucket)
	if err != nil {
		return nil, err
	}
	purged := map[string]bool{}
	for purge != nil {
		fresh := 0
		for tok := range c.tokens {
			if purged[tok] {
				continue
			}
			if err := purge(tok); err != nil {
				return nil, err
			}
			purged[tok] = true
			fresh++
		}
		if fresh == 0 {
			break
		}
		if err := s.count(ctx, id, c, c.last); err != nil { // tokens created meanwhile
			return nil, err
		}
		rep.Tokens, rep.LiveTokens = len(c.tokens), c.liveTokens()
	}
	if err := s.js.DeleteStream(ctx, subjects.StreamName(id)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, storeError(err)
	}
	if _, err := s.purgeCatalog(ctx, id); err != nil {
		return nil, err
	}
	rep.Deleted = true
	return rep, nil
}

// census is what a delete reads of a workflow's tokens.
type census struct {
	tokens map[string]bool // every token with a state, an archived state or a history
	live   map[string]bool // token → whether its newest state in a place is live
	last   uint64          // the last stream sequence read
}

func (c *census) liveTokens() int {
	n := 0
	for _, l := range c.live {
		if l {
			n++
		}
	}
	return n
}

// count reads the token messages of workflow id after stream sequence
// after into c: each state in a place (a newer message on a token's
// subject supersedes an older one), archived state and history entry.
// Direct batch gets on one server; through the stream leader when
// replicated (a follower may lag behind the newest tokens).
func (s *store) count(ctx context.Context, id string, c *census, after uint64) error {
	filters := []string{subjects.AllTokens(id), subjects.AllArchived(id), subjects.AllHistories(id)}
	for i, filter := range filters {
		err := s.each(ctx, id, filter, after, func(msg *jetstream.RawStreamMsg) {
			c.last = max(c.last, msg.Sequence)
			tok := subjects.LastToken(msg.Subject)
			c.tokens[tok] = true
			if i == 0 { // in stream order: a token's newest state in any place decides
				c.live[tok] = msg.Header.Get(subjects.HeaderTokenOp) != subjects.TokenOpDelete
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// each calls f with every message of workflow id's stream on filter after
// stream sequence after, in order.
func (s *store) each(ctx context.Context, id, filter string, after uint64, f func(*jetstream.RawStreamMsg)) error {
	if s.rd.Leader() {
		for seq := after + 1; ; {
			msg, err := s.rd.Next(ctx, subjects.StreamName(id), seq, filter)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil
			}
			if err != nil {
				return storeError(err)
			}
			f(msg)
			seq = msg.Sequence + 1
		}
	}
	for seq := after; ; {
		it, err := jetstreamext.GetBatch(ctx, s.js, subjects.StreamName(id), 1000,
			jetstreamext.GetBatchSeq(seq+1), jetstreamext.GetBatchSubject(filter))
		if err != nil {
			return storeError(err)
		}
		n := 0
		for msg, err := range it {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				return nil
			}
			if err != nil {
				return storeError(err)
			}
			n, seq = n+1, msg.Sequence
			f(msg)
		}
		if n < 1000 {
			return nil
		}
	}
}

// purger returns a function that removes a key from a bucket without a
// trace (a filtered purge of its subject leaves no delete marker); nil
// when the bucket does not exist (it holds nothing).
func (s *store) purger(ctx context.Context, bucket string) (func(key string) error, error) {
	st, err := s.js.Stream(ctx, subjects.KVStream(bucket))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeError(err)
	}
	return func(key string) error {
		return storeError(st.Purge(ctx, jetstream.WithPurgeSubject(subjects.KVKey(bucket, key))))
	}, nil
}

// purgeCatalog removes a workflow's catalogue entry and reports whether
// there was one.
func (s *store) purgeCatalog(ctx context.Context, id string) (bool, error) {
	if _, err := s.rd.KV(ctx, s.catalog, catalogKey(id)); errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	} else if err != nil {
		return false, storeError(err)
	}
	purge, err := s.purger(ctx, subjects.CatalogBucket)
	if err != nil || purge == nil {
		return false, err
	}
	return true, purge(catalogKey(id))
}
