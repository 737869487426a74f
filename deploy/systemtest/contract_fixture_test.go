package systemtest

// The schema contract test's data: every mutation, run in order, making
// a workflow without rules (with an unreachable place and a dead
// transition) and one with conditions and nested And/Or/Not, field and
// Expression rules and timers; tokens fresh, moved twice, updated, passing
// and failing guards; events of every type; durable subscriptions; a token
// archived, one deleted, and a throwaway workflow deleted with its token;
// a search index built for an attribute an update added, and one held
// BUILDING.

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// contractFixture holds what the mutations made.
type contractFixture struct {
	tokens []contractToken
	doomed string // a token made to be deleted (not a scene: it is gone)
}

type contractToken struct{ workflowID, id, place string }

const (
	plainWF     = "contract_plain"
	rulesWF     = "contract_rules"
	throwawayWF = "contract_throwaway"
	indexedWF   = "contract_indexed" // its search index is held BUILDING (holdBuild)
)

// mutationStep runs one mutation with args built from what earlier steps
// made, and keeps what later steps need.
type mutationStep struct {
	field string
	args  func(*contractFixture) map[string]any
	keep  func(*contractFixture, any)
}

func input(in map[string]any) func(*contractFixture) map[string]any {
	return func(*contractFixture) map[string]any { return map[string]any{"input": in} }
}

// token returns the id of the n-th token made (in mutation order).
func (fx *contractFixture) token(n int) string { return fx.tokens[n].id }

// keepToken records a token a mutation answered with (again when it moved).
func keepToken(fx *contractFixture, v any) {
	m, ok := v.(map[string]any)
	if !ok {
		return // the mutation failed; the test reports why
	}
	t := contractToken{workflowID: m["workflowId"].(string), id: m["id"].(string), place: m["place"].(string)}
	for i := range fx.tokens {
		if fx.tokens[i].id == t.id {
			fx.tokens[i] = t
			return
		}
	}
	fx.tokens = append(fx.tokens, t)
}

// onToken builds a mutation input about the n-th token.
func onToken(n int, in map[string]any) func(*contractFixture) map[string]any {
	return func(fx *contractFixture) map[string]any {
		out := map[string]any{"tokenId": fx.token(n)}
		for k, v := range in {
			out[k] = v
		}
		return map[string]any{"input": out}
	}
}

func rule(id, typ string, more map[string]any) map[string]any {
	cond := map[string]any{"type": typ}
	for k, v := range more {
		cond[k] = v
	}
	return map[string]any{"id": id, "description": "rule " + id, "condition": cond}
}

func contractMutations() []mutationStep {
	guard := []any{
		rule("all_of", "And", map[string]any{"rules": []any{
			rule("titled", "FieldExists", map[string]any{"field": "title"}),
			rule("not_rejected", "Not", map[string]any{"rule": rule("rejected", "FieldEquals", map[string]any{"field": "status", "value": "rejected"})}),
		}}),
		rule("any_of", "Or", map[string]any{"rules": []any{
			rule("above", "FieldGreaterThan", map[string]any{"field": "priority", "value": 1}),
			rule("below", "FieldLessThan", map[string]any{"field": "priority", "value": 100}),
		}}),
		rule("tagged", "FieldContains", map[string]any{"field": "tags", "substring": "x"}),
		rule("scripted", "Expression", map[string]any{"script": "data.priority > 0 && metadata.team == 'a'"}),
	}
	return []mutationStep{
		{field: "createWorkflow", args: input(map[string]any{
			"id": plainWF, "name": "Plain", "description": "no rules", "places": []any{"draft", "review", "done", "archived"},
			"initialPlace": "draft", "archiveAfter": "P30D", "transitions": []any{
				map[string]any{"id": "submit", "name": "Submit", "description": "send for review", "fromPlaces": []any{"draft"}, "toPlace": "review"},
				map[string]any{"id": "approve", "fromPlaces": []any{"review"}, "toPlace": "done"},
				map[string]any{"id": "revive", "fromPlaces": []any{"archived"}, "toPlace": "draft"},
			}})},
		{field: "createWorkflow", args: input(map[string]any{
			"id": rulesWF, "name": "Rules", "places": []any{"start", "checked", "end"}, "initialPlace": "start",
			"searchAttributes": []any{map[string]any{"path": "data.priority", "type": "NUMBER"}, map[string]any{"path": "metadata.team", "type": "KEYWORD"}},
			"transitions": []any{
				map[string]any{"id": "check", "fromPlaces": []any{"start"}, "toPlace": "checked", "conditions": []any{"has_title"}, "rules": guard},
				map[string]any{"id": "finish", "fromPlaces": []any{"checked"}, "toPlace": "end", "conditions": []any{"high_priority"}},
				// timers: pending on the tokens left in start (Token.timers, timerDueAt)
				map[string]any{"id": "expire", "fromPlaces": []any{"start"}, "toPlace": "end", "after": "PT1H"},
				map[string]any{"id": "deadline", "fromPlaces": []any{"checked"}, "toPlace": "end", "at": "data.deadline"},
			}})},
		{field: "createToken", args: input(map[string]any{"workflowId": plainWF}), keep: keepToken}, // 0: fresh
		{field: "createWorkflowInstance", args: input(map[string]any{"workflowId": plainWF, "initialData": map[string]any{"title": "doc"}, // 1: moved
			"metadata": map[string]any{"department": "eng"}, "triggeredBy": "author"}), keep: keepToken},
		{field: "fireTransition", args: onToken(1, map[string]any{"transitionId": "submit", "data": map[string]any{"note": "go"}}), keep: keepToken},
		{field: "transitionTokenWithNats", args: onToken(1, map[string]any{"transitionId": "approve", "newPlace": "done", "triggeredBy": "reviewer"}), keep: keepToken},
		{field: "updateToken", args: onToken(0, map[string]any{"data": map[string]any{"n": 1}, "metadata": map[string]any{"k": "v"}}), keep: keepToken},
		{field: "createToken", args: input(map[string]any{"workflowId": rulesWF, "data": map[string]any{"title": "t", "priority": 9, "tags": []any{"x"}},
			"metadata": map[string]any{"team": "a"}}), keep: keepToken}, // 2: passes its guards
		{field: "fireTransition", args: onToken(2, map[string]any{"transitionId": "check"}), keep: keepToken},
		{field: "createToken", args: input(map[string]any{"workflowId": rulesWF, "data": map[string]any{"status": "rejected"}}), keep: keepToken}, // 3: fails them
		{field: "createWorkflow", args: input(map[string]any{"id": indexedWF, "name": "Indexed", "places": []any{"a"}, "initialPlace": "a",
			"transitions": []any{}, "searchAttributes": []any{map[string]any{"path": "data.size", "type": "NUMBER"}}})},
		{field: "updateWorkflow", args: input(map[string]any{ // adds a search attribute: its index is built (settleBuild)
			"id": plainWF, "expectedVersion": 1, "name": "Plain", "description": "no rules, version 2", "places": []any{"draft", "review", "done", "archived"},
			"searchAttributes": []any{map[string]any{"path": "metadata.department", "type": "KEYWORD"}},
			"initialPlace":     "draft", "transitions": []any{
				map[string]any{"id": "submit", "name": "Submit", "description": "send for review", "fromPlaces": []any{"draft"}, "toPlace": "review"},
				map[string]any{"id": "approve", "fromPlaces": []any{"review"}, "toPlace": "done"},
				map[string]any{"id": "revive", "fromPlaces": []any{"archived"}, "toPlace": "draft"},
			}})},
		{field: "migrateTokens", args: func(fx *contractFixture) map[string]any { // one moves, one is unknown
			return map[string]any{"input": map[string]any{"workflowId": plainWF, "fromVersion": 1, "toVersion": 2, "placeMapping": map[string]any{"archived": "draft"},
				"tokenIds": []any{fx.token(0), "00000000-0000-4000-8000-000000000000"}}}
		}},
		{field: "bulkTransitionTokens", args: input(map[string]any{"workflowId": plainWF, "fromPlace": "draft", "transitionId": "submit",
			"idempotencyKey": "contract-bulk"})}, // moves token 0
		{field: "bulkTransitionTokens", args: input(map[string]any{"workflowId": rulesWF, "fromPlace": "start", "transitionId": "check",
			"idempotencyKey": "contract-bulk", "filter": map[string]any{"metadata": map[string]any{}}})}, // token 3 fails its guards
		{field: "createEventSubscription", args: input(map[string]any{"workflowId": plainWF, "name": "contract_sub", "deliver": "all"})},
		{field: "createEventSubscription", args: input(map[string]any{"workflowId": rulesWF, "name": "contract_gone"})},
		{field: "deleteEventSubscription", args: func(*contractFixture) map[string]any {
			return map[string]any{"workflowId": rulesWF, "name": "contract_gone"}
		}},
		{field: "createToken", args: input(map[string]any{"workflowId": plainWF, "data": map[string]any{"old": true}}), keep: keepToken}, // 4: archived
		{field: "archiveToken", args: func(fx *contractFixture) map[string]any { return map[string]any{"id": fx.token(4)} }, keep: keepToken},
		{field: "createToken", args: input(map[string]any{"workflowId": plainWF}), keep: func(fx *contractFixture, v any) {
			if m, ok := v.(map[string]any); ok {
				fx.doomed = m["id"].(string)
			}
		}},
		{field: "deleteToken", args: func(fx *contractFixture) map[string]any { return map[string]any{"id": fx.doomed} }},
		{field: "createWorkflow", args: input(map[string]any{"id": throwawayWF, "name": "Throwaway", "places": []any{"only"},
			"initialPlace": "only", "transitions": []any{}})},
		{field: "createToken", args: input(map[string]any{"workflowId": throwawayWF})},
		{field: "deleteWorkflow", args: func(*contractFixture) map[string]any { return map[string]any{"id": throwawayWF, "force": true} }},
	}
}

// scenes are the argument values queries and subscriptions run with: none
// (lists of everything), and each token with its workflow and place.
func (fx *contractFixture) scenes() []map[string]any {
	out := []map[string]any{{}}
	for _, t := range fx.tokens {
		out = append(out, map[string]any{"workflowId": t.workflowID, "tokenId": t.id, "placeId": t.place, "afterSequence": "1",
			"filter": map[string]any{"workflowIds": []any{t.workflowID}, "places": []any{t.place}}, "idempotencyKey": "contract-bulk"})
	}
	return out
}

// settleBuilds waits for the build plainWF's update started to finish
// (READY, with its times), and holds indexedWF's search index BUILDING:
// its record names another instance's build in progress, leased for an
// hour, so nothing takes it over while the queries run.
func settleBuilds(t *testing.T, s *system) {
	t.Helper()
	c := ctx(t)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		idx := testkit.Must(s.c.SearchIndex(c, plainWF))
		if idx.State == wire.IndexReady {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the search index build of %s did not finish: %+v", plainWF, idx)
		}
	}
	holdBuild(t, s, indexedWF, 1, "data.size")
}

// holdBuild stores a search index record of wf that names another
// instance's build of paths (declared by version) in progress, leased for
// an hour: the index stays BUILDING while a test looks at it.
func holdBuild(t *testing.T, s *system, wf string, version int, paths ...string) {
	t.Helper()
	now, later := time.Now().UTC(), time.Now().UTC().Add(time.Hour)
	body := testkit.Must(json.Marshal(wire.SearchIndex{WorkflowID: wf, State: wire.IndexBuilding, Version: version, Building: paths,
		Until: 1 << 40, Indexed: 3, Scanned: 5, StartedAt: &now, UpdatedAt: &later, Runner: "another-instance"}))
	testkit.Must(s.stackJS().Publish(ctx(t), subjects.SearchIndexState(wf), body))
}
