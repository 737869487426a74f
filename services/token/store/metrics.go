package store

import (
	"time"

	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/metrics"
)

// commitMetrics records what the committers do.
type commitMetrics struct {
	latency metrics.Histogram
	batches metrics.Counter
	changes metrics.Counter
}

func newCommitMetrics(r *metrics.Registry) commitMetrics {
	return commitMetrics{
		latency: r.Histogram("cb_jetstream_commit_duration_seconds", "Time to commit one atomic batch (group of changes)."),
		batches: r.Counter("cb_jetstream_batches_total", "Atomic batches sent, by outcome.", "outcome"),
		changes: r.Counter("cb_token_changes_committed_total", "Token changes committed."),
	}
}

func (m commitMetrics) observe(d time.Duration, n int, err error) {
	m.latency.Observe(d)
	switch {
	case err == nil:
		m.batches.Inc("ok")
		m.changes.Add(int64(n))
	case jserr.WrongSequence(err):
		m.batches.Inc("conflict")
	default:
		m.batches.Inc("error")
	}
}
