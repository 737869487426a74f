package systemtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

var searchAttrs = []flow.SearchAttribute{{Path: "data.priority", Type: flow.Number}, {Path: "metadata.dept", Type: flow.Keyword},
	{Path: "data.urgent", Type: flow.Bool}, {Path: "data.due", Type: flow.Time}}

func searchable(id string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{ID: id, Name: "s", Places: []string{"a", "b", "c"}, InitialPlace: "a", SearchAttributes: searchAttrs,
		Transitions: []flow.Transition{{ID: "ab", FromPlaces: []string{"a"}, ToPlace: "b"}, {ID: "bc", FromPlaces: []string{"b"}, ToPlace: "c"}}}
}

// sample is what the brute-force check knows of a token.
type sample struct {
	priority *float64
	dept     string
	urgent   *bool
	place    string
	wf       string
}

func sampleOf(t *flow.Token) sample {
	var d struct {
		Priority *float64 `json:"priority"`
		Urgent   *bool    `json:"urgent"`
	}
	var m struct {
		Dept string `json:"dept"`
	}
	_ = json.Unmarshal(t.Data, &d)
	_ = json.Unmarshal(t.Metadata, &m)
	return sample{priority: d.Priority, dept: m.Dept, urgent: d.Urgent, place: t.Place, wf: t.WorkflowID}
}

func randomData(r *rand.Rand) (json.RawMessage, json.RawMessage) {
	data := map[string]any{"due": time.Date(2026, 1, 1+r.IntN(300), 0, 0, 0, 0, time.UTC).Format(time.RFC3339)}
	if r.IntN(10) > 0 {
		data["priority"] = r.IntN(10)
	}
	if r.IntN(2) == 0 {
		data["urgent"] = r.IntN(2) == 0
	}
	md := map[string]any{}
	if r.IntN(8) > 0 {
		md["dept"] = []string{"eng", "ops", "hr"}[r.IntN(3)]
	}
	d, _ := json.Marshal(data)
	m, _ := json.Marshal(md)
	return d, m
}

// TestSearchEqualsBruteForce: findTokens and countTokens over two
// workflows (one with two versions), tokens created, moved and updated
// by concurrent writers, answer exactly what a filter over every token
// gives, right after the writes; paging walks every match once.
func TestSearchEqualsBruteForce(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	testkit.Must(s.c.CreateWorkflow(c, searchable("s1")))
	testkit.Must(s.c.CreateWorkflow(c, searchable("s2")))
	v2 := searchable("s1")
	v2.Places = append(v2.Places, "d")
	testkit.Must(s.c.UpdateWorkflow(c, &wire.UpdateWorkflowRequest{CreateWorkflowRequest: *v2, ExpectedVersion: 1}))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 40 {
				d, m := randomData(r)
				wf, version := "s2", 0
				if i%2 == 0 {
					wf, version = "s1", 1+(i/2)%2 // both versions of s1
				}
				tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf, Data: d, Metadata: m, WorkflowVersion: version}))
				if r.IntN(3) == 0 {
					testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "ab"}))
				}
				if r.IntN(3) == 0 { // a new value for every attribute, some dropped
					d, m := randomData(r)
					testkit.Must(s.c.UpdateToken(c, &wire.UpdateTokenRequest{TokenID: tok.ID, Data: d, ReplaceData: true, Metadata: m}))
				}
			}
		}()
	}
	wg.Wait()
	var all []*flow.Token
	for _, wf := range []string{"s1", "s2"} {
		for p := (wire.Page{First: 1000}); ; {
			page := testkit.Must(s.c.ListTokens(c, wf, p))
			all = append(all, page.Items...)
			if page.Next == "" {
				break
			}
			p.After = page.Next
		}
	}
	num := func(v float64) json.RawMessage { return json.RawMessage(fmt.Sprint(v)) }
	str := func(v string) json.RawMessage { return json.RawMessage(`"` + v + `"`) }
	cases := []struct {
		name   string
		filter wire.TokenFilter
		want   func(sample) bool
		count  int
	}{
		{"dept eng", wire.TokenFilter{Metadata: map[string]json.RawMessage{"dept": str("eng")}}, func(x sample) bool { return x.dept == "eng" }, 0},
		{"priority 7", wire.TokenFilter{Data: map[string]json.RawMessage{"priority": num(7)}}, func(x sample) bool { return x.priority != nil && *x.priority == 7 }, 0},
		{"priority in [3, 6)", wire.TokenFilter{Ranges: []wire.Range{{Path: "data.priority", Gte: num(3), Lt: num(6)}}},
			func(x sample) bool { return x.priority != nil && *x.priority >= 3 && *x.priority < 6 }, 0},
		{"ops in b", wire.TokenFilter{Places: []string{"b"}, Metadata: map[string]json.RawMessage{"dept": str("ops")}},
			func(x sample) bool { return x.dept == "ops" && x.place == "b" }, 0},
		{"urgent or hr", wire.TokenFilter{Or: []wire.TokenFilter{{Data: map[string]json.RawMessage{"urgent": json.RawMessage("true")}},
			{Metadata: map[string]json.RawMessage{"dept": str("hr")}}}},
			func(x sample) bool { return (x.urgent != nil && *x.urgent) || x.dept == "hr" }, 0},
		{"place a, priority > 4", wire.TokenFilter{Places: []string{"a"}, And: []wire.TokenFilter{{Ranges: []wire.Range{{Path: "data.priority", Gt: num(4)}}}}},
			func(x sample) bool { return x.place == "a" && x.priority != nil && *x.priority > 4 }, 0},
		{"everything", wire.TokenFilter{}, func(sample) bool { return true }, 0},
	}
	for i, tc := range cases {
		var want []string
		for _, tok := range all {
			if tc.want(sampleOf(tok)) {
				want = append(want, tok.WorkflowID+"/"+tok.ID)
			}
		}
		slices.Sort(want)
		f := tc.filter
		f.WorkflowIDs = []string{"s1", "s2"}
		var got []string
		for p := (wire.Page{First: 37}); ; {
			page := testkit.Must(s.c.FindTokens(c, &wire.FindTokensRequest{Filter: f, Page: p}))
			for _, tok := range page.Items {
				got = append(got, tok.WorkflowID+"/"+tok.ID)
			}
			if page.Next == "" {
				break
			}
			p.After = page.Next
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d found, brute force %d\n got %v\nwant %v", tc.name, len(got), len(want), got, want)
		}
		if n := testkit.Must(s.c.CountTokens(c, f)); n != len(want) {
			t.Errorf("%s: count %d, want %d", tc.name, n, len(want))
		}
		cases[i].count = len(want)
		t.Logf("%s: %d of %d tokens", tc.name, len(want), len(all))
	}
	// Over GraphQL, without workflowIds: every workflow declaring the keys.
	var found []struct{ ID, WorkflowID string }
	s.ok(t, `{ findTokens(filter:{metadata:{dept:"eng"}}, first: 1000){ id workflowId } }`, nil, "findTokens", &found)
	var n int
	s.ok(t, `{ countTokens(filter:{metadata:{dept:"eng"}}) }`, nil, "countTokens", &n)
	if len(found) != cases[0].count || n != cases[0].count {
		t.Errorf("GraphQL found %d and counted %d eng tokens, want %d", len(found), n, cases[0].count)
	}
	// Read your writes: a changed value is found under the new value at once.
	tok := all[0]
	testkit.Must(s.c.UpdateToken(c, &wire.UpdateTokenRequest{TokenID: tok.ID, Metadata: json.RawMessage(`{"dept":"fresh"}`)}))
	f := wire.TokenFilter{WorkflowIDs: []string{tok.WorkflowID}, Metadata: map[string]json.RawMessage{"dept": str("fresh")}}
	if page := testkit.Must(s.c.FindTokens(c, &wire.FindTokensRequest{Filter: f})); len(page.Items) != 1 || page.Items[0].ID != tok.ID {
		t.Fatalf("right after the update: %+v", page.Items)
	}
	_, err := s.c.FindTokens(c, &wire.FindTokensRequest{Filter: wire.TokenFilter{WorkflowIDs: []string{"s1"}, Data: map[string]json.RawMessage{"colour": str("red")}}})
	if !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), "metadata.dept (KEYWORD)") {
		t.Fatalf("an undeclared key: %v", err)
	}
}

// TestImportedTokensAreSearchable: an import writes its tokens' index
// entries with their states, so findTokens finds them in the new
// deployment; so does the import of a token too long for one batch.
func TestImportedTokensAreSearchable(t *testing.T) {
	from, to, c := start(t, ""), start(t, ""), ctx(t)
	testkit.Must(from.c.CreateWorkflow(c, searchable("moved")))
	want := 0
	for i := range 12 {
		dept := []string{"eng", "ops"}[i%2]
		testkit.Must(from.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "moved", Metadata: json.RawMessage(`{"dept":"` + dept + `"}`)}))
		if dept == "eng" {
			want++
		}
	}
	sum, err := importFile(t, to, exportFile(t, from, "moved", false), false)
	if err != nil {
		t.Fatalf("import: %v (%+v)", err, sum)
	}
	f := wire.TokenFilter{WorkflowIDs: []string{"moved"}, Metadata: map[string]json.RawMessage{"dept": json.RawMessage(`"eng"`)}}
	if n := testkit.Must(to.c.CountTokens(c, f)); n != want {
		t.Fatalf("%d imported eng tokens found, want %d", n, want)
	}
	// A token whose history takes more than one batch is imported in
	// chunks: its entries come with the last one.
	loop, _ := loopWorkflow("movedlong")
	loop.SearchAttributes = searchAttrs
	testkit.Must(from.c.CreateWorkflow(c, loop))
	long := testkit.Must(from.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "movedlong", Metadata: json.RawMessage(`{"dept":"eng"}`)}))
	for i := range 1100 {
		testkit.Must(from.c.Fire(c, &wire.FireRequest{TokenID: long.ID, TransitionID: []string{"go", "back"}[i%2]}))
	}
	if sum, err := importFile(t, to, exportFile(t, from, "movedlong", false), false); err != nil {
		t.Fatalf("import: %v (%+v)", err, sum)
	}
	f.WorkflowIDs = []string{"movedlong"}
	if page := testkit.Must(to.c.FindTokens(c, &wire.FindTokensRequest{Filter: f})); len(page.Items) != 1 || page.Items[0].Records != 1101 {
		t.Fatalf("the imported token with 1,101 history entries: found %+v", page.Items)
	}
}
