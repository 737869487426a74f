package token

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Automatic archiving: a workflow whose definition sets archiveAfter has
// its tokens archived once they have sat that long, unchanged, in a
// terminal place (one no transition leaves). The sweeper of each
// token-service instance looks every sweepEvery: it lists the workflow
// streams, reads each definition it has not loaded (one read), and for
// the workflows this instance writes (all of them when routing is off:
// the compare-and-swap makes a token archived twice at once archived
// once) reads each terminal place in stream order — the order in which
// tokens last changed — up to the first token changed too recently, so a
// pass reads about what it archives. At most sweepMax tokens are archived
// per pass; the rest wait for the next.
const (
	DefaultSweepEvery = time.Minute
	sweepMax          = 1000
	sweepPage         = 100
	// ArchivedBy is the triggeredBy of the archives the sweeper makes.
	ArchivedBy = "archiveAfter"
)

type sweeper struct {
	s     *Service
	js    jetstream.JetStream
	every time.Duration
	log   zerolog.Logger
	stop  chan struct{}
	done  chan struct{}
}

func newSweeper(s *Service, js jetstream.JetStream, every time.Duration, log zerolog.Logger) *sweeper {
	if every <= 0 {
		every = DefaultSweepEvery
	}
	return &sweeper{s: s, js: js, every: every, log: log, stop: make(chan struct{}), done: make(chan struct{})}
}

func (w *sweeper) run() {
	defer close(w.done)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.stop:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(w.every, 30*time.Second))
		go func() { // a pass ends when the sweeper stops
			select {
			case <-w.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		n, err := w.pass(ctx)
		cancel()
		if n > 0 || err != nil {
			w.log.Info().Err(err).Int("archived", n).Msg("archiveAfter sweep")
		}
	}
}

func (w *sweeper) close() {
	close(w.stop)
	<-w.done
}

// pass archives the due tokens of every workflow this instance writes, at
// most sweepMax in all.
func (w *sweeper) pass(ctx context.Context) (int, error) {
	names := w.js.StreamNames(ctx)
	var ids []string
	for name := range names.Name() {
		if id, ok := subjects.WorkflowOfStream(name); ok && (w.s.writers == nil || w.s.writers.writerOf(id) == w.s.writers.self) {
			ids = append(ids, id)
		}
	}
	if err := names.Err(); err != nil {
		return 0, err
	}
	done := 0
	for _, id := range ids {
		def, err := w.s.store.Definition(ctx, id)
		if errors.Is(err, fail.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return done, err
		}
		if len(def.SearchAttributes) > 0 { // a build whose instance stopped, or that was never started
			if _, err := w.s.indexer.start(ctx, id); err != nil && !errors.Is(err, fail.ErrNotFound) {
				w.log.Warn().Err(err).Str("workflow", id).Msg("resume search index build")
			}
		}
		after := def.ArchiveAfterDuration()
		if after == 0 {
			continue
		}
		n, err := w.sweep(ctx, id, flow.Analyze(def).TerminalPlaces, w.s.now().Add(-after), sweepMax-done)
		done += n
		if err != nil && !errors.Is(err, fail.ErrNotFound) {
			return done, err
		}
		if done >= sweepMax {
			break
		}
	}
	return done, nil
}

// sweep archives up to limit tokens of workflow wf that sit in one of
// places and last changed before cutoff.
func (w *sweeper) sweep(ctx context.Context, wf string, places []string, cutoff time.Time, limit int) (int, error) {
	done := 0
	for _, place := range places {
		for p := (wire.Page{First: sweepPage}); done < limit; {
			pg, err := w.s.store.InPlace(ctx, wf, place, p)
			if err != nil {
				return done, err
			}
			recent := false
			for _, t := range pg.Items {
				if !t.UpdatedAt.Before(cutoff) {
					recent = true // in stream order: later tokens changed later still
					break
				}
				_, err := w.s.archiveHere(ctx, &wire.ArchiveTokenRequest{TokenID: t.ID, TriggeredBy: ArchivedBy, ExpectedRevision: t.Revision})
				switch {
				case err == nil:
					done++
				case errors.Is(err, fail.ErrConflict), errors.Is(err, fail.ErrNotFound): // changed or gone since: not due now
				default:
					return done, err
				}
				if done >= limit {
					break
				}
			}
			if recent || pg.Next == "" {
				break
			}
			p.After = pg.Next
		}
	}
	return done, nil
}
