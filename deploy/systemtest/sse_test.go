package systemtest

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
)

// TestSubscriptionOverSSEIsCountedAndCleanedUp: a GraphQL subscription over
// server-sent events streams, shows in cb_subscriptions_open while it
// lasts, and leaves no gauge or consumer behind when the client goes away.
func TestSubscriptionOverSSEIsCountedAndCleanedUp(t *testing.T) {
	s := start(t, "")
	testkit.Must(s.c.CreateWorkflow(ctx(t), race("sse")))
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	body := `{"query":"subscription { workflowEvents(workflowId: \"sse\", afterSequence: \"1\") { eventType } }"}`
	req, _ := http.NewRequestWithContext(c, http.MethodPost, s.stack.GraphQL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() && !strings.Contains(lines.Text(), "workflow_created") {
	}
	if !strings.Contains(lines.Text(), "workflow_created") {
		t.Fatalf("stream ended without the workflow_created event: %v", lines.Err())
	}
	open := `cb_subscriptions_open{field="workflowEvents"}`
	if n := metric(t, s, open); n != 1 {
		t.Fatalf("%s = %d while streaming", open, n)
	}
	cancel()
	resp.Body.Close()
	testkit.Poll(t, 10*time.Second, "subscription closed", func() bool { return metric(t, s, open) == 0 })
	testkit.Poll(t, 10*time.Second, "consumer removed", func() bool {
		return testkit.Must(testkit.Must(s.stackJS().Stream(ctx(t), "WORKFLOW_sse")).Info(ctx(t))).State.Consumers == 0
	})
}
