package securitytest

import (
	"testing"
	"time"
)

// timersFire: a timer transition (created through GraphQL) fires by
// itself under the token service's permissions: the schedule in the
// change's batch, the stream update that lets it take schedules, the
// durable timer consumer, the fire and its acknowledgement.
func timersFire(t *testing.T, s *system) {
	s.gql(t, `mutation { createWorkflow(input: {id: "esc", name: "Escalation", places: ["review", "escalated"], initialPlace: "review",
	  transitions: [{id: "escalate", fromPlaces: ["review"], toPlace: "escalated", after: "PT1S"}]}) { id } }`, nil)
	tok := s.gql(t, `mutation { createToken(input: {workflowId: "esc"}) { id timers { transitionId dueAt } } }`, nil)["createToken"].(map[string]any)
	if ts := tok["timers"].([]any); len(ts) != 1 {
		t.Fatalf("timers of a new token: %v", ts)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := s.gql(t, `query($id: String!) { token(id: $id) { place } }`, map[string]any{"id": tok["id"]})["token"].(map[string]any)
		if got["place"] == "escalated" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the timer did not fire under least privilege: token in %v", got["place"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}
