package store

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// TestIndexedIDsBothWays: the index entries of a value are read in one
// multi-last get up to the server's 1024 subjects and by a scan past it;
// either way a tombstone written after an entry removes it, and keep
// filters by value.
func TestIndexedIDsBothWays(t *testing.T) {
	ctx, st, w, _ := groupStore(t)
	js := st.js
	few := writeEntries(t, ctx, js, w.id, "kfew", 3, 1)
	many := writeEntries(t, ctx, js, w.id, "kmany", 1100, 7)
	if n := 1100 + 7; n <= 1024 {
		t.Fatalf("%d subjects do not pass the multi-get limit", n)
	}
	for _, tc := range []struct {
		name   string
		filter string
		keep   func(string) bool
		want   []string
	}{
		{"few (multi-last get)", subjects.IndexValue(w.id, "metadata:team", "kfew"), nil, few},
		{"many (scan)", subjects.IndexValue(w.id, "metadata:team", "kmany"), nil, many},
		{"every value, keep few (scan)", subjects.IndexKey(w.id, "metadata:team"), func(v string) bool { return v == "kfew" }, few},
		{"no such value", subjects.IndexValue(w.id, "metadata:team", "knone"), nil, nil},
	} {
		got, err := st.IndexedIDs(ctx, w.id, tc.filter, tc.keep)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %d ids, want %d", tc.name, len(got), len(tc.want))
		}
	}
}

// writeEntries publishes live index entries of value for n tokens, and
// for dead more tokens an entry and then its tombstone (no rollup: both
// stay). It returns the live tokens' ids, sorted.
func writeEntries(t testing.TB, ctx context.Context, js jetstream.JetStream, wf, value string, n, dead int) []string {
	t.Helper()
	var live []string
	for i := range n + dead {
		id := fmt.Sprintf("%s-%06d", value, i)
		subj := subjects.IndexEntry(wf, "metadata:team", value, id)
		publishAsync(t, js, nats.NewMsg(subj))
		if i >= n {
			m := nats.NewMsg(subj)
			m.Header.Set(subjects.HeaderTokenOp, subjects.TokenOpDelete)
			publishAsync(t, js, m)
			continue
		}
		live = append(live, id)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return live
}

func publishAsync(t testing.TB, js jetstream.JetStream, m *nats.Msg) {
	t.Helper()
	if _, err := js.PublishMsgAsync(m); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkIndexedIDs finds the 100 entries of one value among 1,000 and
// among 70,000 entries (past the 64Ki subjects above which nats-server
// stops skipping blocks for a wildcard filter), by the multi-last get
// IndexedIDs uses and by a scan from the start of the stream as it used
// to. The scan's cost grows with the entries after the last match; the
// multi-last get's does not. Setting up 70,000 entries takes a few
// seconds.
//
//	go test ./services/token/store -run '^$' -bench IndexedIDs -benchtime 200x
func BenchmarkIndexedIDs(b *testing.B) {
	for _, hay := range []int{900, 69_900} {
		ctx, st, w, _ := groupStore(b)
		writeEntries(b, ctx, st.js, w.id, "kneedle", 100, 0)
		writeEntries(b, ctx, st.js, w.id, "khay", hay, 0)
		filter := subjects.IndexValue(w.id, "metadata:team", "kneedle")
		for _, way := range []struct {
			name string
			read func(context.Context, string, string, func(*jetstream.RawStreamMsg)) error
		}{{"last", st.lastEntries}, {"scan", st.scanEntries}} {
			b.Run(fmt.Sprintf("%s/entries=%d", way.name, 100+hay), func(b *testing.B) {
				for b.Loop() {
					n := 0
					if err := way.read(ctx, w.id, filter, func(*jetstream.RawStreamMsg) { n++ }); err != nil || n != 100 {
						b.Fatalf("%d entries, %v", n, err)
					}
				}
			})
		}
	}
}
