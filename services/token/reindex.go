package token

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Search index builds. Every change writes the index entries of the
// attributes its workflow's latest version declares (store/index.go), so
// when an update adds attributes only the tokens that have not changed
// since lack theirs. The update stores a BUILDING record (wire.SearchIndex)
// in the batch of its version and asks for a build (token.reindex, served
// by the workflow's writer); until the build ends, a search on those
// attributes is refused (search.go) rather than answered without them.
//
// A build reads the workflow's tokens in stream order up to the update's
// sequence (Until: a state written later was indexed by its own change)
// and writes each token's entries with the compare-and-swap on its state
// (store.Reindex: a token changed meanwhile has them already), reindexWorkers
// at a time so the committer packs them into groups. It stores its
// progress (After, the counts) every reindexSavePages pages or
// reindexSaveEvery, whichever comes first, with the record's
// compare-and-swap; each store renews its lease. The sweeper of
// the workflow's writer resumes a build whose record has not moved for
// reindexLease (its instance stopped), from After. An update that adds
// attributes while a build runs writes a new record, from the start: the
// build finds its record changed and starts over.
const (
	reindexPage      = 256
	reindexWorkers   = 128
	reindexSaveEvery = time.Second
	reindexSavePages = 4
	reindexLease     = 15 * time.Second
)

// errBuildMoved ends a pass of a build whose record another writer changed.
var errBuildMoved = errors.New("search index record changed")

// indexer runs this instance's search index builds, at most one per
// workflow, until the service stops.
type indexer struct {
	s    *Service
	self string // this instance, the Runner of its builds
	log  zerolog.Logger

	ctx  context.Context // the builds' lifetime
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	running map[string]bool
}

func newIndexer(s *Service, self string, log zerolog.Logger) *indexer {
	ctx, stop := context.WithCancel(context.Background())
	return &indexer{s: s, self: self, log: log, ctx: ctx, stop: stop, running: map[string]bool{}}
}

// close stops the builds; each resumes later from its last saved progress.
func (x *indexer) close() {
	x.stop()
	x.wg.Wait()
}

func (s *Service) searchIndex(ctx context.Context, r *wire.SearchIndexRequest) (*wire.SearchIndex, error) {
	rec, _, err := s.store.SearchIndex(ctx, r.WorkflowID)
	if err != nil {
		return nil, err
	}
	return s.withVersion(ctx, rec)
}

// withVersion fills in the version of a workflow's index that no build
// ever ran for: its latest.
func (s *Service) withVersion(ctx context.Context, rec *wire.SearchIndex) (*wire.SearchIndex, error) {
	if rec.Version != 0 {
		return rec, nil
	}
	m, err := s.store.Machine(ctx, rec.WorkflowID, 0)
	if err != nil {
		return nil, err
	}
	rec.Version = m.Def.Version
	return rec, nil
}

func (s *Service) reindex(ctx context.Context, r *wire.SearchIndexRequest) (*json.RawMessage, error) {
	return route(ctx, s.writers, r.WorkflowID, opReindex, r, s.reindexHere)
}

func (s *Service) reindexHere(ctx context.Context, r *wire.SearchIndexRequest) (*json.RawMessage, error) {
	rec, err := s.indexer.start(ctx, r.WorkflowID)
	if err == nil {
		rec, err = s.withVersion(ctx, rec)
	}
	if err != nil {
		return nil, err
	}
	return rawReply(rec, "search index record")
}

// start starts a build of wf's index here, unless the index is READY,
// this instance builds it already, or another one holds its lease. It
// returns the record as read.
func (x *indexer) start(ctx context.Context, wf string) (*wire.SearchIndex, error) {
	rec, _, err := x.s.store.SearchIndex(ctx, wf)
	if err != nil || rec.State != wire.IndexBuilding || x.leasedElsewhere(rec) {
		return rec, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.running[wf] || x.ctx.Err() != nil {
		return rec, nil
	}
	x.running[wf] = true
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		x.build(wf)
		x.mu.Lock()
		delete(x.running, wf)
		x.mu.Unlock()
	}()
	return rec, nil
}

// leasedElsewhere reports that another instance builds the index and
// stored its progress within the lease.
func (x *indexer) leasedElsewhere(rec *wire.SearchIndex) bool {
	return rec.Runner != "" && rec.Runner != x.self && rec.UpdatedAt != nil && x.s.now().Sub(*rec.UpdatedAt) < reindexLease
}

// build runs passes of wf's build until one ends it, or it is left to
// another instance, or it fails (the sweeper resumes it).
func (x *indexer) build(wf string) {
	log := x.log.With().Str("workflow", wf).Logger()
	for {
		t0 := time.Now()
		rec, err := x.pass(x.ctx, wf)
		switch {
		case errors.Is(err, errBuildMoved):
			continue
		case err != nil:
			log.Warn().Err(err).Msg("search index build stopped; it resumes from its saved progress")
		case rec != nil:
			log.Info().Strs("attributes", rec.Building).Int("indexed", rec.Indexed).Int("scanned", rec.Scanned).
				Dur("took", time.Since(t0)).Msg("search index built")
		}
		return
	}
}

// pass claims wf's build and runs it from its saved progress to the end.
// It returns the finished record (nil: nothing to do here), or
// errBuildMoved when the record changed under it.
func (x *indexer) pass(ctx context.Context, wf string) (*wire.SearchIndex, error) {
	rec, seq, err := x.s.store.SearchIndex(ctx, wf)
	if err != nil || rec.State != wire.IndexBuilding || x.leasedElsewhere(rec) {
		return nil, err
	}
	save := func() error {
		now := x.s.now()
		rec.UpdatedAt = &now
		next, err := x.s.store.PutSearchIndex(ctx, rec, seq)
		if errors.Is(err, fail.ErrConflict) {
			return errBuildMoved
		}
		seq = next
		return err
	}
	rec.Runner = x.self
	if err := save(); err != nil { // the claim
		return nil, err
	}
	saved, pages := time.Now(), 0
	for page := (wire.Page{First: reindexPage, After: cursorAt(rec.After)}); ; pages++ {
		pg, err := x.s.store.List(ctx, wf, page)
		if err != nil {
			return nil, err
		}
		indexed, err := x.indexPage(ctx, pg.Items, rec)
		if err != nil {
			return nil, err
		}
		rec.Indexed += indexed
		last, _ := strconv.ParseUint(pg.Next, 10, 64)
		if pg.Next == "" || last > rec.Until {
			now := x.s.now()
			rec.State, rec.Building, rec.Runner, rec.FinishedAt = wire.IndexReady, []string{}, "", &now
			return rec, save()
		}
		rec.After, page.After = last, pg.Next
		if time.Since(saved) >= reindexSaveEvery || pages%reindexSavePages == reindexSavePages-1 {
			if err := save(); err != nil {
				return nil, err
			}
			saved = time.Now()
		}
	}
}

// indexPage writes the entries of the building attributes for the
// tokens of a page that the build covers, and returns how many had any.
// A token changed or deleted since the page was read needs none.
func (x *indexer) indexPage(ctx context.Context, items []*flow.Token, rec *wire.SearchIndex) (int, error) {
	var (
		mu      sync.Mutex
		indexed int
		failed  error
	)
	_, err := fanOut(ctx, reindexWorkers, func(yield func(*flow.Token) bool) error {
		for _, t := range items {
			if t.NatsSequence > rec.Until {
				continue
			}
			rec.Scanned++
			if !yield(t) {
				break
			}
		}
		return nil
	}, func(t *flow.Token) {
		wrote, err := x.s.store.Reindex(ctx, t, rec.Building, rec.Version)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case wrote:
			indexed++
		case err == nil, errors.Is(err, fail.ErrConflict), errors.Is(err, fail.ErrNotFound):
		case failed == nil:
			failed = err
		}
	})
	if err == nil {
		err = failed
	}
	return indexed, err
}

// cursorAt is the list cursor after stream sequence seq.
func cursorAt(seq uint64) string {
	if seq == 0 {
		return ""
	}
	return strconv.FormatUint(seq, 10)
}
