package config

import (
	"time"

	"github.com/cbnats/circuitbreaker/shared/rules"
)

// NATS says how a process reaches NATS.
type NATS struct {
	URL             string        // comma-separated server URLs
	Creds           string        // .creds file (JWT + nkey seed)
	NKey            string        // nkey seed file
	User, Password  string        // user/password login
	TLSCert, TLSKey string        // client certificate for mutual TLS
	TLSCA           string        // CA to verify the server
	InboxPrefix     string        // custom inbox prefix, for least-privilege accounts
	ConnectTimeout  time.Duration // per connection attempt
	ReconnectBuffer int           // bytes buffered while reconnecting
}

// Register declares the NATS flags.
func (n *NATS) Register(f *Flags, defURL string) {
	f.String(&n.URL, "nats", "NATS_URL", defURL, "NATS server URLs, comma separated")
	f.String(&n.Creds, "creds", "NATS_CREDS", "", "NATS credentials file")
	f.String(&n.NKey, "nkey", "NATS_NKEY", "", "NATS nkey seed file")
	f.String(&n.User, "nats-user", "NATS_USER", "", "NATS user")
	f.String(&n.Password, "nats-password", "NATS_PASSWORD", "", "NATS password")
	f.String(&n.TLSCert, "tls-cert", "NATS_TLS_CERT", "", "client certificate (PEM) for mutual TLS")
	f.String(&n.TLSKey, "tls-key", "NATS_TLS_KEY", "", "client key (PEM) for mutual TLS")
	f.String(&n.TLSCA, "tls-ca", "NATS_TLS_CA", "", "CA certificate (PEM) to verify the server")
	f.String(&n.InboxPrefix, "inbox-prefix", "NATS_INBOX_PREFIX", "", "custom inbox prefix (least-privilege deployments)")
	f.Duration(&n.ConnectTimeout, "connect-timeout", "NATS_CONNECTION_TIMEOUT", 10*time.Second, "NATS connection timeout")
	f.Int(&n.ReconnectBuffer, "reconnect-buffer", "NATS_RECONNECT_BUFFER_SIZE", 8<<20, "bytes buffered while reconnecting")
}

// Store says how workflows, tokens and events are stored in JetStream.
// State (definitions, tokens) never expires; the limits apply to events only.
type Store struct {
	Replicas       int           // stream and bucket replicas (1 embedded, 3 in a cluster)
	EventMaxAge    time.Duration // events older than this expire (0 = keep)
	EventMaxMsgs   int64         // events kept per event subject (0 = no limit)
	EventMaxBytes  int64         // event bytes kept per workflow, trimmed by the event service (0 = no limit)
	EventTrimEvery time.Duration // how often the event service trims events to EventMaxBytes
	DedupeWindow   time.Duration // JetStream duplicate window for event message ids
	MaxDeliver     int           // redeliveries for durable event subscribers
	EventMaxSubs   int           // durable event subscriptions per workflow (0 = the event service's default, 100)
	RequestTimeout time.Duration // bound on a request whose caller sent no deadline
	RouteWrites    bool          // token services pass each workflow's writes to one instance
	// ArchiveSweepEvery is how often token services archive the tokens of
	// workflows with an archiveAfter (0: the token service's default, 1m).
	ArchiveSweepEvery time.Duration
	Expr              rules.Limits // cost bounds of Expression guard rules (zero fields: rules' defaults)
}

// Register declares the storage flags.
func (s *Store) Register(f *Flags) {
	f.Int(&s.Replicas, "replicas", "CB_REPLICAS", 1, "replicas of every stream and bucket")
	f.Duration(&s.EventMaxAge, "event-max-age", "NATS_MAX_AGE", 30*24*time.Hour, "event retention by age (0 keeps events)")
	f.Int64(&s.EventMaxMsgs, "event-max-msgs", "NATS_MAX_MESSAGES", 1_000_000, "event retention by count, per event subject (0 keeps all)")
	f.Int64(&s.EventMaxBytes, "event-max-bytes", "NATS_MAX_BYTES", 0, "event retention by size, per workflow, trimmed by the event service (0 keeps all)")
	f.Duration(&s.EventTrimEvery, "event-trim-every", "CB_EVENT_TRIM_EVERY", 5*time.Minute, "how often the event service trims events to --event-max-bytes")
	f.Duration(&s.DedupeWindow, "dedupe-window", "NATS_DEDUPE_WINDOW", 2*time.Minute, "duplicate window for event ids")
	f.Int(&s.MaxDeliver, "max-deliver", "NATS_MAX_DELIVER", 5, "deliveries per event for durable subscribers")
	f.Int(&s.EventMaxSubs, "event-max-subscriptions", "CB_EVENT_MAX_SUBSCRIPTIONS", 100, "durable event subscriptions per workflow; more are refused with RESOURCE_EXHAUSTED (each is a JetStream consumer on the workflow's stream)")
	f.Duration(&s.RequestTimeout, "request-timeout", "CB_REQUEST_TIMEOUT", 10*time.Second, "bound on requests without a deadline")
	s.registerExpr(f)
	f.Duration(&s.ArchiveSweepEvery, "archive-sweep-every", "CB_ARCHIVE_SWEEP_EVERY", time.Minute, "how often token services archive the tokens that sat a workflow's archiveAfter in a terminal place, and take over search index builds whose instance stopped")
	f.Bool(&s.RouteWrites, "route-writes", "CB_ROUTE_WRITES", true, "token services pass each workflow's writes to one instance (false: every instance commits what it receives, and instances contend on a busy workflow)")
}

// registerExpr declares the cost bounds of Expression guard rules.
func (s *Store) registerExpr(f *Flags) {
	f.Int(&s.Expr.MaxScriptBytes, "expr-max-bytes", "CB_EXPR_MAX_BYTES", rules.MaxScriptLen, "longest Expression script accepted at create")
	f.Int(&s.Expr.MaxNodes, "expr-max-nodes", "CB_EXPR_MAX_NODES", rules.DefaultMaxNodes, "most syntax-tree nodes of an Expression script")
	f.Int(&s.Expr.MemoryBudget, "expr-memory", "CB_EXPR_MEMORY", rules.DefaultMemoryBudget, "bytes of strings plus elements one Expression evaluation may allocate")
	f.Int(&s.Expr.MaxSteps, "expr-max-steps", "CB_EXPR_MAX_STEPS", rules.DefaultMaxSteps, "operator, call and loop steps of one Expression evaluation")
	f.Duration(&s.Expr.Timeout, "expr-timeout", "CB_EXPR_TIMEOUT", rules.DefaultTimeout, "time of one Expression evaluation (the request's deadline stops it too)")
}
