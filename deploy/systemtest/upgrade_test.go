package systemtest

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// TestUpgradeFromV1 starts this release on a data directory written by
// the storage-v1 release (testdata/upgrade) and compares every field of
// every token, history included, and every event with what v1 answered.
// The only field that may differ is a token's natsSequence: the upgrade
// rewrites each state message once. It then restarts (nothing to upgrade
// again) and compares again, and a token keeps working after it.
func TestUpgradeFromV1(t *testing.T) {
	dir := t.TempDir()
	untar(t, "testdata/upgrade/v1-data.tar.gz", dir)
	var want struct {
		Tokens []map[string]any            `json:"tokens"`
		Events map[string][]map[string]any `json:"events"`
	}
	testkit.Must(0, json.Unmarshal(testkit.Must(os.ReadFile("testdata/upgrade/expected.json")), &want))
	data := filepath.Join(dir, "data")
	for round := range 2 { // upgrade, then a restart on the upgraded data
		s := start(t, data)
		compareUpgraded(t, s, want.Tokens, want.Events)
		for _, wf := range []string{"orders", "acme::docs"} {
			st := testkit.Must(s.stackJS().Stream(ctx(t), subjects.StreamName(wf)))
			if _, err := st.GetLastMsgForSubject(ctx(t), subjects.Layout(wf)); err != nil {
				t.Fatalf("%s has no layout record after the upgrade: %v", wf, err)
			}
		}
		for _, w := range want.Tokens { // the history is on its own subject now
			if n := len(testkit.Must(s.c.AllHistory(ctx(t), w["id"].(string)))); n != len(w["transitionHistory"].([]any)) {
				t.Fatalf("token %s: %d history entries, want %d", w["id"], n, len(w["transitionHistory"].([]any)))
			}
		}
		if round == 1 {
			id := want.Tokens[0]["id"].(string)
			r := s.gql(t, `mutation($id:String!){ updateToken(input:{tokenId:$id, data:{after:"upgrade"}}){ revision } }`, map[string]any{"id": id})
			if len(r.Errors) > 0 {
				t.Fatalf("a change after the upgrade: %+v", r.Errors)
			}
		}
		s.stop()
	}
}

const upgradeTokenFields = `id workflowId place data metadata createdAt updatedAt revision natsSequence natsSubject natsTimestamp
 history { timestamp transition fromPlace toPlace data }
 transitionHistory { fromPlace toPlace transitionId timestamp triggeredBy natsSequence metadata }`

func compareUpgraded(t *testing.T, s *system, tokens []map[string]any, events map[string][]map[string]any) {
	t.Helper()
	for _, w := range tokens {
		var got map[string]any
		s.ok(t, `query($id:String!){ token(id:$id){ `+upgradeTokenFields+` } }`, map[string]any{"id": w["id"]}, "token", &got)
		if got["natsSequence"] == nil {
			t.Fatalf("token %s has no natsSequence", w["id"])
		}
		got["natsSequence"] = w["natsSequence"] // rewritten once by the upgrade
		if !reflect.DeepEqual(got, w) {
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(w)
			t.Fatalf("token %s after the upgrade:\n got %s\nwant %s", w["id"], gb, wb)
		}
	}
	for wf, w := range events {
		var got []map[string]any
		s.ok(t, `query($w:String!){ events(workflowId:$w, first:1000){ eventType workflowId tokenId place fromPlace toPlace transitionId timestamp triggeredBy natsSequence revision sequence } }`,
			map[string]any{"w": wf}, "events", &got)
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("events of %s after the upgrade: %d, want %d (or different)", wf, len(got), len(w))
		}
	}
}

// untar unpacks a .tar.gz into dir.
func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f := testkit.Must(os.Open(archive))
	defer f.Close()
	tr := tar.NewReader(testkit.Must(gzip.NewReader(f)))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			testkit.Must(0, os.MkdirAll(path, 0o755))
		case tar.TypeReg:
			testkit.Must(0, os.MkdirAll(filepath.Dir(path), 0o755))
			out := testkit.Must(os.Create(path))
			testkit.Must(io.Copy(out, tr))
			testkit.Must(0, out.Close())
		}
	}
}
