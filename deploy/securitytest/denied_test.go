package securitytest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// denial is one forbidden action by one user.
type denial struct {
	name string
	user string
	try  func(t *testing.T, c *conn)
}

func publish(subject string) func(*testing.T, *conn) {
	return func(t *testing.T, c *conn) { deniedPublish(t, c, subject) }
}

func request(subject string) func(*testing.T, *conn) {
	return func(t *testing.T, c *conn) { deniedRequest(t, c, subject, []byte("{}")) }
}

func subscribe(subject, queue string) func(*testing.T, *conn) {
	return func(t *testing.T, c *conn) { deniedSubscribe(t, c, subject, queue) }
}

// bucket binds a KV bucket as c: the stream info request is refused, so
// binding times out however the bucket exists.
func bucket(name string) func(*testing.T, *conn) {
	return func(t *testing.T, c *conn) {
		js, err := jetstream.New(c.Conn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.KeyValue(testCtx(t, 300*time.Millisecond), name); err == nil {
			t.Fatalf("bound bucket %s", name)
		}
		c.rec.waitViolation(t, "publish", "$JS.API.STREAM.INFO.KV_"+name)
	}
}

var denials = []denial{
	// The edge only asks services and reads events for subscriptions.
	{"edge writes a token state into a stream", "edge", publish("workflows.doc.places.draft.tokens.00000000-0000-4000-8000-000000000000")},
	{"edge writes an event", "edge", publish("workflows.doc.events.lifecycle")},
	{"edge creates a stream", "edge", request("$JS.API.STREAM.CREATE.EVIL")},
	{"edge deletes a workflow stream", "edge", request("$JS.API.STREAM.DELETE.WORKFLOW_doc")},
	{"edge reads the token index", "edge", request("$JS.API.DIRECT.GET.KV_CB_TOKEN_INDEX.$KV.CB_TOKEN_INDEX.x")},
	{"edge writes the catalogue", "edge", publish("$KV.CB_WORKFLOWS.doc")},
	{"edge manages durable subscriptions", "edge", request("cb.event.subscribe")},
	{"edge creates an unfiltered consumer", "edge", request("$JS.API.CONSUMER.CREATE.WORKFLOW_doc.spy")},
	{"edge creates a consumer on definitions", "edge", request("$JS.API.CONSUMER.CREATE.WORKFLOW_doc.spy.workflows.doc.definition")},
	{"edge reads everyone's replies", "edge", subscribe("_INBOX.>", "")},
	{"edge reads the token service's replies", "edge", subscribe("_INBOX_token.>", "")},
	{"edge serves a service endpoint", "edge", subscribe("cb.token.get", "cb")},
	{"edge listens to requests", "edge", subscribe("cb.>", "")},
	{"edge writes through a token instance's writer endpoint", "edge", request("cb.token.writer.x.fire")},

	// A service serves only its own endpoints, in queue group cb.
	{"token serves workflow endpoints", "token", subscribe("cb.workflow.get", "cb")},
	{"token serves its endpoint in another queue group", "token", subscribe("cb.token.get", "other")},
	{"token listens to its endpoint outside the queue group", "token", subscribe("cb.token.get", "")},
	{"token answers workflow discovery", "token", subscribe("$SRV.PING.workflow", "")},
	{"token reads the edge's replies", "token", subscribe("_INBOX_edge.>", "")},
	{"token reads everyone's replies", "token", subscribe("_INBOX.>", "")},
	{"token calls another service", "token", request("cb.workflow.get")},
	{"workflow serves token endpoints", "workflow", subscribe("cb.token.fire", "cb")},
	{"workflow passes a write to a token instance", "workflow", request("cb.token.writer.x.create")},
	{"token listens to another instance's writer endpoint", "token", subscribe("cb.token.writer.>", "")},
	{"event serves token endpoints", "event", subscribe("cb.token.>", "cb")},
	{"event reads the token service's replies", "event", subscribe("_INBOX_token.>", "")},

	// A service touches only its own bucket and writes only its own subjects.
	{"token binds the workflow catalogue", "token", bucket("CB_WORKFLOWS")},
	{"token writes the workflow catalogue", "token", publish("$KV.CB_WORKFLOWS.doc")},
	{"token reads the workflow catalogue", "token", request("$JS.API.DIRECT.GET.KV_CB_WORKFLOWS.$KV.CB_WORKFLOWS.doc")},
	{"token batch-reads the workflow catalogue", "token", request("$JS.API.DIRECT.GET.KV_CB_WORKFLOWS")},
	{"token leader-reads the workflow catalogue", "token", request("$JS.API.STREAM.MSG.GET.KV_CB_WORKFLOWS")},
	{"workflow leader-reads the token index", "workflow", request("$JS.API.STREAM.MSG.GET.KV_CB_TOKEN_INDEX")},
	{"workflow leader-reads a workflow stream", "workflow", request("$JS.API.STREAM.MSG.GET.WORKFLOW_doc")},
	{"event purges the token index", "event", request("$JS.API.STREAM.PURGE.KV_CB_TOKEN_INDEX")},
	{"token writes a definition", "token", publish("workflows.doc.definition")},
	{"token creates a stream", "token", request("$JS.API.STREAM.CREATE.WORKFLOW_evil")},
	{"token deletes a stream", "token", request("$JS.API.STREAM.DELETE.WORKFLOW_doc")},
	{"token purges a stream", "token", request("$JS.API.STREAM.PURGE.WORKFLOW_doc")},
	{"workflow binds the token index", "workflow", bucket("CB_TOKEN_INDEX")},
	{"workflow writes the token index", "workflow", publish("$KV.CB_TOKEN_INDEX.x")},
	{"workflow writes a token state", "workflow", publish("workflows.doc.places.draft.tokens.x")},
	{"workflow updates a workflow stream", "workflow", request("$JS.API.STREAM.UPDATE.WORKFLOW_doc")},
	{"workflow deletes a stream", "workflow", request("$JS.API.STREAM.DELETE.WORKFLOW_doc")},
	{"event writes an event", "event", publish("workflows.doc.events.lifecycle")},
	{"event binds the token index", "event", bucket("CB_TOKEN_INDEX")},
	{"event reads the catalogue", "event", request("$JS.API.DIRECT.GET.KV_CB_WORKFLOWS")},
	{"event creates a consumer on token states", "event", request("$JS.API.CONSUMER.CREATE.WORKFLOW_doc.sub_x.workflows.doc.places.>")},
	{"event creates a consumer on a bucket", "event", request("$JS.API.CONSUMER.CREATE.KV_CB_TOKEN_INDEX.x.$KV.CB_TOKEN_INDEX.>")},

	// Another system reads, and consumes only its own durable.
	{"subscriber fires a transition", "subscriber", request("cb.token.fire")},
	{"subscriber creates a workflow", "subscriber", request("cb.workflow.create")},
	{"subscriber pulls another system's durable", "subscriber", request("$JS.API.CONSUMER.MSG.NEXT.WORKFLOW_doc.sub_other")},
	{"subscriber acks another system's durable", "subscriber", publish("$JS.ACK.WORKFLOW_doc.sub_other.1.1.1.1.0")},
	{"subscriber creates a consumer itself", "subscriber", request("$JS.API.CONSUMER.CREATE.WORKFLOW_doc.sub_billing.workflows.doc.events.>")},
	{"subscriber reads token states", "subscriber", subscribe("workflows.doc.places.>", "")},
	{"subscriber reads the edge's replies", "subscriber", subscribe("_INBOX_edge.>", "")},
}

// testDenied runs each forbidden action on a fresh connection of its user
// and waits for the server's asynchronous permissions violation.
func testDenied(t *testing.T, s *system) {
	t.Logf("%d forbidden actions", len(denials))
	for _, d := range denials {
		t.Run(d.name, func(t *testing.T) {
			d.try(t, s.login(t, d.user))
		})
	}
}
