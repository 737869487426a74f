package securitytest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// all is the scope of a caller acting for every tenant.
const all = subjects.AllTenants

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
	{"edge creates an unfiltered consumer", "edge", request("$JS.API.CONSUMER.CREATE.WORKFLOW_doc.spy")},
	{"edge creates a consumer on definitions", "edge", request("$JS.API.CONSUMER.CREATE.WORKFLOW_doc.spy.workflows.doc.definition")},
	{"edge reads everyone's replies", "edge", subscribe("_INBOX.>", "")},
	{"edge reads the token service's replies", "edge", subscribe("_INBOX_token.>", "")},
	{"edge serves a service endpoint", "edge", subscribe(subjects.TokenGet.Pattern(), "cb")},
	{"edge serves one tenant's endpoint", "edge", subscribe(subjects.TokenGet.In("acme"), "cb")},
	{"edge listens to requests", "edge", subscribe("cb.>", "")},
	{"edge writes through a token instance's writer endpoint", "edge", request(subjects.TokenWriter("x", "fire").In(all))},
	{"edge writes through a writer endpoint in a tenant's scope", "edge", request(subjects.TokenWriter("x", "create").In("acme"))},
	{"edge requests outside the service subjects", "edge", request("cb._all.secret.get")},

	// A service serves only its own endpoints, in queue group cb.
	{"token serves workflow endpoints", "token", subscribe(subjects.WorkflowGet.Pattern(), "cb")},
	{"token serves its endpoint in another queue group", "token", subscribe(subjects.TokenGet.Pattern(), "other")},
	{"token listens to its endpoint outside the queue group", "token", subscribe(subjects.TokenGet.Pattern(), "")},
	{"token listens to one tenant's requests outside the queue group", "token", subscribe("cb.acme.>", "")},
	{"token answers workflow discovery", "token", subscribe("$SRV.PING.workflow", "")},
	{"token reads the edge's replies", "token", subscribe("_INBOX_edge.>", "")},
	{"token reads everyone's replies", "token", subscribe("_INBOX.>", "")},
	{"token calls another service", "token", request(subjects.WorkflowGet.In(all))},
	{"token asks for a token as a client", "token", request(subjects.TokenGet.In(all))},
	{"workflow serves token endpoints", "workflow", subscribe(subjects.TokenFire.Pattern(), "cb")},
	{"workflow passes a write to a token instance", "workflow", request(subjects.TokenWriter("x", "create").In(all))},
	{"token listens to another instance's writer endpoint", "token", subscribe("cb.*.token.writer.>", "")},
	{"event serves token endpoints", "event", subscribe("cb.*.token.>", "cb")},
	{"event calls the workflow service", "event", request(subjects.WorkflowList.In(all))},
	{"event reads the token service's replies", "event", subscribe("_INBOX_token.>", "")},

	// A service touches only its own bucket and writes only its own subjects.
	{"token binds the workflow catalogue", "token", bucket("CB_WORKFLOWS")},
	{"token writes the workflow catalogue", "token", publish("$KV.CB_WORKFLOWS.doc")},
	{"token reads the workflow catalogue", "token", request("$JS.API.DIRECT.GET.KV_CB_WORKFLOWS.$KV.CB_WORKFLOWS.doc")},
	{"token batch-reads the workflow catalogue", "token", request("$JS.API.DIRECT.GET.KV_CB_WORKFLOWS")},
	{"token leader-reads the workflow catalogue", "token", request("$JS.API.STREAM.MSG.GET.KV_CB_WORKFLOWS")},
	{"workflow leader-reads the token index", "workflow", request("$JS.API.STREAM.MSG.GET.KV_CB_TOKEN_INDEX")},
	{"event purges the token index", "event", request("$JS.API.STREAM.PURGE.KV_CB_TOKEN_INDEX")},
	{"token writes a definition", "token", publish("workflows.doc.definition")},
	{"token creates a stream", "token", request("$JS.API.STREAM.CREATE.WORKFLOW_evil")},
	{"token deletes a stream", "token", request("$JS.API.STREAM.DELETE.WORKFLOW_doc")},
	{"token purges the workflow catalogue", "token", request("$JS.API.STREAM.PURGE.KV_CB_WORKFLOWS")},
	{"token purges the quotas", "token", request("$JS.API.STREAM.PURGE.KV_CB_TENANTS")},
	{"workflow deletes the token index", "workflow", request("$JS.API.STREAM.DELETE.KV_CB_TOKEN_INDEX")},
	{"workflow recreates the token index", "workflow", request("$JS.API.STREAM.CREATE.KV_CB_TOKEN_INDEX")},
	{"workflow writes the token index", "workflow", publish("$KV.CB_TOKEN_INDEX.x")},
	{"workflow writes a token state", "workflow", publish("workflows.doc.places.draft.tokens.x")},
	{"workflow updates the analytics bucket", "workflow", request("$JS.API.STREAM.UPDATE.KV_CB_ANALYTICS")},
	{"workflow deletes the catalogue", "workflow", request("$JS.API.STREAM.DELETE.KV_CB_WORKFLOWS")},
	{"event writes an event", "event", publish("workflows.doc.events.lifecycle")},
	{"event binds the token index", "event", bucket("CB_TOKEN_INDEX")},
	{"event reads the catalogue", "event", request("$JS.API.DIRECT.GET.KV_CB_WORKFLOWS")},
	{"event reads the catalogue through its leader", "event", request("$JS.API.STREAM.MSG.GET.KV_CB_WORKFLOWS")},
	{"event reads the token index through its leader", "event", request("$JS.API.STREAM.MSG.GET.KV_CB_TOKEN_INDEX")},
	{"event writes the catalogue", "event", publish("$KV.CB_WORKFLOWS.doc")},
	{"event deletes the analytics bucket", "event", request("$JS.API.STREAM.DELETE.KV_CB_ANALYTICS")},
	{"event asks the servers for their state", "event", request("$SYS.REQ.SERVER.PING.STATZ")},
	{"event creates a consumer on token states", "event", request("$JS.API.CONSUMER.CREATE.WORKFLOW_doc.sub_x.workflows.doc.places.>")},
	{"event creates a consumer on a bucket", "event", request("$JS.API.CONSUMER.CREATE.KV_CB_TOKEN_INDEX.x.$KV.CB_TOKEN_INDEX.>")},

	// Another system reads, and consumes only its own durable.
	{"subscriber fires a transition", "subscriber", request(subjects.TokenFire.In(all))},
	{"subscriber creates a workflow", "subscriber", request(subjects.WorkflowCreate.In(all))},
	{"subscriber creates a workflow in a tenant's scope", "subscriber", request(subjects.WorkflowCreate.In("acme"))},
	{"subscriber pulls another system's durable", "subscriber", request("$JS.API.CONSUMER.MSG.NEXT.WORKFLOW_doc.sub_other")},
	{"subscriber acks another system's durable", "subscriber", publish("$JS.ACK.WORKFLOW_doc.sub_other.1.1.1.1.0")},
	{"subscriber creates a consumer itself", "subscriber", request("$JS.API.CONSUMER.CREATE.WORKFLOW_doc.sub_billing.workflows.doc.events.>")},
	{"subscriber reads token states", "subscriber", subscribe("workflows.doc.places.>", "")},
	{"subscriber reads the edge's replies", "subscriber", subscribe("_INBOX_edge.>", "")},

	// A tenant's user asks the services in its own tenant's scope only, and
	// gets nothing of NATS beyond that API and discovery.
	{"tenant lists another tenant's workflows", "tenant-acme", request(subjects.WorkflowList.In("beta"))},
	{"tenant gets another tenant's token", "tenant-acme", request(subjects.TokenGet.In("beta"))},
	{"tenant fires in another tenant's scope", "tenant-acme", request(subjects.TokenFire.In("beta"))},
	{"tenant reads another tenant's events", "tenant-acme", request(subjects.EventHistory.In("beta"))},
	{"tenant lists every tenant's workflows", "tenant-acme", request(subjects.WorkflowList.In(all))},
	{"tenant gets a token in the all-tenants scope", "tenant-acme", request(subjects.TokenGet.In(all))},
	{"beta lists acme's workflows", "tenant-beta", request(subjects.WorkflowList.In("acme"))},
	{"tenant writes through a writer endpoint", "tenant-acme", request(subjects.TokenWriter("x", "fire").In("acme"))},
	{"tenant creates through a writer endpoint", "tenant-acme", request(subjects.TokenWriter("x", "create").In("acme"))},
	{"tenant listens to requests", "tenant-acme", subscribe("cb.>", "")},
	{"tenant serves its own tenant's endpoint", "tenant-acme", subscribe(subjects.WorkflowGet.In("acme"), "cb")},
	{"tenant listens to its own tenant's requests", "tenant-acme", subscribe("cb.acme.>", "")},
	{"tenant reads another tenant's replies", "tenant-acme", subscribe("_INBOX_tenant-beta.>", "")},
	{"tenant reads the edge's replies", "tenant-acme", subscribe("_INBOX_edge.>", "")},
	{"tenant reads everyone's replies", "tenant-acme", subscribe("_INBOX.>", "")},
	{"tenant asks for every instance's statistics", "tenant-acme", request("$SRV.STATS.token")},
	{"tenant asks JetStream for account info", "tenant-acme", request("$JS.API.INFO")},
	{"tenant reads its own workflow's stream", "tenant-acme", request("$JS.API.STREAM.INFO.WORKFLOW_acme::orders")},
	{"tenant direct-gets its own workflow's stream", "tenant-acme", request("$JS.API.DIRECT.GET.WORKFLOW_acme::orders")},
	{"tenant creates a consumer on its own events", "tenant-acme",
		request("$JS.API.CONSUMER.CREATE.WORKFLOW_acme::orders.spy.workflows.acme::orders.events.>")},
	{"tenant pulls a durable subscription", "tenant-acme", request("$JS.API.CONSUMER.MSG.NEXT.WORKFLOW_acme::orders.sub_billing")},
	{"tenant lists streams", "tenant-acme", request("$JS.API.STREAM.NAMES")},
	{"tenant writes an event", "tenant-acme", publish("workflows.acme::orders.events.lifecycle")},
	{"tenant writes a token state", "tenant-acme", publish("workflows.acme::orders.places.draft.tokens.x")},
	{"tenant listens to stored subjects", "tenant-acme", subscribe("workflows.>", "")},
	{"tenant listens to its own workflow's events", "tenant-acme", subscribe("workflows.acme::orders.events.>", "")},
	{"tenant writes the catalogue", "tenant-acme", publish("$KV.CB_WORKFLOWS.acme.orders")},

	// Quotas are the edge's to write (from its auth file); live-token
	// counts are the token service's.
	{"tenant raises its own quota", "tenant-acme", publish("$KV.CB_TENANTS.acme")},
	{"tenant counts its live tokens down", "tenant-acme", publish("usage.acme.tokens")},
	{"workflow writes a quota", "workflow", publish("$KV.CB_TENANTS.acme")},
	{"token writes a quota", "token", publish("$KV.CB_TENANTS.acme")},
	{"edge writes a live-token count", "edge", publish("usage.acme.tokens")},
	{"edge pulls from the live-token counters", "edge", request("$JS.API.CONSUMER.MSG.NEXT.CB_USAGE.x")},
	{"workflow purges the live-token counts", "workflow", request("$JS.API.STREAM.PURGE.CB_USAGE")},
	{"workflow creates the live-token counters", "workflow", request("$JS.API.STREAM.CREATE.CB_USAGE")},
	{"event purges the live-token counters", "event", request("$JS.API.STREAM.PURGE.CB_USAGE")},
	{"event purges the quotas", "event", request("$JS.API.STREAM.PURGE.KV_CB_TENANTS")},
	{"subscriber reads the quotas", "subscriber", bucket("CB_TENANTS")},
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
