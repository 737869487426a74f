package systemtest

import "testing"

// TestGraphQLEventFields: the event service's history, statistics and
// durable subscriptions have GraphQL fields too.
func TestGraphQLEventFields(t *testing.T) {
	s := start(t, "")
	ids := seedEvents(t, s, "gqlev", 3)
	var evs []struct{ EventType, TokenID, Sequence string }
	s.ok(t, `query($t:String){ events(workflowId:"gqlev", tokenId:$t) { eventType tokenId sequence } }`,
		map[string]any{"t": ids[1]}, "events", &evs)
	if len(evs) != 2 || evs[0].EventType != "token_created" || evs[1].EventType != "token_transitioned" || evs[1].TokenID != ids[1] {
		t.Fatalf("events = %+v", evs)
	}
	var after []struct{ Sequence string }
	s.ok(t, `query($a:String){ events(workflowId:"gqlev", afterSequence:$a, eventTypes:["token_transitioned"]) { sequence } }`,
		map[string]any{"a": evs[0].Sequence}, "events", &after)
	if len(after) != 2 {
		t.Fatalf("transitions after %s: %+v", evs[0].Sequence, after)
	}
	var st struct {
		Tokens         int
		TokensPerPlace []struct {
			Place string
			Count int
		}
		EventsPerType []struct {
			EventType string
			Count     int
		}
		TransitionsInWindow int
	}
	s.ok(t, `{ workflowStats(workflowId:"gqlev") { tokens tokensPerPlace { place count } eventsPerType { eventType count } transitionsInWindow } }`,
		nil, "workflowStats", &st)
	if st.Tokens != 3 || len(st.TokensPerPlace) != 1 || st.TokensPerPlace[0].Count != 3 || st.TransitionsInWindow != 3 || len(st.EventsPerType) != 3 {
		t.Fatalf("stats = %+v", st)
	}
	var sub struct{ Name, Consumer string }
	s.ok(t, `mutation { createEventSubscription(input:{workflowId:"gqlev", name:"crm", deliver:"all"}) { name consumer } }`,
		nil, "createEventSubscription", &sub)
	var subs []struct {
		Name    string
		Pending int
	}
	s.ok(t, `{ eventSubscriptions(workflowId:"gqlev") { name pending } }`, nil, "eventSubscriptions", &subs)
	if sub.Consumer != "sub_crm" || len(subs) != 1 || subs[0].Pending != 7 {
		t.Fatalf("subscription %+v, list %+v", sub, subs)
	}
	var deleted bool
	s.ok(t, `mutation { deleteEventSubscription(workflowId:"gqlev", name:"crm") }`, nil, "deleteEventSubscription", &deleted)
	if !deleted {
		t.Fatal("not deleted")
	}
	s.fails(t, `{ events(workflowId:"gqlev", since:"yesterday") { sequence } }`, nil, "BAD_USER_INPUT", "RFC 3339")
}
