package event

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// The event service enforces two of the event retention limits itself,
// every --event-trim-every: the byte budget (JetStream has no per-subject
// byte limit: it sums each workflow's event sizes and purges the oldest
// events until the rest fit) and the count per event subject (a purge
// keeping the newest; a stream-wide per-subject limit would also cut the
// token histories, which hold a message per change). Purges are filtered
// to the event subjects, so they never touch state or history. The age
// limit is each event's own TTL.

// Retention is what Trim keeps of each workflow's events; 0 is no limit.
type Retention struct {
	MaxBytes int64 // event bytes per workflow
	MaxMsgs  int64 // events per event subject
}

// Trim purges, in every workflow stream, the oldest events beyond r.
// It returns how many events it purged.
func (s *Service) Trim(ctx context.Context, r Retention) (uint64, error) {
	var purged uint64
	names := s.js.StreamNames(ctx, jetstream.WithStreamListSubject("workflows.>"))
	for name := range names.Name() {
		wf, ok := strings.CutPrefix(name, "WORKFLOW_")
		if !ok {
			continue
		}
		// Analytics fold every event in before any is purged.
		if _, err := s.catchUp(ctx, wf); err != nil {
			if fail.KindOf(err) == fail.NotFound {
				continue // deleted since it was listed
			}
			return purged, err // purge nothing analytics have not applied
		}
		n, err := s.trimCount(ctx, wf, r.MaxMsgs)
		if err != nil {
			return purged, err
		}
		purged += n
		if r.MaxBytes > 0 {
			if n, err = s.trimWorkflow(ctx, wf, r.MaxBytes); err != nil {
				return purged, err
			}
			purged += n
		}
	}
	return purged, jserr.Classify(names.Err())
}

// trimCount keeps the newest keep events of each event subject of wf.
func (s *Service) trimCount(ctx context.Context, wf string, keep int64) (uint64, error) {
	if keep <= 0 {
		return 0, nil
	}
	st, err := s.stream(ctx, wf)
	if err != nil {
		return 0, err
	}
	var purged uint64
	for _, subj := range []string{subjects.LifecycleEvents(wf), subjects.TransitionEvents(wf)} {
		before, err := st.Info(ctx, jetstream.WithSubjectFilter(subj))
		if err != nil {
			return purged, jserr.Classify(err)
		}
		n := before.State.Subjects[subj]
		if n <= uint64(keep) {
			continue
		}
		purged += n - uint64(keep)
		if err := st.Purge(ctx, jetstream.WithPurgeSubject(subj), jetstream.WithPurgeKeep(uint64(keep))); err != nil {
			return purged, jserr.Classify(err)
		}
	}
	return purged, nil
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
func (s *Service) trimLoop(ctx context.Context, r Retention, every time.Duration, log zerolog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.Trim(ctx, r); err != nil {
				log.Warn().Err(err).Msg("event retention")
			} else if n > 0 {
				log.Info().Uint64("purged", n).Msg("event retention")
			}
		}
	}
}
