package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
)

// faulty puts one kind of failure between a committer and the stream.
type faulty struct {
	batcher
	fault   string // "publish", "lost-ack", "timeout", "interloper", "no-info"
	onWrite func() // interloper: another instance writes to the stream
}

func (f *faulty) batch() (batchSender, error) {
	b, err := f.batcher.batch()
	return &faultyBatch{batchSender: b, f: f}, err
}

func (f *faulty) lastSeq(ctx context.Context) (uint64, error) {
	if f.fault == "no-info" {
		return 0, errors.New("injected: stream leader lost")
	}
	return f.batcher.lastSeq(ctx)
}

type faultyBatch struct {
	batchSender
	f    *faulty
	adds int
}

func (b *faultyBatch) add(m *nats.Msg) error {
	if b.adds++; b.f.fault == "publish" && b.adds == 3 {
		return errors.New("injected: publish failed")
	}
	return b.batchSender.add(m)
}

func (b *faultyBatch) commit(ctx context.Context, m *nats.Msg) (uint64, error) {
	switch b.f.fault {
	case "timeout":
		b.discard()
		return 0, context.DeadlineExceeded
	case "lost-ack":
		_, _ = b.batchSender.commit(ctx, m)
		return 0, context.DeadlineExceeded
	case "interloper":
		b.f.onWrite()
		b.f.fault = "" // once
	}
	return b.batchSender.commit(ctx, m)
}

// TestEveryChangeGetsOneOutcome: under each injected failure — a change
// that cannot be encoded, a failed publish, a lost ack, a commit timeout,
// another instance writing meanwhile (the batch's pinned sequence is
// stale), the stream's leader lost — every waiting writer gets exactly one
// outcome, and the stream holds what the outcomes say: a change reported
// committed is stored, one reported refused is not, and only an outcome
// reported unknown (TIMEOUT) may be either.
func TestEveryChangeGetsOneOutcome(t *testing.T) {
	for _, fault := range []string{"", "encode", "publish", "lost-ack", "timeout", "interloper", "no-info"} {
		t.Run("fault="+fault, func(t *testing.T) {
			ctx, st, w, _ := groupStore(t)
			c := w.committer
			toks := createTokens(t, ctx, st, w.machines[1], 8)
			f := &faulty{batcher: c.out, fault: fault, onWrite: func() {
				publish(t, st.js, "workflows.grp.events.lifecycle", []byte(`{}`))
			}}
			if fault == "no-info" {
				c.lastKnown = false // as after an error: the next group reads the stream's last sequence
			}
			c.out = f // before the changes are queued: the run loop reads it after
			group := make([]*change, len(toks))
			for i, tok := range toks {
				group[i] = fireChange(t, w.machines[1], tok)
			}
			if fault == "encode" {
				group[3].token.Data, _ = json.Marshal(strings.Repeat("x", 9<<20))
			}
			outcomes := submitAll(t, ctx, c, group)
			for i, ch := range group {
				checkOutcome(t, ctx, st, toks[i], ch, outcomes[i])
			}
		})
	}
}

// submitAll submits every change at once and returns each one's outcome,
// failing if a writer waits too long or a change is told twice.
func submitAll(t *testing.T, ctx context.Context, c *committer, group []*change) []error {
	t.Helper()
	out := make([]error, len(group))
	var wg sync.WaitGroup
	for i, ch := range group {
		wg.Go(func() { out[i] = c.submit(ctx, ch) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("a writer got no outcome")
	}
	time.Sleep(50 * time.Millisecond) // room for a second, wrong delivery
	for i, ch := range group {
		if len(ch.done) != 0 {
			t.Fatalf("change %d was told its outcome twice", i)
		}
	}
	return out
}

// checkOutcome compares a change's outcome with what the stream holds.
func checkOutcome(t *testing.T, ctx context.Context, st *Store, prev *flow.Token, ch *change, err error) {
	t.Helper()
	got, rerr := st.Find(ctx, prev.WorkflowID, prev.ID)
	if rerr != nil {
		t.Fatal(rerr)
	}
	committed := got.Revision == ch.token.Revision
	switch {
	case err == nil && !committed:
		t.Errorf("token %s: reported committed, stored at revision %d", prev.ID, got.Revision)
	case err != nil && fail.KindOf(err) != fail.Timeout && committed:
		t.Errorf("token %s: reported %v, but committed", prev.ID, err)
	case err != nil && got.Revision != prev.Revision && !committed:
		t.Errorf("token %s: stored at revision %d, neither before nor after", prev.ID, got.Revision)
	}
	t.Logf("token %s: outcome %v, committed %v", prev.ID[:8], err, committed)
}
