package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Paging through every list of the GraphQL API with a page size that does
// not divide the number of items, while new items are written: every item
// that existed before is seen exactly once, none twice, in the documented
// order.

const (
	pageItems = 23 // items present before paging
	pageSize  = 5
)

// pageItem is one listed item: its identity and its cursor.
type pageItem struct{ key, cursor string }

// pageFunc fetches the page after cursor ("" for the first).
type pageFunc func(after string) []pageItem

// walkPages pages until a short page, while write keeps adding items, and
// returns every item seen in order.
func walkPages(t *testing.T, page pageFunc, write func(n int)) []pageItem {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 0; n < 200; n++ { // bounded: the walk ends long before
			select {
			case <-stop:
				return
			default:
				write(n)
			}
		}
	})
	defer wg.Wait()
	defer close(stop)
	var seen []pageItem
	for after, pages := "", 0; ; pages++ {
		if pages > 100 {
			t.Fatalf("no end after %d pages: the cursor does not move", pages)
		}
		items := page(after)
		if len(items) > pageSize {
			t.Fatalf("page of %d items, asked for %d", len(items), pageSize)
		}
		seen = append(seen, items...)
		if len(items) < pageSize {
			return seen
		}
		after = items[len(items)-1].cursor
	}
}

// assertWalk checks that every key of before was seen exactly once, no
// key twice, and that less orders the whole walk.
func assertWalk(t *testing.T, before []string, seen []pageItem, less func(a, b string) bool) {
	t.Helper()
	count := map[string]int{}
	for i, it := range seen {
		count[it.key]++
		if count[it.key] > 1 {
			t.Errorf("%s seen twice", it.key)
		}
		if i > 0 && !less(seen[i-1].cursor, it.cursor) {
			t.Errorf("out of order: %s then %s", seen[i-1].cursor, it.cursor)
		}
	}
	for _, k := range before {
		if count[k] != 1 {
			t.Errorf("%s seen %d times, want 1", k, count[k])
		}
	}
	t.Logf("%d items before, %d seen while writing", len(before), len(seen))
}

// bySequence orders numeric cursors; byTokenCursor orders workflowId/seq.
func bySequence(a, b string) bool { return seqOf(a) < seqOf(b) }

func byTokenCursor(a, b string) bool {
	wa, sa, _ := strings.Cut(a, "/")
	wb, sb, _ := strings.Cut(b, "/")
	return wa < wb || wa == wb && seqOf(sa) < seqOf(sb)
}

func seqOf(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// tokenPage reads one page of a token list query over GraphQL.
func (s *system) tokenPage(t *testing.T, query string, vars map[string]any) func(after string) []pageItem {
	return func(after string) []pageItem {
		v := map[string]any{"f": pageSize}
		for k, x := range vars {
			v[k] = x
		}
		if after != "" {
			v["a"] = after
		}
		var toks []struct{ ID, Cursor string }
		r := s.gql(t, query, v)
		if len(r.Errors) > 0 {
			t.Fatalf("page after %q: %+v", after, r.Errors)
		}
		for _, raw := range r.Data {
			if err := json.Unmarshal(raw, &toks); err != nil {
				t.Fatal(err)
			}
		}
		out := make([]pageItem, len(toks))
		for i, tk := range toks {
			out[i] = pageItem{key: tk.ID, cursor: tk.Cursor}
		}
		return out
	}
}

// newTokens creates n tokens in wf and returns their ids.
func newTokens(t *testing.T, cx context.Context, s *system, wf string, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		ids = append(ids, testkit.Must(s.c.CreateToken(cx, &wire.CreateTokenRequest{WorkflowID: wf})).ID)
	}
	return ids
}

func TestPagingWorkflows(t *testing.T) {
	s, cx := start(t, ""), ctx(t)
	var before []string
	for i := range pageItems {
		id := fmt.Sprintf("pw_%02d", i*2) // new ones land between them
		testkit.Must(s.c.CreateWorkflow(cx, race(id)))
		before = append(before, id)
	}
	page := func(after string) []pageItem {
		var wfs []struct{ ID string }
		s.ok(t, `query($f:Int,$a:String){ workflows(first:$f, after:$a) { id } }`, map[string]any{"f": pageSize, "a": after}, "workflows", &wfs)
		out := make([]pageItem, len(wfs))
		for i, w := range wfs {
			out[i] = pageItem{key: w.ID, cursor: w.ID}
		}
		return out
	}
	write := func(n int) { testkit.Must(s.c.CreateWorkflow(cx, race(fmt.Sprintf("pw_%02d_new", n)))) }
	assertWalk(t, before, walkPages(t, page, write), func(a, b string) bool { return a < b })
}

func TestPagingTokensOfAWorkflow(t *testing.T) {
	s, cx := start(t, ""), ctx(t)
	testkit.Must(s.c.CreateWorkflow(cx, race("ptw")))
	before := newTokens(t, cx, s, "ptw", pageItems)
	page := s.tokenPage(t, `query($w:String,$f:Int,$a:String){ tokens(workflowId:$w, first:$f, after:$a) { id cursor } }`, map[string]any{"w": "ptw"})
	assertWalk(t, before, walkPages(t, page, func(int) { newTokens(t, cx, s, "ptw", 1) }), byTokenCursor)
}

// TestPagingTokensOfEveryWorkflow pages tokens without workflowId across
// three workflows (the cursor was once ignored there: every page was the
// first).
func TestPagingTokensOfEveryWorkflow(t *testing.T) {
	s, cx := start(t, ""), ctx(t)
	var before []string
	for i, wf := range []string{"pta", "ptb", "ptc"} {
		testkit.Must(s.c.CreateWorkflow(cx, race(wf)))
		before = append(before, newTokens(t, cx, s, wf, 7+i)...) // 24 tokens
	}
	page := s.tokenPage(t, `query($f:Int,$a:String){ tokens(first:$f, after:$a) { id cursor } }`, nil)
	wfs := []string{"pta", "ptb", "ptc"}
	assertWalk(t, before, walkPages(t, page, func(n int) { newTokens(t, cx, s, wfs[n%3], 1) }), byTokenCursor)
}

func TestPagingTokensInPlace(t *testing.T) {
	s, cx := start(t, ""), ctx(t)
	testkit.Must(s.c.CreateWorkflow(cx, race("ptp")))
	before := newTokens(t, cx, s, "ptp", pageItems)
	page := s.tokenPage(t, `query($w:String!,$f:Int,$a:String){ tokensInPlace(workflowId:$w, placeId:"a", first:$f, after:$a) { id cursor } }`, map[string]any{"w": "ptp"})
	assertWalk(t, before, walkPages(t, page, func(int) { newTokens(t, cx, s, "ptp", 1) }), byTokenCursor)
}

func TestPagingEvents(t *testing.T) {
	s, cx := start(t, ""), ctx(t)
	testkit.Must(s.c.CreateWorkflow(cx, race("pev")))
	newTokens(t, cx, s, "pev", pageItems-1) // + workflow_created
	var before []string
	for _, e := range testkit.Must(s.c.History(cx, &wire.HistoryRequest{WorkflowID: "pev", First: 1000})).Items {
		before = append(before, strconv.FormatUint(e.Sequence, 10))
	}
	page := func(after string) []pageItem {
		var evs []struct{ Sequence string }
		s.ok(t, `query($f:Int,$a:String){ events(workflowId:"pev", first:$f, afterSequence:$a) { sequence } }`,
			map[string]any{"f": pageSize, "a": after}, "events", &evs)
		out := make([]pageItem, len(evs))
		for i, e := range evs {
			out[i] = pageItem{key: e.Sequence, cursor: e.Sequence}
		}
		return out
	}
	assertWalk(t, before, walkPages(t, page, func(int) { newTokens(t, cx, s, "pev", 1) }), bySequence)
}

// TestLargeItemsNeverMakeAPageTooLarge: a page stops at wire.MaxPageBytes
// and says where to go on, so that nobody's large tokens or definitions
// can make a list fail for everyone ("reply too large").
func TestLargeItemsNeverMakeAPageTooLarge(t *testing.T) {
	// Megabytes of JSON a request: a generous deadline for busy machines.
	s := startHTTP(t, "", 1, nil, func(h *config.HTTP) { h.Timeout = time.Minute })
	cx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	size, n := 900<<10, 10
	if raceDetector { // JSON of megabytes is ~10× slower under -race: still past one page, lighter
		size = 450 << 10
	}
	big := strings.Repeat("d", size)
	for i := range n {
		w := race(fmt.Sprintf("big%d", i))
		w.Description = big
		testkit.Must(s.c.CreateWorkflow(cx, w))
	}
	data := []byte(`{"s":"` + big + `"}`)
	for range n + 3 {
		testkit.Must(s.c.CreateToken(cx, &wire.CreateTokenRequest{WorkflowID: "big0", Data: data}))
	}
	for _, q := range []string{`{ workflows { id } }`, `{ tokens(workflowId:"big0") { id } }`, `{ tokens { id } }`,
		`{ tokensInPlace(workflowId:"big0", placeId:"a") { id } }`} {
		r := s.gql(t, q, nil)
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %+v", q, r.Errors)
		}
	}
	var toks []struct{ ID string }
	s.ok(t, `{ tokens { id } }`, nil, "tokens", &toks)
	if len(toks) != n+3 {
		t.Fatalf("tokens of every workflow: %d, want %d (pages of large tokens followed)", len(toks), n+3)
	}
	seen, pages := 0, 0
	for after := ""; ; pages++ {
		p := testkit.Must(s.c.ListTokens(cx, "big0", wire.Page{First: 100, After: after}))
		seen += len(p.Items)
		if p.Next == "" {
			break
		}
		after = p.Next
	}
	if seen != n+3 || pages < 1 {
		t.Fatalf("walked %d tokens in %d pages, want %d in several", seen, pages+1, n+3)
	}
}

// TestPagingHistory walks a token's history through GraphQL with
// first/after on both history fields, and asks cb.token.history with a bad
// cursor: every entry once, in order, and a clear error.
func TestPagingHistory(t *testing.T) {
	s, cx := start(t, ""), ctx(t)
	testkit.Must(s.c.CreateWorkflow(cx, race("ph")))
	tok := testkit.Must(s.c.CreateToken(cx, &wire.CreateTokenRequest{WorkflowID: "ph"}))
	for range 11 { // 12 records (create + 11 fires), 11 history events
		testkit.Must(s.c.Fire(cx, &wire.FireRequest{TokenID: tok.ID, TransitionID: "tick"}))
	}
	for field, want := range map[string]int{"transitionHistory": 12, "history": 11} {
		var seen []string
		for after := ""; ; {
			var got struct {
				Token map[string][]struct{ Cursor string }
			}
			r := s.gql(t, `query($id:String!,$a:String){ token(id:$id){ `+field+`(first:5, after:$a){ cursor } } }`,
				map[string]any{"id": tok.ID, "a": after})
			if len(r.Errors) > 0 {
				t.Fatalf("%s after %q: %+v", field, after, r.Errors)
			}
			testkit.Must(0, json.Unmarshal(r.Data["token"], &got.Token))
			page := got.Token[field]
			for _, e := range page {
				seen = append(seen, e.Cursor)
			}
			if len(page) < 5 {
				break
			}
			after = page[len(page)-1].Cursor
		}
		if len(seen) != want {
			t.Fatalf("%s: walked %d entries, want %d", field, len(seen), want)
		}
		for i := 1; i < len(seen); i++ {
			if seqOf(seen[i]) <= seqOf(seen[i-1]) {
				t.Fatalf("%s: cursor %s after %s", field, seen[i], seen[i-1])
			}
		}
	}
	r := s.gql(t, `query($id:String!){ token(id:$id){ history(first:-1){ cursor } } }`, map[string]any{"id": tok.ID})
	if r.code() != "BAD_USER_INPUT" {
		t.Fatalf("history(first:-1): %+v", r.Errors)
	}
	_, err := s.c.TokenHistory(cx, &wire.TokenHistoryRequest{TokenID: tok.ID, After: "not-a-sequence"})
	if fail.KindOf(err) != fail.BadInput {
		t.Fatalf("cb.token.history with a bad cursor: %v", err)
	}
}
