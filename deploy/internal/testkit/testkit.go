// Package testkit holds the helpers the system, cluster and process tests
// share: polling with a deadline and reading a workflow's events straight
// from its stream.
package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Poll calls cond every 20 ms until it holds, failing the test after d.
func Poll(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Must returns v, or panics with err (the testing package reports a panic
// as a failure with its stack).
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Events reads every event of a workflow from its stream, in order, with
// direct batch gets.
func Events(ctx context.Context, js jetstream.JetStream, wf string) ([]wire.Event, error) {
	var out []wire.Event
	for after := uint64(0); ; {
		it, err := jetstreamext.GetBatch(ctx, js, subjects.StreamName(wf), 1000,
			jetstreamext.GetBatchSeq(after+1), jetstreamext.GetBatchSubject(subjects.AllEvents(wf)))
		if err != nil {
			return nil, err
		}
		n := 0
		for msg, err := range it {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			var ev wire.Event
			if err := json.Unmarshal(msg.Data, &ev); err != nil {
				return nil, err
			}
			out, after, n = append(out, ev), msg.Sequence, n+1
		}
		if n < 1000 {
			return out, nil
		}
	}
}
