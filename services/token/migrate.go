package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Migration: each token moves alone, atomically (one change through the
// committer, with the usual compare-and-swap, a "migrate" transition
// record and a token_migrated event); migrationWorkers tokens are in
// flight at once, so the committer packs them into groups. A token
// already on the target version is left alone, so a migration that
// stopped — at its deadline, or in a crash — goes on when sent again.

// migrationWorkers bounds the tokens of one migration in flight at once.
const migrationWorkers = 32

// errOnTarget ends the change of a token that is on the target version
// already (migrated before).
var errOnTarget = errors.New("already on the target version")

func (s *Service) migrate(ctx context.Context, r *wire.MigrateRequest) (*json.RawMessage, error) {
	return route(ctx, s.writers, r.WorkflowID, opMigrate, r, s.migrateHere)
}

func (s *Service) migrateHere(ctx context.Context, r *wire.MigrateRequest) (*json.RawMessage, error) {
	from, err := s.store.Machine(ctx, r.WorkflowID, r.FromVersion)
	if err != nil {
		return nil, err
	}
	to, err := s.store.Machine(ctx, r.WorkflowID, r.ToVersion)
	if err != nil {
		return nil, err
	}
	mp, err := flow.NewMapping(from, to, r.PlaceMapping)
	if err != nil {
		return nil, err
	}
	m := &migration{s: s, r: r, mp: mp, res: &wire.MigrationResult{DryRun: r.DryRun, Outcomes: []wire.MigrationOutcome{}}}
	complete, err := fanOut(ctx, migrationWorkers, func(yield func(*flow.Token) bool) error { return m.candidates(ctx, yield) },
		func(t *flow.Token) { m.one(ctx, t) })
	if err != nil {
		return nil, err
	}
	m.res.Complete = complete
	return rawReply(m.res, "migration result")
}

// migration is one migration request in progress.
type migration struct {
	s   *Service
	r   *wire.MigrateRequest
	mp  *flow.Mapping
	mu  sync.Mutex // guards res
	res *wire.MigrationResult
}

// candidates calls yield with each token to migrate until it returns false.
func (m *migration) candidates(ctx context.Context, yield func(*flow.Token) bool) error {
	if len(m.r.TokenIDs) > 0 {
		for _, id := range m.r.TokenIDs {
			t, err := m.s.store.Get(ctx, id)
			if err == nil && t.WorkflowID != m.r.WorkflowID {
				err = tenant.TokenNotFound(id) // another workflow's
			}
			if err != nil {
				m.outcome(wire.MigrationOutcome{TokenID: id, Error: err.Error()}, false)
				continue
			}
			if !yield(t) {
				return nil
			}
		}
		return nil
	}
	p := wire.Page{First: wire.MaxPageSize}
	for {
		page, err := m.s.store.List(ctx, m.r.WorkflowID, p)
		if err != nil {
			return err
		}
		for _, t := range page.Items {
			if t.WorkflowVersion == m.r.FromVersion && m.r.Filter.Accepts(t.Place, t.Data, t.Metadata) && !yield(t) {
				return nil
			}
		}
		if page.Next == "" {
			return nil
		}
		p.After = page.Next
	}
}

// one migrates (or, dry, describes) one token.
func (m *migration) one(ctx context.Context, t *flow.Token) {
	o := wire.MigrationOutcome{TokenID: t.ID, FromPlace: t.Place, ToPlace: m.mp.Place(t.Place)}
	switch {
	case t.WorkflowVersion == m.r.ToVersion: // migrated before
		o.ToPlace = t.Place
	case t.WorkflowVersion != m.r.FromVersion:
		o.ToPlace, o.Error = "", fmt.Sprintf("token %s is on version %d, not %d", t.ID, t.WorkflowVersion, m.r.FromVersion)
	case !m.r.DryRun:
		if err := m.commit(ctx, t.ID, &o); err != nil {
			o.ToPlace, o.Error = "", err.Error()
		}
	}
	m.outcome(o, o.Error == "")
}

// commit moves one token as a change of its own, noting where from and to.
func (m *migration) commit(ctx context.Context, id string, o *wire.MigrationOutcome) error {
	_, err := m.s.apply(ctx, id, 0, "", "",
		func(_ *flow.Machine, cur *flow.Token) (*flow.Token, *flow.Entry, wire.Event, error) {
			if cur.WorkflowVersion == m.r.ToVersion {
				o.FromPlace, o.ToPlace = cur.Place, cur.Place
				return nil, nil, wire.Event{}, errOnTarget
			}
			next, entry, err := m.mp.Migrate(cur, m.r.TriggeredBy, m.s.now())
			if err != nil {
				return nil, nil, wire.Event{}, err
			}
			o.FromPlace, o.ToPlace = cur.Place, next.Place
			return next, entry, wire.Event{EventType: wire.EventTokenMigrated, TokenID: cur.ID, WorkflowID: cur.WorkflowID,
				FromPlace: cur.Place, ToPlace: next.Place, Timestamp: next.UpdatedAt, TriggeredBy: optional(m.r.TriggeredBy),
				WorkflowVersion: next.WorkflowVersion}, nil
		})
	if errors.Is(err, errOnTarget) {
		return nil
	}
	return err
}

func (m *migration) outcome(o wire.MigrationOutcome, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ok {
		m.res.MigratedCount++
	} else {
		m.res.FailedCount++
	}
	if len(m.res.Outcomes) < wire.MaxMigrationOutcomes {
		m.res.Outcomes = append(m.res.Outcomes, o)
	}
}
