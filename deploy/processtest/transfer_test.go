package processtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// transferProc starts `circuit-breaker export|import` with stdin and
// stdout given; its stderr is collected (p.out).
func transferProc(t testing.TB, stdin io.Reader, stdout io.Writer, args ...string) *proc {
	t.Helper()
	p := &proc{name: "circuit-breaker " + args[0], out: &lines{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin("circuit-breaker"), args...)
	p.cmd.Env = childEnv()
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = stdin, stdout, p.out
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		p.exitCode = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill9(t)
		if t.Failed() {
			t.Logf("%s output, last lines:\n%s", p.name, p.out.tail(20))
		}
	})
	return p
}

// transferSource fills workflow wf of a system with two versions, n small
// tokens and one with long history entries; it returns the token ids.
func transferSource(t *testing.T, c *client.Client, wf string, n, long int) []string {
	t.Helper()
	ctx := ctxFor(t, 5*time.Minute)
	testkit.Must(c.CreateWorkflow(ctx, &wire.CreateWorkflowRequest{ID: wf, Name: "kill", Places: []string{"a", "b"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "back", FromPlaces: []string{"b"}, ToPlace: "a"}}}))
	ids := make([]string, n+1)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				tok, err := c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: wf, Data: json.RawMessage(fmt.Sprintf(`{"i":%d,"s":"tøken"}`, i)),
					Metadata: json.RawMessage(`{"src":"kill"}`), TriggeredBy: "seed"})
				if err == nil && i%3 == 0 {
					_, err = c.Fire(ctx, &wire.FireRequest{TokenID: tok.ID, TransitionID: "go", Data: json.RawMessage(`{"went":true}`)})
				}
				if err != nil {
					errs <- err
					return
				}
				ids[i] = tok.ID
			}
		})
	}
	lt := testkit.Must(c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: wf}))
	for i := 1; i < long; i++ {
		tr := map[bool]string{true: "go", false: "back"}[i%2 == 1]
		testkit.Must(c.Fire(ctx, &wire.FireRequest{TokenID: lt.ID, TransitionID: tr, Data: json.RawMessage(fmt.Sprintf(`{"step":%d}`, i))}))
	}
	ids[n] = lt.ID
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("seed: %v", err)
	}
	v2 := &wire.UpdateWorkflowRequest{ExpectedVersion: 1, CreateWorkflowRequest: wire.CreateWorkflowRequest{ID: wf, Name: "kill v2",
		Places: []string{"a", "b", "c"}, InitialPlace: "a", Transitions: []flow.Transition{{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b"},
			{ID: "back", FromPlaces: []string{"b"}, ToPlace: "a"}, {ID: "end", FromPlaces: []string{"b"}, ToPlace: "c"}}}}
	testkit.Must(c.UpdateWorkflow(ctx, v2))
	return ids
}

// TestImportKill9: a workflow exported with the CLI (2 versions, 3,000
// tokens, one with 1,500 history entries, events) is imported with the
// CLI into another system with --sync-always; the importer is killed with
// SIGKILL part-way, then the system itself in the middle of a second
// run; a third run completes. Every token is then there exactly once:
// listed once, one token_imported event each, exactly its entries on its
// history subject (no entry twice, none missing), every field as in the
// source; a fourth run writes nothing.
func TestImportKill9(t *testing.T) {
	const wf, n, long = "kill", 3000, 1500
	srcDir, dstDir := t.TempDir(), t.TempDir()
	_, srcURL := circuitBreaker(t, srcDir, freePort(t))
	src, _ := connect(t, srcURL)
	ids := transferSource(t, src, wf, n, long)

	file := filepath.Join(t.TempDir(), "kill.ndjson")
	f := testkit.Must(os.Create(file))
	t0 := time.Now()
	exp := transferProc(t, nil, f, "export", "--workflow", wf, "--events", "--nats", srcURL)
	exp.wait(t, 2*time.Minute)
	took := time.Since(t0)
	f.Close()
	if exp.exitCode != 0 {
		t.Fatalf("export exited %d:\n%s", exp.exitCode, exp.out.tail(10))
	}
	exp.waitLine(t, fmt.Sprintf("exported %s: 2 versions, %d tokens", wf, n+1), time.Second)
	size := testkit.Must(os.Stat(file)).Size()
	t.Logf("export took %v: %d tokens, %d bytes", took.Round(time.Millisecond), n+1, size)

	dstPort := freePort(t)
	dst, dstURL := circuitBreaker(t, dstDir, dstPort, "--sync-always")
	nc := testkit.Must(nats.Connect(dstURL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond)))
	defer nc.Close()
	c := client.New(nc)
	visible := func() int {
		ctx := ctxFor(t, 10*time.Second)
		k := 0
		for _, id := range []string{ids[0], ids[n/3], ids[2*n/3], ids[n-1], ids[n]} {
			if _, err := c.GetToken(ctx, id); err == nil {
				k++
			}
		}
		return k
	}
	importer := func() *proc {
		in := testkit.Must(os.Open(file))
		t.Cleanup(func() { in.Close() })
		return transferProc(t, in, io.Discard, "import", "--nats", dstURL)
	}

	// 1: kill the importer once some tokens are in, not all.
	imp := importer()
	testkit.Poll(t, 2*time.Minute, "some tokens imported", func() bool { return visible() > 0 })
	imp.kill9(t)
	k1 := visible()
	if k1 == 5 {
		t.Fatalf("the import finished before the kill: the test needs more tokens")
	}
	// 2: kill the system itself in the middle of the next run.
	imp = importer()
	k2 := k1
	testkit.Poll(t, 2*time.Minute, "more tokens imported", func() bool { k2 = visible(); return k2 > k1 })
	dst.kill9(t)
	imp.wait(t, time.Minute)
	if imp.exitCode == 0 {
		t.Fatalf("the importer succeeded although its system was killed")
	}
	t.Logf("killed the importer with %d/5 sample tokens in, then the system with %d/5; the importer said: %s", k1, k2, imp.out.tail(1))
	dst, _ = circuitBreaker(t, dstDir, dstPort, "--sync-always")
	// 3: complete.
	t0 = time.Now()
	imp = importer()
	imp.wait(t, 3*time.Minute)
	t.Logf("the completing run took %v: %s", time.Since(t0).Round(time.Millisecond), imp.out.tail(1))
	if imp.exitCode != 0 {
		t.Fatalf("final import exited %d:\n%s", imp.exitCode, imp.out.tail(10))
	}
	exactlyOnce(t, src, c, nc, wf, ids)
	// 4: once more: nothing is written.
	js := testkit.Must(jetstream.New(nc))
	before := testkit.Must(testkit.Must(js.Stream(ctxFor(t, 10*time.Second), subjects.StreamName(wf))).Info(ctxFor(t, 10*time.Second))).State.LastSeq
	var out bytes.Buffer
	in := testkit.Must(os.Open(file))
	defer in.Close()
	t0 = time.Now()
	imp = transferProc(t, in, &out, "import", "--nats", dstURL)
	imp.wait(t, 3*time.Minute)
	t.Logf("a run over the complete import took %v", time.Since(t0).Round(time.Millisecond))
	after := testkit.Must(testkit.Must(js.Stream(ctxFor(t, 10*time.Second), subjects.StreamName(wf))).Info(ctxFor(t, 10*time.Second))).State.LastSeq
	var sum struct {
		Unchanged int `json:"tokensUnchanged"`
		Imported  int `json:"tokensImported"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil || imp.exitCode != 0 || sum.Unchanged != n+1 || sum.Imported != 0 || after != before {
		t.Fatalf("re-import: exit %d, %s (%v); %d messages written", imp.exitCode, out.Bytes(), err, after-before)
	}
	// Failures exit 1 with a clear message: a truncated file, a missing workflow.
	whole := testkit.Must(os.ReadFile(file))
	imp = transferProc(t, bytes.NewReader(whole[:len(whole)/2]), io.Discard, "import", "--nats", dstURL)
	imp.wait(t, 3*time.Minute)
	if imp.exitCode != 1 {
		t.Fatalf("import of a truncated file exited %d", imp.exitCode)
	}
	imp.waitLine(t, "truncated", time.Second)
	exp = transferProc(t, nil, io.Discard, "export", "--workflow", "nope", "--nats", dstURL)
	exp.wait(t, time.Minute)
	if exp.exitCode != 1 {
		t.Fatalf("export of a missing workflow exited %d", exp.exitCode)
	}
	exp.waitLine(t, "Workflow not found: nope", time.Second)
	_ = dst
}

// exactlyOnce checks that the system of c holds every token of src's
// workflow exactly once, with all of its history and nothing more.
func exactlyOnce(t *testing.T, src, c *client.Client, nc *nats.Conn, wf string, ids []string) {
	t.Helper()
	ctx := ctxFor(t, 5*time.Minute)
	listed := map[string]int{}
	for cursor := ""; ; {
		p := testkit.Must(c.ListTokens(ctx, wf, wire.Page{First: 1000, After: cursor}))
		for _, tok := range p.Items {
			listed[tok.ID]++
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if len(listed) != len(ids) {
		t.Fatalf("%d tokens listed, want %d", len(listed), len(ids))
	}
	entries := 0
	for _, id := range ids {
		if listed[id] != 1 {
			t.Fatalf("token %s listed %d times", id, listed[id])
		}
		a, b := testkit.Must(src.GetToken(ctx, id)), testkit.Must(c.GetToken(ctx, id))
		a.NatsSequence, a.NatsTimestamp, b.NatsSequence, b.NatsTimestamp = 0, time.Time{}, 0, time.Time{}
		if ja, jb := testkit.Must(json.Marshal(a)), testkit.Must(json.Marshal(b)); !bytes.Equal(ja, jb) {
			t.Fatalf("token %s:\n%s\n%s", id, ja, jb)
		}
		ha, hb := testkit.Must(src.AllHistory(ctx, id)), testkit.Must(c.AllHistory(ctx, id))
		if len(ha) != len(hb) || len(hb) != b.Records {
			t.Fatalf("token %s: %d entries, source %d, records %d", id, len(hb), len(ha), b.Records)
		}
		for i := range ha {
			ha[i].Sequence, hb[i].Sequence, ha[i].Record.NatsSequence, hb[i].Record.NatsSequence = 0, 0, 0, 0
			if ja, jb := testkit.Must(json.Marshal(ha[i])), testkit.Must(json.Marshal(hb[i])); !bytes.Equal(ja, jb) {
				t.Fatalf("token %s entry %d:\n%s\n%s", id, i+1, ja, jb)
			}
		}
		entries += len(hb)
	}
	// Every message on the history subjects, orphans of a cut-off token included.
	js := testkit.Must(jetstream.New(nc))
	info := testkit.Must(testkit.Must(js.Stream(ctx, subjects.StreamName(wf))).Info(ctx, jetstream.WithSubjectFilter(subjects.TokenHistory(wf, "*"))))
	stored := uint64(0)
	for _, k := range info.State.Subjects {
		stored += k
	}
	if stored != uint64(entries) || len(info.State.Subjects) != len(ids) {
		t.Fatalf("%d history messages on %d subjects, want %d on %d", stored, len(info.State.Subjects), entries, len(ids))
	}
	imported := map[string]int{}
	for _, e := range testkit.Must(testkit.Events(ctx, js, wf)) {
		if e.EventType == wire.EventTokenImported {
			imported[e.TokenID]++
		}
	}
	for _, id := range ids {
		if imported[id] != 1 {
			t.Fatalf("token %s has %d token_imported events", id, imported[id])
		}
	}
	if _, err := c.GetToken(ctx, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, fail.ErrNotFound) {
		t.Fatalf("an unknown token: %v", err)
	}
	t.Logf("%d tokens and %d history entries, each exactly once", len(ids), entries)
}
