package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/transfer"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// importEndpoints are the import request subjects a client may call.
var importEndpoints = []string{subjects.WorkflowImport.In(subjects.AllTenants), subjects.TokenImport.In(subjects.AllTenants),
	subjects.TokenImportEvents.In(subjects.AllTenants)}

const (
	fuzzDef   = `{"id":"fzi","name":"n","places":["a","b"],"initialPlace":"a","transitions":[{"id":"t","fromPlaces":["a"],"toPlace":"b"}],"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z","version":1}`
	fuzzToken = `{"id":"7d1c3f1e-4b1a-4c6e-9f00-00000000f022","place":"a","data":{"x":1},"createdAt":"2026-01-01T00:00:00Z","revision":1,"records":1}`
	fuzzEntry = `{"record":{"fromPlace":"a","toPlace":"a","transitionId":"create","timestamp":"2026-01-01T00:00:00Z"}}`
	fuzzEvent = `{"sequence":3,"event":{"event_type":"token_created","workflow_id":"fz","token_id":"7d1c3f1e-4b1a-4c6e-9f00-00000000f022","place":"a","timestamp":"2026-01-01T00:00:00Z","triggered_by":null,"nats_sequence":3}}`
)

// importSeeds are valid and broken bodies of the import endpoints.
func importSeeds() []natsSeed {
	valid := [][]string{
		{`{"workflowId":"fzi","versions":[` + fuzzDef + `]}`, `{"workflowId":"fz","versions":[` + fuzzDef + `],"merge":true}`,
			`{"workflowId":"fzj","versions":[` + strings.Replace(fuzzDef, `"version":1`, `"version":2`, 1) + `]}`, `{"workflowId":"fzi","versions":[null]}`},
		{`{"workflowId":"fz","tokens":[{"tokenId":"7d1c3f1e-4b1a-4c6e-9f00-00000000f022","entries":[` + fuzzEntry + `],"token":` + fuzzToken + `,"final":true}]}`,
			`{"workflowId":"fz","tokens":[{"tokenId":"TOKEN0","first":5,"entries":[` + fuzzEntry + `]}]}`,
			`{"workflowId":"fz","tokens":[{"tokenId":"7d1c3f1e-4b1a-4c6e-9f00-00000000f023","first":-1,"final":true}]}`,
			`{"workflowId":"fz","tokens":[{"tokenId":"7d1c3f1e-4b1a-4c6e-9f00-00000000f024","token":{"id":"x"},"final":true,"entries":[{"record":{"transitionId":"a.b","metadata":[1]},"event":{"data":"\ud800"}}]}]}`},
		{`{"workflowId":"fz","events":[` + fuzzEvent + `]}`, `{"workflowId":"fz","events":[{"sequence":0,"event":{}}]}`,
			`{"workflowId":"fz","events":[{"sequence":9,"event":{"event_type":"x y","timestamp":"2026-01-01T00:00:00Z","token_id":"nope"}}]}`},
	}
	var seeds []natsSeed
	for i := range importEndpoints {
		for _, body := range append(valid[i], brokenBodies...) {
			seeds = append(seeds, natsSeed{uint8(i), body})
		}
	}
	return seeds
}

// FuzzImportEndpoints sends arbitrary bodies to the import endpoints: as
// FuzzNATSEndpoints, and no per-token outcome may be INTERNAL either.
func FuzzImportEndpoints(f *testing.F) {
	for _, seed := range importSeeds() {
		f.Add(seed.endpoint, []byte(seed.body))
	}
	fx := startFuzz(f)
	f.Fuzz(func(t *testing.T, endpointIndex uint8, body []byte) {
		subject := importEndpoints[int(endpointIndex)%len(importEndpoints)]
		r := fx.requestChecked(t, subject, []byte(fx.expand(string(body))), fuzzEdgeBound)
		if r.code != "" || subject != importEndpoints[1] {
			return
		}
		var rep wire.ImportTokensReply
		if err := json.Unmarshal(r.data, &rep); err != nil {
			t.Fatalf("token.import answered %.200q", r.data)
		}
		for _, it := range rep.Items {
			if it.Code == fail.Internal.String() || leak(it.Error, string(body)) != "" {
				t.Fatalf("token.import item %+v\nbody: %.2000s", it, body)
			}
		}
	})
}

// FuzzImportFile imports arbitrary files: the import ends within a bound,
// never with INTERNAL, and its error never carries Go or NATS text.
func FuzzImportFile(f *testing.F) {
	header := `{"kind":"header","format":"circuit-breaker/export","formatVersion":1,"workflowId":"fzf"}` + "\n"
	version := `{"kind":"version","definition":` + strings.Replace(fuzzDef, `"fzi"`, `"fzf"`, 1) + "}\n"
	tok := `{"kind":"token","token":` + fuzzToken + "}\n"
	hist := `{"kind":"history","tokenId":"7d1c3f1e-4b1a-4c6e-9f00-00000000f022","entry":` + fuzzEntry + "}\n"
	end := `{"kind":"end","versions":1,"tokens":1,"historyEntries":1,"events":0}` + "\n"
	event := `{"kind":"event","event":` + strings.Replace(fuzzEvent, `"fz"`, `"fzf"`, 1) + "}\n"
	for _, seed := range []string{header + version + tok + hist + end, header + version + event + tok + hist + end,
		header + version + tok, header + version + hist + tok + end, header + tok, version, "", "\n\n\n", header + header,
		header + version + `{"kind":"error","message":"boom"}` + "\n", header + version + `{"kind":"token","token":{"id":"TOKEN0","revision":-1}}` + "\n" + end} {
		f.Add([]byte(seed))
	}
	fx := startFuzz(f)
	f.Fuzz(func(t *testing.T, file []byte) {
		c, cancel := context.WithTimeout(context.Background(), 4*fuzzEdgeBound)
		defer cancel()
		start := time.Now()
		sum, err := transfer.Import(c, fx.s.c, bytes.NewReader([]byte(fx.expand(string(file)))), transfer.ImportOptions{})
		if took := time.Since(start); took > 4*fuzzEdgeBound || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("import took %v: %v\nfile: %.2000q", took, err, file)
		}
		if err == nil {
			return
		}
		if fail.KindOf(err) == fail.Internal || leak(err.Error(), string(file)) != "" {
			t.Fatalf("import error %v (%s)\nfile: %.2000q", err, fail.KindOf(err), file)
		}
		for _, p := range sum.Problems {
			if p.Code == fail.Internal.String() {
				t.Fatalf("problem %+v\nfile: %.2000q", p, file)
			}
		}
	})
}
