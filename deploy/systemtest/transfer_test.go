package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/transfer"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// loopWorkflow is v1 and v2 of a workflow whose tokens can cycle a ⇄ b
// (long histories), v2 adding place c.
func loopWorkflow(id string) (*wire.CreateWorkflowRequest, *wire.UpdateWorkflowRequest) {
	v1 := &wire.CreateWorkflowRequest{ID: id, Name: "loop", Description: "cycles", Places: []string{"a", "b"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "back", FromPlaces: []string{"b"}, ToPlace: "a"}}}
	v2 := &wire.UpdateWorkflowRequest{ExpectedVersion: 1, CreateWorkflowRequest: wire.CreateWorkflowRequest{ID: id, Name: "loop v2",
		Places: []string{"a", "b", "c"}, InitialPlace: "a", Transitions: []flow.Transition{
			{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "back", FromPlaces: []string{"b"}, ToPlace: "a"},
			{ID: "close", FromPlaces: []string{"b"}, ToPlace: "c", Conditions: []string{"has_title"}}}}}
	return v1, v2
}

// transferData fills a workflow with tokens of every shape on both
// versions: data of every JSON type, nested metadata, idempotency keys,
// claims, updates (no history entry), a 100 KB document and one token
// with longHistory history entries. It returns the token ids.
func transferData(t *testing.T, s *system, wf string, longHistory int) []string {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // thousands of fires on a busy machine
	defer cancel()
	v1, v2 := loopWorkflow(wf)
	testkit.Must(s.c.CreateWorkflow(c, v1))
	var ids []string
	add := func(r *wire.CreateTokenRequest) *flow.Token {
		r.WorkflowID = wf
		tok := testkit.Must(s.c.CreateToken(c, r))
		ids = append(ids, tok.ID)
		return tok
	}
	fire := func(id, tr string, r *wire.FireRequest) *flow.Token {
		if r == nil {
			r = &wire.FireRequest{}
		}
		r.TokenID, r.TransitionID = id, tr
		return testkit.Must(s.c.Fire(c, r))
	}
	datas := []string{`{}`, `{"title":"Ünïcødé ✓","n":1.5e300,"big":12345678901234567890,"neg":-0.25,"nested":{"a":[1,{"b":null},"x"],"t":true}}`,
		`[1,2,3]`, `"just a string"`, `42`, `null`, `{"empty":{},"list":[]}`}
	for i, d := range datas {
		tok := add(&wire.CreateTokenRequest{Data: json.RawMessage(d), Metadata: json.RawMessage(fmt.Sprintf(`{"i":%d,"deep":{"k":["v",%d]}}`, i, i)),
			TriggeredBy: "maker", IdempotencyKey: fmt.Sprintf("create-%d", i)})
		if i%2 == 1 {
			fire(tok.ID, "go", &wire.FireRequest{Data: json.RawMessage(`{"fired":true}`), TriggeredBy: "alice", IdempotencyKey: fmt.Sprintf("go-%d", i)})
		}
		if i%3 == 2 {
			testkit.Must(s.c.UpdateToken(c, &wire.UpdateTokenRequest{TokenID: tok.ID, Metadata: json.RawMessage(`{"updated":"yes"}`)}))
		}
	}
	big := add(&wire.CreateTokenRequest{Data: json.RawMessage(`{"doc":"` + strings.Repeat("x", 100_000) + `"}`)})
	fire(big.ID, "go", &wire.FireRequest{Data: json.RawMessage(`{"more":"` + strings.Repeat("y", 20_000) + `"}`)})
	long := add(&wire.CreateTokenRequest{Data: json.RawMessage(`{"title":"long"}`)})
	for i := 1; i < longHistory; i++ {
		tr := "go"
		if i%2 == 0 {
			tr = "back"
		}
		fire(long.ID, tr, &wire.FireRequest{Data: json.RawMessage(fmt.Sprintf(`{"step":%d}`, i))})
	}
	testkit.Must(s.c.UpdateWorkflow(c, v2))
	for i := range 3 {
		tok := add(&wire.CreateTokenRequest{Data: json.RawMessage(`{"title":"v2"}`), TriggeredBy: "bob"})
		if i > 0 {
			fire(tok.ID, "go", nil)
		}
		if i > 1 {
			fire(tok.ID, "close", &wire.FireRequest{TriggeredBy: "carol", IdempotencyKey: "close-it"})
		}
	}
	return ids
}

// exportFile exports a workflow of s.
func exportFile(t *testing.T, s *system, wf string, events bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := transfer.Export(ctx(t), s.c, &buf, transfer.ExportOptions{WorkflowID: wf, Events: events}); err != nil {
		t.Fatalf("export %s: %v", wf, err)
	}
	return buf.Bytes()
}

func importFile(t *testing.T, s *system, file []byte, merge bool) (*transfer.Summary, error) {
	t.Helper()
	return importWith(t, s, file, transfer.ImportOptions{Merge: merge})
}

func importWith(t *testing.T, s *system, file []byte, o transfer.ImportOptions) (*transfer.Summary, error) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o.TriggeredBy = "test"
	return transfer.Import(c, s.c, bytes.NewReader(file), o)
}

// sameWorkflow checks that b holds a's workflow: every version, every token
// and every history entry field for field. NATS sequences and times are
// new in b (token natsSequence and natsTimestamp, each record's
// natsSequence, each entry's sequence); the subject is the same.
func sameWorkflow(t *testing.T, a, b *system, wf string, ids []string) {
	t.Helper()
	c := ctx(t)
	va, vb := testkit.Must(a.c.WorkflowVersions(c, wf)).Items, testkit.Must(b.c.WorkflowVersions(c, wf)).Items
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("versions differ:\n%s\n%s", ja, jb)
	}
	if ga, gb := testkit.Must(a.c.GetWorkflow(c, wf)), testkit.Must(b.c.GetWorkflow(c, wf)); ga.Version != gb.Version || !ga.UpdatedAt.Equal(gb.UpdatedAt) {
		t.Fatalf("latest: %+v / %+v", ga, gb)
	}
	for _, id := range ids {
		ta, tb := testkit.Must(a.c.GetToken(c, id)), testkit.Must(b.c.GetToken(c, id))
		if tb.NatsSequence == 0 || tb.NatsTimestamp.IsZero() || tb.NatsSubject != ta.NatsSubject {
			t.Fatalf("token %s: nats fields %d %v %s", id, tb.NatsSequence, tb.NatsTimestamp, tb.NatsSubject)
		}
		ta.NatsSequence, ta.NatsTimestamp, tb.NatsSequence, tb.NatsTimestamp = 0, time.Time{}, 0, time.Time{}
		sa, _ := json.Marshal(ta)
		sb, _ := json.Marshal(tb)
		if !bytes.Equal(sa, sb) {
			t.Fatalf("token %s differs:\n%s\n%s", id, sa, sb)
		}
		ha, hb := testkit.Must(a.c.AllHistory(c, id)), testkit.Must(b.c.AllHistory(c, id))
		if len(ha) != len(hb) || len(ha) != ta.Records {
			t.Fatalf("token %s: %d history entries, imported %d, records %d", id, len(ha), len(hb), ta.Records)
		}
		for i := range ha {
			if hb[i].Record.NatsSequence != hb[i].Sequence || hb[i].Sequence == 0 {
				t.Fatalf("token %s entry %d: record natsSequence %d, its message %d", id, i+1, hb[i].Record.NatsSequence, hb[i].Sequence)
			}
			ha[i].Sequence, hb[i].Sequence, ha[i].Record.NatsSequence, hb[i].Record.NatsSequence = 0, 0, 0, 0
			ea, _ := json.Marshal(ha[i])
			eb, _ := json.Marshal(hb[i])
			if !bytes.Equal(ea, eb) {
				t.Fatalf("token %s entry %d differs:\n%s\n%s", id, i+1, ea, eb)
			}
		}
	}
	la, lb := testkit.Must(a.c.ListTokens(c, wf, wire.Page{First: 1000})), testkit.Must(b.c.ListTokens(c, wf, wire.Page{First: 1000}))
	if len(la.Items) != len(ids) || len(lb.Items) != len(ids) {
		t.Fatalf("listed %d and %d tokens, want %d", len(la.Items), len(lb.Items), len(ids))
	}
}

// streamLast is the last sequence of a workflow's stream.
func streamLast(t *testing.T, s *system, wf string) uint64 {
	t.Helper()
	st := testkit.Must(s.stackJS().Stream(ctx(t), subjects.StreamName(wf)))
	return testkit.Must(st.Info(ctx(t))).State.LastSeq
}

// TestExportImportRoundTrip exports a workflow with two versions, tokens
// of every shape on both and one token with 2,500 history entries, with
// its events, imports it into a fresh data directory and compares every
// version, token and history entry field for field; imported tokens go
// on working (fires, idempotency keys). Importing again changes nothing,
// not one message.
func TestExportImportRoundTrip(t *testing.T) {
	a, b := start(t, ""), start(t, "")
	const wf = "xfer"
	ids := transferData(t, a, wf, 2500)
	c := ctx(t)
	t0 := time.Now()
	file := exportFile(t, a, wf, true)
	lines := bytes.Count(file, []byte("\n"))
	t.Logf("export took %v: %d tokens, %d lines, %d bytes", time.Since(t0).Round(time.Millisecond), len(ids), lines, len(file))

	t0 = time.Now()
	sum, err := importFile(t, b, file, false)
	if err != nil {
		t.Fatalf("import: %v (%+v)", err, sum)
	}
	t.Logf("import took %v: %+v", time.Since(t0).Round(time.Millisecond), sum)
	evA := events(t, a, wf)
	if !sum.Complete || sum.Workflow != wire.ImportCreated || sum.VersionsAdded != 2 || sum.Imported != len(ids) || sum.Unchanged != 0 ||
		sum.Read.Tokens != len(ids) || sum.EventsImported != len(evA) || sum.EntriesStored != sum.Read.HistoryEntries {
		t.Fatalf("summary %+v (a has %d events)", sum, len(evA))
	}
	sameWorkflow(t, a, b, wf, ids)

	// The events: workflow_imported, the source's in order, then one
	// token_imported per token.
	evB := events(t, b, wf)
	if len(evB) != len(evA)+1+len(ids) || evB[0].EventType != wire.EventWorkflowImported {
		t.Fatalf("%d events imported, want 1 + %d + %d", len(evB), len(evA), len(ids))
	}
	for i, e := range evA {
		g := evB[i+1]
		if g.NatsSequence == 0 {
			t.Fatalf("event %d has no sequence", i)
		}
		g.NatsSequence, e.NatsSequence = 0, 0
		if ja, jb := testkit.Must(json.Marshal(e)), testkit.Must(json.Marshal(g)); !bytes.Equal(ja, jb) {
			t.Fatalf("event %d:\n%s\n%s", i, ja, jb)
		}
	}
	imported := map[string]int{}
	for _, e := range append(evB[:1:1], evB[1+len(evA):]...) {
		imported[e.EventType]++
	}
	if imported[wire.EventWorkflowImported] != 1 || imported[wire.EventTokenImported] != len(ids) {
		t.Fatalf("import events %v", imported)
	}

	// Again: unchanged, and not one message written.
	last := streamLast(t, b, wf)
	sum2, err := importFile(t, b, file, false)
	if err != nil || sum2.Workflow != wire.ImportUnchanged || sum2.Imported != 0 || sum2.Unchanged != len(ids) ||
		sum2.EventsSkipped != len(evA) || sum2.EntriesStored != 0 {
		t.Fatalf("re-import: %v %+v", err, sum2)
	}
	if l := streamLast(t, b, wf); l != last {
		t.Fatalf("a re-import wrote %d messages", l-last)
	}

	// Imported tokens work on: fires continue the revision; a retried key
	// of the source is recognised.
	long := testkit.Must(b.c.GetToken(c, ids[len(ids)-4]))
	next := "go"
	if long.Place == "b" {
		next = "back"
	}
	moved := testkit.Must(b.c.Fire(c, &wire.FireRequest{TokenID: long.ID, TransitionID: next}))
	if moved.Revision != long.Revision+1 || moved.Records != long.Records+1 || moved.WorkflowVersion != 1 {
		t.Fatalf("fire after import: %+v, was %+v", moved, long)
	}
	keyed := testkit.Must(b.c.GetToken(c, ids[1]))
	again := testkit.Must(b.c.Fire(c, &wire.FireRequest{TokenID: ids[1], TransitionID: "go", Data: json.RawMessage(`{"fired":true}`),
		TriggeredBy: "alice", IdempotencyKey: "go-1"}))
	if again.Revision != keyed.Revision {
		t.Fatalf("a retried key fired again after import: revision %d, was %d", again.Revision, keyed.Revision)
	}
	// A changed token is now a conflict, reported per token; the rest is unchanged.
	sum3, err := importFile(t, b, file, false)
	if !errors.Is(err, fail.ErrConflict) || sum3.Conflicts != 1 || sum3.Unchanged != len(ids)-1 || len(sum3.Problems) != 1 ||
		sum3.Problems[0].TokenID != long.ID || sum3.Problems[0].Code != "CONFLICT" {
		t.Fatalf("import over a changed token: %v %+v", err, sum3)
	}
}

// TestImportConflictsAndMerge: a workflow with the same id and other
// versions is refused, with or without merge, and nothing is imported;
// an existing workflow that is a prefix of the file is refused without
// merge and gets the later versions with it.
func TestImportConflictsAndMerge(t *testing.T) {
	a, b := start(t, ""), start(t, "")
	c := ctx(t)
	v1, v2 := loopWorkflow("m")
	testkit.Must(a.c.CreateWorkflow(c, v1))
	tok := testkit.Must(a.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "m"}))
	v1only := exportFile(t, a, "m", false)
	testkit.Must(a.c.UpdateWorkflow(c, v2))
	both := exportFile(t, a, "m", false)

	other := *v1
	other.Name = "someone else's"
	testkit.Must(b.c.CreateWorkflow(c, &other))
	for _, merge := range []bool{false, true} {
		sum, err := importFile(t, b, both, merge)
		if !errors.Is(err, fail.ErrConflict) || !strings.Contains(err.Error(), "version 1 differs") || sum.Imported != 0 {
			t.Fatalf("merge=%v over a different workflow: %v %+v", merge, err, sum)
		}
	}
	if _, err := b.c.GetToken(c, tok.ID); !errors.Is(err, fail.ErrNotFound) {
		t.Fatalf("a token of a refused import: %v", err)
	}

	d := start(t, "")
	if sum, err := importFile(t, d, v1only, false); err != nil || sum.Workflow != wire.ImportCreated || sum.Imported != 1 {
		t.Fatalf("v1 import: %v %+v", err, sum)
	}
	if sum, err := importFile(t, d, both, false); !errors.Is(err, fail.ErrConflict) || !strings.Contains(err.Error(), "merge") {
		t.Fatalf("v1+v2 over v1 without merge: %v %+v", err, sum)
	}
	sum, err := importFile(t, d, both, true)
	if err != nil || sum.Workflow != wire.ImportMerged || sum.VersionsAdded != 1 || sum.Unchanged != 1 {
		t.Fatalf("merge: %v %+v", err, sum)
	}
	sameWorkflow(t, a, d, "m", []string{tok.ID})
	// Merging an older file into a newer workflow adds nothing and changes nothing.
	if sum, err := importFile(t, d, v1only, true); err != nil || sum.Workflow != wire.ImportMerged || sum.VersionsAdded != 0 {
		t.Fatalf("merge of an older file: %v %+v", err, sum)
	}
}

// TestImportTruncatedFile: a file cut inside a long history is refused
// with a clear error; the tokens before the cut are imported whole, the
// one cut is not visible at all (not by id, not listed, no history), and
// importing the whole file then completes it: every token exactly once.
func TestImportTruncatedFile(t *testing.T) {
	a, b := start(t, ""), start(t, "")
	ids := transferData(t, a, "cut", 1500)
	c := ctx(t)
	file := exportFile(t, a, "cut", false)
	long := ids[len(ids)-4]
	// Cut in the middle of the long token's history, after a whole line.
	at := bytes.Index(file, []byte(`"tokenId":"`+long+`"`))
	for n := 0; n < 1200; n++ {
		at += bytes.IndexByte(file[at:], '\n') + 1
	}
	// Small requests: parts of the cut token's history are stored before the cut.
	small := transfer.ImportOptions{RequestBytes: 64 << 10}
	sum, err := importWith(t, b, file[:at], small)
	if !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), long) {
		t.Fatalf("truncated import: %v", err)
	}
	before := len(ids) - 4 // the long token is the 4th from the end, after every v1 token
	if sum.Imported != before || sum.Complete || sum.EntriesStored <= sum.Read.HistoryEntries-1200 {
		t.Fatalf("truncated import summary %+v, want %d imported", sum, before)
	}
	if _, err := b.c.GetToken(c, long); !errors.Is(err, fail.ErrNotFound) {
		t.Fatalf("the cut token reads as %v", err)
	}
	if _, err := b.c.TokenHistory(c, &wire.TokenHistoryRequest{TokenID: long}); !errors.Is(err, fail.ErrNotFound) {
		t.Fatalf("the cut token's history reads as %v", err)
	}
	if n := len(testkit.Must(b.c.ListTokens(c, "cut", wire.Page{First: 1000})).Items); n != before {
		t.Fatalf("%d tokens listed after the cut, want %d", n, before)
	}
	// A file cut in its last line (no newline, half a JSON object).
	if _, err := importFile(t, b, file[:at-10], false); !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), "ends inside this line: it is truncated") {
		t.Fatalf("half a line: %v", err)
	}
	sum, err = importWith(t, b, file, small)
	if err != nil || !sum.Complete || sum.Imported != len(ids)-before || sum.Unchanged != before {
		t.Fatalf("complete import after the cut: %v %+v", err, sum)
	}
	sameWorkflow(t, a, b, "cut", ids)
	if n := len(events(t, b, "cut")); n != 1+len(ids) {
		t.Fatalf("%d events, want workflow_imported and %d token_imported: a token imported twice?", n, len(ids))
	}
}

// TestImportBadFiles: files that are not exports, or not whole, are
// refused with a clear error and leave nothing.
func TestImportBadFiles(t *testing.T) {
	s := start(t, "")
	header := `{"kind":"header","format":"circuit-breaker/export","formatVersion":1,"workflowId":"bad"}` + "\n"
	version := `{"kind":"version","definition":{"id":"bad","name":"bad","places":["a"],"initialPlace":"a","transitions":[],"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z","version":1}}` + "\n"
	tok := `{"kind":"token","token":{"id":"0b6b2f6e-8f7a-4a57-9d7e-111111111111","place":"a","createdAt":"2026-01-02T03:04:05Z","revision":1,"records":1}}` + "\n"
	hist := `{"kind":"history","tokenId":"0b6b2f6e-8f7a-4a57-9d7e-111111111111","entry":{"record":{"fromPlace":"a","toPlace":"a","transitionId":"create","timestamp":"2026-01-02T03:04:05Z"}}}` + "\n"
	cases := map[string]struct{ file, want string }{
		"empty":          {"", "empty"},
		"not an export":  {`{"hello":"world"}` + "\n", "not an export file"},
		"newer format":   {strings.Replace(header, `"formatVersion":1`, `"formatVersion":2`, 1), "format version 2"},
		"not JSON":       {header + "hello\n", "line 2"},
		"no versions":    {header + tok, "no version lines"},
		"counts differ":  {header + version + tok + hist + `{"kind":"end","versions":1,"tokens":2,"historyEntries":1,"events":0}` + "\n", "end line counts"},
		"records differ": {header + version + tok + `{"kind":"end","versions":1,"tokens":1,"historyEntries":0,"events":0}` + "\n", "records 1, but 0 history lines"},
		"stray history":  {header + version + hist, "not the token before it"},
		"bad place": {header + version + strings.Replace(tok, `"place":"a"`, `"place":"zz"`, 1) + hist +
			`{"kind":"end","versions":1,"tokens":1,"historyEntries":1,"events":0}` + "\n", "place 'zz'"},
		"long line": {header + version + `{"kind":"token","token":{"data":"` + strings.Repeat("x", 17<<20) + `"}}` + "\n", "longer than"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := importFile(t, s, []byte(tc.file), false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if errors.Is(err, fail.ErrInternal) {
				t.Fatalf("internal error for a bad file: %v", err)
			}
		})
	}
	// The one valid file of the table imports, with a token from another system.
	good := strings.ReplaceAll(header+version+tok+hist+`{"kind":"end","versions":1,"tokens":1,"historyEntries":1,"events":0}`+"\n",
		"111111111111", "222222222222")
	if sum, err := importFile(t, s, []byte(good), false); err != nil || sum.Imported != 1 {
		t.Fatalf("a hand-written file: %v %+v", err, sum)
	}
	got := testkit.Must(s.c.GetToken(ctx(t), "0b6b2f6e-8f7a-4a57-9d7e-222222222222"))
	if got.WorkflowID != "bad" || got.WorkflowVersion != 1 || string(got.Data) != "{}" || string(got.Metadata) != "{}" || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Fatalf("hand-written token: %+v", got)
	}
}

// TestImportConcurrently: two imports of one file at once store every
// token and entry exactly once.
func TestImportConcurrently(t *testing.T) {
	a, b := start(t, ""), start(t, "")
	ids := transferData(t, a, "twice", 300)
	file := exportFile(t, a, "twice", true)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { _, errs[i] = importFile(t, b, file, false) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent import: %v", err)
		}
	}
	sameWorkflow(t, a, b, "twice", ids)
	n := 0
	for _, e := range events(t, b, "twice") {
		if e.EventType == wire.EventTokenImported {
			n++
		}
	}
	if n != len(ids) {
		t.Fatalf("%d token_imported events for %d tokens", n, len(ids))
	}
}

// TestImportTokenParts: over NATS, a token's parts may come in one
// request (each is planned on what the one before wrote), a part after a
// gap is refused, and parts sent again are skipped by number.
func TestImportTokenParts(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	def := &flow.Definition{ID: "parts", Name: "parts", Places: []string{"a"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "loop", FromPlaces: []string{"a"}, ToPlace: "a"}}, CreatedAt: at, UpdatedAt: at, Version: 1}
	testkit.Must(s.c.ImportWorkflow(c, &wire.ImportWorkflowRequest{WorkflowID: "parts", Versions: []*flow.Definition{def}}))
	entries := func(from, to int) []wire.HistoryItem {
		var out []wire.HistoryItem
		for n := from; n <= to; n++ {
			r := flow.TransitionRecord{FromPlace: "a", ToPlace: "a", TransitionID: "loop", Timestamp: at.Add(time.Duration(n) * time.Second),
				IdempotencyKey: fmt.Sprintf("k%d", n)}
			ev := &flow.HistoryEvent{Timestamp: r.Timestamp, Transition: "loop", From: "a", To: "a", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
			if n == 1 {
				r.TransitionID, r.IdempotencyKey, ev = "create", "", nil
			}
			out = append(out, wire.HistoryItem{Record: r, Event: ev})
		}
		return out
	}
	id := "5f0e8d1c-2b3a-4c5d-8e6f-000000000001"
	tok := &flow.Token{ID: id, Place: "a", Data: json.RawMessage(`{"n":70}`), CreatedAt: at, UpdatedAt: at.Add(time.Minute), Revision: 70, Records: 70}
	rep := testkit.Must(s.c.ImportTokens(c, &wire.ImportTokensRequest{WorkflowID: "parts", Tokens: []wire.ImportTokenPart{
		{TokenID: id, First: 1, Entries: entries(1, 30)},
		{TokenID: id, First: 31, Entries: entries(31, 60)},
		{TokenID: id, First: 61, Entries: entries(61, 70), Token: tok, Final: true},
	}}))
	if o := rep.Items; o[0].Outcome != wire.ImportPartial || o[1].Outcome != wire.ImportPartial || o[2].Outcome != wire.ImportImported || o[2].Entries != 10 {
		t.Fatalf("parts in one request: %+v", o)
	}
	if h := testkit.Must(s.c.AllHistory(c, id)); len(h) != 70 || h[69].Event == nil || string(h[69].Event.Data) != `{"n":70}` {
		t.Fatalf("history of %d entries", len(h))
	}
	// The keys of the latest 64 keyed records are remembered: k7 … k70.
	got := testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: id, TransitionID: "loop", IdempotencyKey: "k70"}))
	if got.Revision != 70 {
		t.Fatalf("a retried key fired: revision %d", got.Revision)
	}
	// A gap, and parts sent again.
	id2 := "5f0e8d1c-2b3a-4c5d-8e6f-000000000002"
	tok2 := *tok
	tok2.ID = id2
	rep = testkit.Must(s.c.ImportTokens(c, &wire.ImportTokensRequest{WorkflowID: "parts", Tokens: []wire.ImportTokenPart{
		{TokenID: id2, First: 1, Entries: entries(1, 20)},
		{TokenID: id2, First: 31, Entries: entries(31, 70), Token: &tok2, Final: true},
	}}))
	if o := rep.Items; o[0].Outcome != wire.ImportPartial || o[1].Outcome != wire.ImportFailed || o[1].Code != "BAD_USER_INPUT" ||
		!strings.Contains(o[1].Error, "ends at entry 20") {
		t.Fatalf("a gap: %+v", o)
	}
	rep = testkit.Must(s.c.ImportTokens(c, &wire.ImportTokensRequest{WorkflowID: "parts", Tokens: []wire.ImportTokenPart{
		{TokenID: id2, First: 1, Entries: entries(1, 40)},
		{TokenID: id2, First: 41, Entries: entries(41, 70), Token: &tok2, Final: true},
	}}))
	if o := rep.Items; o[0].Outcome != wire.ImportPartial || o[0].Entries != 20 || o[1].Outcome != wire.ImportImported || o[1].Entries != 30 {
		t.Fatalf("parts again: %+v", o)
	}
	if _, err := s.c.GetToken(c, id2); err != nil {
		t.Fatal(err)
	}
	// Another file's entries for a token whose history is under way: a conflict.
	id3 := "5f0e8d1c-2b3a-4c5d-8e6f-000000000003"
	testkit.Must(s.c.ImportTokens(c, &wire.ImportTokensRequest{WorkflowID: "parts", Tokens: []wire.ImportTokenPart{{TokenID: id3, First: 1, Entries: entries(1, 5)}}}))
	other := entries(1, 10)
	other[4].Record.TriggeredBy = "someone else"
	rep = testkit.Must(s.c.ImportTokens(c, &wire.ImportTokensRequest{WorkflowID: "parts", Tokens: []wire.ImportTokenPart{{TokenID: id3, First: 1, Entries: other}}}))
	if o := rep.Items[0]; o.Outcome != wire.ImportConflict {
		t.Fatalf("another file's history: %+v", o)
	}
}

// TestExportImportArchivedAndTimers: archived tokens are exported and
// imported as archived (readable by id, in no listing); a live token
// with a timer gets its timer scheduled on import, and it fires there.
func TestExportImportArchivedAndTimers(t *testing.T) {
	from, to, c := start(t, ""), start(t, ""), ctx(t)
	testkit.Must(from.c.CreateWorkflow(c, &wire.CreateWorkflowRequest{ID: "later", Name: "later", Places: []string{"a", "b"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "escalate", FromPlaces: []string{"a"}, ToPlace: "b", After: "PT5S"}}})) // long enough for both imports
	live := testkit.Must(from.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "later"}))
	gone := testkit.Must(from.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "later"}))
	testkit.Must(from.c.ArchiveToken(c, &wire.ArchiveTokenRequest{TokenID: gone.ID}))
	file := exportFile(t, from, "later", false)
	if sum, err := importFile(t, to, file, false); err != nil || sum.Imported != 2 {
		t.Fatalf("import: %v %+v", err, sum)
	}
	archived := testkit.Must(to.c.GetToken(c, gone.ID))
	if archived.ArchivedAt == nil || len(testkit.Must(to.c.ListTokens(c, "later", wire.Page{})).Items) != 1 {
		t.Fatalf("the archived token imported as %+v", archived)
	}
	if sum, err := importFile(t, to, file, false); err != nil || sum.Imported != 0 {
		t.Fatalf("a second import: %v %+v", err, sum)
	}
	testkit.Poll(t, 20*time.Second, "the imported token's timer fires", func() bool {
		return testkit.Must(to.c.GetToken(c, live.ID)).Place == "b"
	})
}
