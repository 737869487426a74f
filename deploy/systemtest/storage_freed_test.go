package systemtest

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/deploy/stack"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/embedded"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/metrics"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// storageFigures is what a workflow takes at one moment.
type storageFigures struct {
	streamMsgs, streamBytes uint64 // the stream's own count (State.Msgs, State.Bytes)
	account                 uint64 // the account's JetStream file storage in use (every stream and bucket)
	disk                    int64  // bytes of files under the stream's directory
	sealed                  int64  // of them, message blocks the stream no longer writes to (all but the last)
}

func measure(t *testing.T, s *system, wf string) storageFigures {
	t.Helper()
	c, js := ctx(t), s.stackJS()
	var f storageFigures
	if st, err := js.Stream(c, subjects.StreamName(wf)); err == nil {
		info := testkit.Must(st.Info(c))
		f.streamMsgs, f.streamBytes = info.State.Msgs, info.State.Bytes
	}
	f.account = testkit.Must(js.AccountInfo(c)).Store
	blocks := map[int]int64{}
	_ = filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(path, string(filepath.Separator)+subjects.StreamName(wf)+string(filepath.Separator)) {
			if fi, err := d.Info(); err == nil {
				f.disk += fi.Size()
				var i int
				if _, err := fmt.Sscanf(d.Name(), "%d.blk", &i); err == nil {
					blocks[i] = fi.Size()
				}
			}
		}
		return nil
	})
	last := 0
	for i := range blocks {
		last = max(last, i)
	}
	for i, size := range blocks {
		if i != last {
			f.sealed += size
		}
	}
	return f
}

// onSixteen runs f(i) for i in [0, n) on 16 goroutines.
func onSixteen(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// TestStorageIsFreed measures what deleting tokens and then their
// workflow gives back. 1,000 tokens of 1 KB of data, each fired 4 times
// (5 history entries and 5 events each), half of them deleted, then the
// other half: each delete purges the token's state and history at once
// (JetStream's own count of stored bytes falls), and keeps its events (the
// storage contract leaves them to event retention) plus one token_deleted;
// the file store gives the disk space back when it compacts its blocks
// (on its periodic sync, here every second, once a block is less than
// half used). Then the workflow: its stream and files go at once.
func TestStorageIsFreed(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a workflow")
	}
	dir := t.TempDir()
	st, err := stack.Start(context.Background(), stack.Options{Server: embedded.Options{DataDir: dir, Port: -1, SyncInterval: time.Second},
		Store: defaultStore(), TokenInstances: 1, Metrics: metrics.NewRegistry(), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	nc := testkit.Must(nats.Connect(st.ClientURL()))
	s := &system{stack: st, nc: nc, c: client.New(nc), dir: dir}
	t.Cleanup(s.stop)
	c := ctx(t)
	const n, fires = 1000, 4
	wf := testkit.Must(s.c.CreateWorkflow(c, &wire.CreateWorkflowRequest{ID: "storage", Name: "storage", Places: []string{"a", "b"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "ab", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "ba", FromPlaces: []string{"b"}, ToPlace: "a"}}}))
	data := []byte(`{"blob":"` + strings.Repeat("x", 1000) + `"}`)
	ids := make([]string, n)
	t0 := time.Now()
	onSixteen(n, func(i int) {
		tok := testkit.Must(s.c.CreateToken(context.Background(), &wire.CreateTokenRequest{WorkflowID: wf.ID, Data: data}))
		for j := range fires {
			tok = testkit.Must(s.c.Fire(context.Background(), &wire.FireRequest{TokenID: tok.ID, TransitionID: []string{"ab", "ba"}[j%2], Data: []byte(`{"step":1}`)}))
		}
		ids[i] = tok.ID
	})
	filled := time.Since(t0)
	full := measure(t, s, wf.ID)
	del := func(ids []string) time.Duration {
		t0 := time.Now()
		onSixteen(len(ids), func(i int) {
			if rep := testkit.Must(s.c.DeleteToken(context.Background(), &wire.DeleteTokenRequest{TokenID: ids[i]})); !rep.Deleted {
				t.Errorf("token %s not deleted", ids[i])
			}
		})
		return time.Since(t0)
	}
	halfTook := del(ids[:n/2])
	half := measure(t, s, wf.ID)
	allTook := del(ids[n/2:])
	none := measure(t, s, wf.ID)
	compacted := none
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && compacted.sealed > full.sealed*6/10; time.Sleep(200 * time.Millisecond) {
		compacted = measure(t, s, wf.ID)
	}
	t0 = time.Now()
	rep := testkit.Must(s.c.DeleteWorkflow(c, wf.ID, true))
	wfTook := time.Since(t0)
	gone := measure(t, s, wf.ID)

	pct := func(a, b uint64) float64 { return 100 * (1 - float64(a)/float64(b)) }
	t.Logf("%d tokens × (1 KB of data, %d fires), made in %v: stream %d msgs, %d bytes; files %d bytes, of which %d in blocks no longer written; account %d bytes",
		n, fires, filled.Round(time.Millisecond), full.streamMsgs, full.streamBytes, full.disk, full.sealed, full.account)
	t.Logf("%d deleted in %v: stream %d msgs, %d bytes (%.0f %% freed); files %d bytes; account %d bytes",
		n/2, halfTook.Round(time.Millisecond), half.streamMsgs, half.streamBytes, pct(half.streamBytes, full.streamBytes), half.disk, half.account)
	t.Logf("all %d deleted (%d more in %v): stream %d msgs, %d bytes (%.0f %% freed: the events are left); files %d bytes, of which %d in blocks no longer written",
		n, n-n/2, allTook.Round(time.Millisecond), none.streamMsgs, none.streamBytes, pct(none.streamBytes, full.streamBytes), none.disk, none.sealed)
	t.Logf("after the file store's compaction: files %d bytes, of which %d (%.0f %% less than before the deletes) in blocks no longer written; the block being written is compacted once the stream moves on to the next",
		compacted.disk, compacted.sealed, pct(uint64(compacted.sealed), uint64(full.sealed)))
	t.Logf("workflow deleted in %v (%+v): account %d bytes (%d freed), files %d bytes", wfTook.Round(time.Millisecond), *rep, gone.account, full.account-gone.account, gone.disk)

	// Each deleted token gives back its state and history: more than half
	// of what it took here, its events being the rest.
	if half.streamBytes > full.streamBytes-full.streamBytes/5 || none.streamBytes > full.streamBytes/2+full.streamBytes/10 {
		t.Errorf("stream bytes %d → %d (half deleted) → %d (all deleted): want at most 80 %% and 60 %% left", full.streamBytes, half.streamBytes, none.streamBytes)
	}
	if half.streamMsgs != full.streamMsgs-uint64(n/2)*6 || none.streamMsgs != full.streamMsgs-uint64(n)*6 {
		t.Errorf("stream messages %d → %d → %d: want 6 fewer a deleted token (state, tombstone and 5 history entries out, token_deleted in)", full.streamMsgs, half.streamMsgs, none.streamMsgs)
	}
	if full.sealed == 0 || compacted.sealed > full.sealed*6/10 {
		t.Errorf("blocks no longer written: %d bytes, %d after the deletes and compaction; want 40 %% less at least", full.sealed, compacted.sealed)
	}
	if gone.disk != 0 || gone.streamBytes != 0 || full.account-gone.account < full.streamBytes {
		t.Errorf("after the workflow delete: %d bytes of files, %d stream bytes left; %d account bytes freed of the stream's %d", gone.disk, gone.streamBytes, full.account-gone.account, full.streamBytes)
	}
}
