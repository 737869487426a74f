package event

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// JetStream has no per-subject byte limit, so the event service enforces
// the event byte budget itself: it sums each workflow's event sizes and
// purges the oldest events (only events: the purge is filtered to the
// event subjects) until the rest fit. The age and count limits are the
// stream's own (per-message TTL, per-subject message limit).

// Trim purges, in every workflow stream, the oldest events beyond maxBytes.
// It returns how many events it purged.
func (s *Service) Trim(ctx context.Context, maxBytes int64) (uint64, error) {
	var purged uint64
	names := s.js.StreamNames(ctx, jetstream.WithStreamListSubject("workflows.>"))
	for name := range names.Name() {
		wf, ok := strings.CutPrefix(name, "WORKFLOW_")
		if !ok {
			continue
		}
		n, err := s.trimWorkflow(ctx, wf, maxBytes)
		if err != nil {
			return purged, err
		}
		purged += n
	}
	return purged, jserr.Classify(names.Err())
}

// trimWorkflow purges the oldest events of one workflow beyond maxBytes.
func (s *Service) trimWorkflow(ctx context.Context, wf string, maxBytes int64) (uint64, error) {
	type event struct {
		seq  uint64
		size int64
	}
	var evs []event
	var total int64
	for after := uint64(0); ; {
		it, err := jetstreamext.GetBatch(ctx, s.js, subjects.StreamName(wf), maxScan,
			jetstreamext.GetBatchSeq(after+1), jetstreamext.GetBatchSubject(subjects.AllEvents(wf)))
		if err != nil {
			return 0, jserr.Classify(err)
		}
		n := 0
		for msg, err := range it {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return 0, jserr.Classify(err)
			}
			size := int64(len(msg.Data) + len(msg.Subject))
			evs, total, after, n = append(evs, event{msg.Sequence, size}), total+size, msg.Sequence, n+1
		}
		if n < maxScan {
			break
		}
	}
	cut := 0
	for ; total > maxBytes && cut < len(evs); cut++ {
		total -= evs[cut].size
	}
	if cut == 0 {
		return 0, nil
	}
	st, err := s.stream(ctx, wf)
	if err != nil {
		return 0, err
	}
	err = st.Purge(ctx, jetstream.WithPurgeSubject(subjects.AllEvents(wf)), jetstream.WithPurgeSequence(evs[cut-1].seq+1))
	return uint64(cut), jserr.Classify(err)
}

// trimLoop runs Trim every interval until ctx ends.
func (s *Service) trimLoop(ctx context.Context, maxBytes int64, every time.Duration, log zerolog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.Trim(ctx, maxBytes); err != nil {
				log.Warn().Err(err).Msg("event retention by size")
			} else if n > 0 {
				log.Info().Uint64("purged", n).Msg("event retention by size")
			}
		}
	}
}
