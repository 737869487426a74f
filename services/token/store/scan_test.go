package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/natstest"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// writeStates publishes the states of n tokens in place (ids
// <place>-000000 …), without rollups, and returns the stream sequence
// of the last one.
func writeStates(t testing.TB, ctx context.Context, js jetstream.JetStream, wf, place string, n int) uint64 {
	t.Helper()
	var last jetstream.PubAckFuture
	for i := range n {
		last = publishState(t, js, wf, place, fmt.Sprintf("%s-%06d", place, i), false)
	}
	return settle(t, ctx, js, last)
}

// publishState publishes a token's state in place, or its tombstone there.
func publishState(t testing.TB, js jetstream.JetStream, wf, place, id string, tombstone bool) jetstream.PubAckFuture {
	t.Helper()
	m := nats.NewMsg(subjects.TokenState(wf, place, id))
	if tombstone {
		m.Header.Set(subjects.HeaderTokenOp, subjects.TokenOpDelete)
	} else {
		data, err := encodeState(&flow.Token{ID: id, WorkflowID: wf, Place: place, Revision: 1})
		if err != nil {
			t.Fatal(err)
		}
		m.Data = data
	}
	f, err := js.PublishMsgAsync(m)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// settle waits for every asynchronous publish and returns the sequence of last.
func settle(t testing.TB, ctx context.Context, js jetstream.JetStream, last jetstream.PubAckFuture) uint64 {
	t.Helper()
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if last == nil {
		return 0
	}
	select {
	case ack := <-last.Ok():
		return ack.Sequence
	case err := <-last.Err():
		t.Fatal(err)
	}
	return 0
}

// BenchmarkScan reads pages of tokens in a place with the pager
// (tokensInPlace, token lists) while other places' tokens follow in the
// stream: 1,000 and 100,000 of them, past the 64Ki subjects above which
// nats-server stops skipping blocks for a wildcard filter. A batch get
// that asks for more messages than match searches the rest of the stream
// for one more; the cases are a small place (100 tokens, one page), a
// full page of 1,000 in a big place, an empty place, and the page after
// the last token of a place (empty). Setting up 100,000 tokens takes a
// few seconds.
//
//	go test ./services/token/store -run '^$' -bench Scan -benchtime 100x
func BenchmarkScan(b *testing.B) {
	for _, hay := range []int{1_000, 100_000} {
		ctx, st, w, _ := groupStore(b)
		lastSmall := writeStates(b, ctx, st.js, w.id, "small", 100)
		writeStates(b, ctx, st.js, w.id, "big", hay)
		first, err := st.scan(ctx, w.id, subjects.PlaceTokens(w.id, "big"), wire.Page{First: 500})
		if err != nil || first.Next == "" {
			b.Fatalf("first page: %v, next %q", err, first.Next)
		}
		for _, c := range []struct {
			name  string
			place string
			page  wire.Page
			want  int
		}{
			{"small place", "small", wire.Page{}, 100},
			{"small place (page of 1000)", "small", wire.Page{First: 1000}, 100},
			{"full page of 1000", "big", wire.Page{First: 1000}, 1000},
			{"empty place", "none", wire.Page{}, 0},
			{"after the last token", "small", wire.Page{After: fmt.Sprint(lastSmall)}, 0},
			{"second page of 500", "big", wire.Page{First: 500, After: first.Next}, 500},
		} {
			b.Run(fmt.Sprintf("%s/stream=%d", c.name, 100+hay), func(b *testing.B) {
				for b.Loop() {
					p, err := st.scan(ctx, w.id, subjects.PlaceTokens(w.id, c.place), c.page)
					if err != nil || len(p.Items) != c.want {
						b.Fatalf("%v: %d tokens, want %d", err, len(p.Items), c.want)
					}
				}
			})
		}
	}
}

// BenchmarkScanAfterRestart reads the small place of BenchmarkScan
// (100 tokens followed by 100,000 others) once after each restart of the
// server, when the server has loaded no block yet. Here a search past
// the place's last token did not cost much more than without it: the
// stream is a few blocks of small states, just written (in the OS's page
// cache); a workflow's real stream, with histories, events and index
// entries between its states, has many more blocks. The restarts are not
// timed.
//
//	go test ./services/token/store -run '^$' -bench ScanAfterRestart -benchtime 3x
func BenchmarkScanAfterRestart(b *testing.B) {
	dir := b.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := natstest.ServerAt(b, dir)
	js, err := jetstream.New(natstest.Connect(b, ns))
	if err != nil {
		b.Fatal(err)
	}
	const wf = "cold"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: subjects.StreamName(wf), Subjects: subjects.StreamSubjects(wf),
		AllowDirect: true, AllowRollup: true, AllowAtomicPublish: true, AllowMsgTTL: true}); err != nil {
		b.Fatal(err)
	}
	def, _ := json.Marshal(flow.Definition{ID: wf, Name: wf, Places: []string{"small", "big"}, InitialPlace: "small"})
	if _, err := js.Publish(ctx, subjects.Definition(wf), def); err != nil {
		b.Fatal(err)
	}
	writeStates(b, ctx, js, wf, "small", 100)
	writeStates(b, ctx, js, wf, "big", 100_000)
	ns.Shutdown()
	ns.WaitForShutdown()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		ns := natstest.ServerAt(b, dir)
		nc := natstest.Connect(b, ns)
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		st, err := Open(ctx, js, zerolog.Nop(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.workflow(ctx, wf); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		p, err := st.scan(ctx, wf, subjects.PlaceTokens(wf, "small"), wire.Page{})
		b.StopTimer()
		if err != nil || len(p.Items) != 100 {
			b.Fatalf("%v: %d tokens, want 100", err, len(p.Items))
		}
		st.Close()
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// TestScanPages pages through places with every page size that can end a
// page on, before or after a place's edges (a small place followed by many
// other tokens, a place exactly a multiple of the page size, an empty
// place, a place whose tokens are interleaved with other places',
// tombstones and states superseded on the same subject, the first one
// included, and a whole workflow's list), and checks each page, its Next
// and the walk against a model of the pager: the scan reads the newest
// message of each subject after the cursor in stream order, a later
// message on a subject supersedes an earlier one in the same page,
// tombstones are skipped, the cursor is the sequence of the last message
// read, and a full page has a Next when, and only when, more messages
// match after it. Where every subject holds one message (rollups), the
// walk also lists every live token exactly once.
func TestScanPages(t *testing.T) {
	ctx, st, w, _ := groupStore(t)
	var log []scanMsg // every message of the stream's places, in stream order
	put := func(place, id string, dead, rollup bool) {
		m := nats.NewMsg(subjects.TokenState(w.id, place, id))
		if dead {
			m.Header.Set(subjects.HeaderTokenOp, subjects.TokenOpDelete)
		} else {
			m.Data, _ = encodeState(&flow.Token{ID: id, WorkflowID: w.id, Place: place, Revision: uint64(len(log) + 1)})
		}
		if rollup {
			m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
			log = slices.DeleteFunc(log, func(o scanMsg) bool { return o.subj == m.Subject })
		}
		ack, err := st.js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, scanMsg{seq: ack.Sequence, subj: m.Subject, id: id, dead: dead})
	}
	for i := range 5 {
		put("small", fmt.Sprintf("s%d", i), false, false)
	}
	for i := range 10 {
		put("edge", fmt.Sprintf("e%d", i), false, false)
	}
	for i := range 30 {
		put("mixed", fmt.Sprintf("m%02d", i), false, false)
		put("other", fmt.Sprintf("o%02d", i), false, false)
		if i%3 == 0 {
			put("other", fmt.Sprintf("o%02d", i), true, true) // left: a tombstone, rolled up
		}
	}
	for _, i := range []int{0, 4, 5, 17, 29} { // superseded by a tombstone, the place's first message included
		put("mixed", fmt.Sprintf("m%02d", i), true, false)
	}
	for _, i := range []int{1, 9, 10, 28} { // superseded by a newer state
		put("mixed", fmt.Sprintf("m%02d", i), false, false)
		put("other", fmt.Sprintf("x%02d", i), false, false)
	}
	for _, i := range []int{2, 3} { // moved away, rolled up: one tombstone each
		put("mixed", fmt.Sprintf("m%02d", i), true, true)
		put("other", fmt.Sprintf("m%02d", i), false, false)
	}
	for i := range 300 { // many tokens after the others
		put("tail", fmt.Sprintf("t%03d", i), false, true)
	}

	for _, tc := range []struct {
		name, filter string
		sizes        []int
		once         bool // one message per subject: every live token exactly once
	}{
		{"small place", subjects.PlaceTokens(w.id, "small"), []int{1, 2, 4, 5, 6, 100}, true},
		{"place of page multiples", subjects.PlaceTokens(w.id, "edge"), []int{1, 2, 5, 9, 10, 11}, true},
		{"empty place", subjects.PlaceTokens(w.id, "none"), []int{1, 100}, true},
		{"interleaved, tombstones, superseded", subjects.PlaceTokens(w.id, "mixed"), []int{1, 2, 3, 4, 5, 7, 10, 20, 22, 23, 24, 30, 100}, false},
		{"rolled-up place", subjects.PlaceTokens(w.id, "tail"), []int{1, 7, 100, 150, 299, 300, 301, 1000}, true},
		{"every place", subjects.AllTokens(w.id), []int{1, 3, 100, 211, 1000}, false},
	} {
		var msgs []scanMsg
		for _, m := range log {
			if matches(tc.filter, m.subj) {
				msgs = append(msgs, m)
			}
		}
		for _, size := range tc.sizes {
			var walk []string
			for after, pages := uint64(0), 0; ; pages++ {
				if pages > len(msgs)+1 {
					t.Fatalf("%s, pages of %d: no end", tc.name, size)
				}
				got, err := st.scan(ctx, w.id, tc.filter, wire.Page{First: size, After: fmt.Sprint(after)})
				if err != nil {
					t.Fatalf("%s, pages of %d: %v", tc.name, size, err)
				}
				ids, next := modelPage(msgs, size, after)
				if gotIDs := tokenIDs(got.Items); !slices.Equal(gotIDs, ids) || got.Next != next {
					t.Fatalf("%s, pages of %d after %d: %v next %q, want %v next %q", tc.name, size, after, gotIDs, got.Next, ids, next)
				}
				walk = append(walk, ids...)
				if got.Next == "" {
					break
				}
				after, _ = strconv.ParseUint(got.Next, 10, 64)
			}
			if tc.once {
				if live := liveIDs(msgs); !slices.Equal(walk, live) {
					t.Fatalf("%s, pages of %d: walked %v, want each of %v once", tc.name, size, walk, live)
				}
			}
		}
	}
}

type scanMsg struct {
	seq      uint64
	subj, id string
	dead     bool
}

// modelPage is the page of at most size live tokens after cursor after
// that the pager should return, and its Next.
func modelPage(msgs []scanMsg, size int, after uint64) ([]string, string) {
	var items []string
	seen := map[string]int{}
	live, last, rest := 0, after, false
	for _, m := range msgs {
		if m.seq <= after {
			continue
		}
		if live >= size {
			rest = true
			break
		}
		last = m.seq
		if i, ok := seen[m.subj]; ok {
			items[i], live = "", live-1
			delete(seen, m.subj)
		}
		if !m.dead {
			seen[m.subj], live = len(items), live+1
			items = append(items, m.id)
		}
	}
	items = slices.DeleteFunc(items, func(id string) bool { return id == "" })
	if live >= size && rest {
		return items, fmt.Sprint(last)
	}
	return items, ""
}

// liveIDs lists the tokens whose subject's newest message is a state, in
// stream order (one message per subject).
func liveIDs(msgs []scanMsg) []string {
	var ids []string
	for _, m := range msgs {
		if !m.dead {
			ids = append(ids, m.id)
		}
	}
	return ids
}

func tokenIDs(ts []*flow.Token) []string {
	ids := []string{}
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return ids
}

// matches reports whether subject matches filter, whose wildcards are '*'.
func matches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	if len(f) != len(s) {
		return false
	}
	for i := range f {
		if f[i] != "*" && f[i] != s[i] {
			return false
		}
	}
	return true
}
