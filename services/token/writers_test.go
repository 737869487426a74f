package token

import (
	"fmt"
	"testing"

	"github.com/cbnats/circuitbreaker/shared/metrics"
)

// TestWritersSpreadWorkflows: instances agree on each workflow's writer
// and share the workflows about evenly; when one goes, only its share
// moves.
func TestWritersSpreadWorkflows(t *testing.T) {
	a, b, c := newWriters(nil, metrics.NewRegistry()), newWriters(nil, metrics.NewRegistry()), newWriters(nil, metrics.NewRegistry())
	all := []string{a.self, b.self, c.self}
	for _, w := range []*writers{a, b, c} {
		w.members = all
	}
	const n = 300
	share := map[string]int{}
	before := map[string]string{}
	for i := range n {
		wf := fmt.Sprint("workflow-", i)
		owner := a.writerOf(wf)
		if b.writerOf(wf) != owner || c.writerOf(wf) != owner {
			t.Fatalf("%s: instances disagree on its writer", wf)
		}
		share[owner]++
		before[wf] = owner
	}
	for _, m := range all {
		if share[m] < n/3-40 || share[m] > n/3+40 {
			t.Fatalf("shares %v of %d workflows: not about a third each", share, n)
		}
	}
	a.drop(c.self)
	for wf, owner := range before {
		if now := a.writerOf(wf); owner != c.self && now != owner {
			t.Fatalf("%s moved from %s to %s though its writer stayed", wf, owner, now)
		}
	}
}
