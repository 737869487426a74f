package systemtest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/edge/auth"
)

// TestSchemaContract selects every field of every root operation of the
// real schema and runs it through the real edge and services: mutations
// (which make the data) over POST, queries over POST and graphql-ws,
// subscriptions over graphql-ws and server-sent events. Every answer must
// have no error and conform to its declared types, and by the end every
// reachable field must have been answered with a value at least once, so
// the data covers every shape. The edge authenticates (an all-tenant
// admin key), so triggeredBy is the identity and a client's other name its
// triggeredByClaim.
func TestSchemaContract(t *testing.T) {
	s := startAuthed(t, "", 2, nil, nil, contractAuth(t), "contract-key")
	c := newContract(t)
	fx := &contractFixture{}
	run := 0
	for _, step := range contractMutations() {
		f := c.schema.Mutation.Fields.ForName(step.field)
		if f == nil {
			t.Fatalf("no mutation %s in the schema", step.field)
		}
		doc, root := c.document("mutation", f, step.args(fx))
		r := c.mustConform(t, "POST "+step.field, s.post(t, doc, step.args(fx)), root)
		if step.keep != nil {
			step.keep(fx, r.Data[step.field])
		}
		run++
	}
	settleBuilds(t, s)
	covered := map[string]bool{}
	for _, st := range contractMutations() {
		covered["Mutation."+st.field] = true
	}
	ws := s.dialWS(t)
	for _, f := range c.schema.Query.Fields {
		if strings.HasPrefix(f.Name, "__") {
			continue
		}
		for _, args := range c.argSets(f, fx.scenes()) {
			doc, root := c.document("query", f, args)
			name := fmt.Sprintf("%s(%v)", f.Name, args)
			c.mustConform(t, "POST "+name, s.post(t, doc, args), root)
			res := ws.run(t, doc, args, 50)
			if len(res) != 1 {
				t.Fatalf("graphql-ws %s: %d results, want 1", name, len(res))
			}
			c.mustConform(t, "graphql-ws "+name, res[0], root)
			covered["Query."+f.Name] = true
			run += 2
		}
	}
	for _, f := range c.schema.Subscription.Fields {
		for _, args := range c.argSets(f, fx.scenes()) {
			doc, root := c.document("subscription", f, args)
			name := fmt.Sprintf("%s(%v)", f.Name, args)
			for via, results := range map[string][][]byte{
				"graphql-ws": s.dialWS(t).run(t, doc, args, 50),
				"SSE":        s.sse(t, doc, args, 50),
			} {
				if len(results) == 0 {
					t.Fatalf("%s %s: no result", via, name)
				}
				for _, raw := range results {
					c.mustConform(t, via+" "+name, raw, root)
				}
				run += len(results)
			}
			covered["Subscription."+f.Name] = true
		}
	}
	c.report(t, covered, run)
}

// mustConform decodes an answer and fails the test on any breach.
func (c *contract) mustConform(t *testing.T, what string, raw []byte, root *selection) *response {
	t.Helper()
	r, err := decodeResponse(raw)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if bad := c.check(r, root); len(bad) > 0 {
		if len(bad) > 10 {
			bad = append(bad[:10], fmt.Sprintf("… and %d more", len(bad)-10))
		}
		t.Errorf("%s:\n  %s", what, strings.Join(bad, "\n  "))
	}
	return r
}

// report fails on root fields never run and reachable fields never
// answered with a value, and logs what was skipped.
func (c *contract) report(t *testing.T, covered map[string]bool, run int) {
	t.Helper()
	for _, root := range []*ast.Definition{c.schema.Query, c.schema.Mutation, c.schema.Subscription} {
		for _, f := range root.Fields {
			if !strings.HasPrefix(f.Name, "__") && !covered[root.Name+"."+f.Name] {
				t.Errorf("%s.%s was never run: give its arguments a scene value or a mutation step", root.Name, f.Name)
			}
		}
	}
	var never []string
	for _, k := range c.reachable() {
		if _, skip := c.skipped[k]; !skip && !c.seen[k] {
			never = append(never, k)
		}
	}
	if len(never) > 0 {
		t.Errorf("fields never answered with a value (extend the fixture data): %s", strings.Join(never, ", "))
	}
	var skipped []string
	for k, why := range c.skipped {
		skipped = append(skipped, k+" ("+why+")")
	}
	sort.Strings(skipped)
	t.Logf("%d answers checked; %d fields answered with a value; skipped: %v", run, len(c.seen), skipped)
}

// argSets returns the argument values to run root field f with: for
// each scene that supplies every required argument, the arguments it
// supplies, without duplicates. An argument named id takes the scene's
// id of the field's type (workflowId for a Workflow, tokenId for a Token).
func (c *contract) argSets(f *ast.FieldDefinition, scenes []map[string]any) []map[string]any {
	var out []map[string]any
	dup := map[string]bool{}
	for _, sc := range scenes {
		args := map[string]any{}
		complete := true
		for _, a := range f.Arguments {
			key := a.Name
			if key == "id" {
				key = strings.ToLower(f.Type.Name()[:1]) + f.Type.Name()[1:] + "Id"
			}
			v, ok := sc[key]
			switch {
			case ok:
				args[a.Name] = v
			case a.Type.NonNull && a.DefaultValue == nil:
				complete = false
			}
		}
		if k := fmt.Sprint(args); complete && !dup[k] {
			dup[k] = true
			out = append(out, args)
		}
	}
	return out
}

func contractAuth(t *testing.T) *auth.Authenticator {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.yaml")
	testkit.Must(0, os.WriteFile(path, []byte("apiKeys:\n  - {name: contract, key: contract-key, tenant: \"*\", role: admin}\n"), 0o600))
	a, _, err := auth.Load(path, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
