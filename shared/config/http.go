package config

import (
	"strings"
	"time"
)

// HTTP configures the GraphQL edge's HTTP side.
type HTTP struct {
	Addr         string        // listen address
	CORS         string        // comma-separated allowed origins; "*" for any; "" for none
	MaxBodyBytes int64         // request body limit (413 above)
	MaxTokens    int           // GraphQL parser token limit
	MaxDepth     int           // GraphQL selection depth limit
	MaxAliases   int           // GraphQL alias limit
	MaxFields    int           // GraphQL fields per operation, fragments expanded
	Timeout      time.Duration // per-request deadline, passed on to NATS
	NoIntrospect bool          // disable introspection
	MaxInFlight  int           // requests served at once; more get 503

	// Hostile input and overload. A request's body is read whole, under
	// BodyTimeout, before it takes one of MaxInFlight.
	HeaderTimeout  time.Duration // time to send the request headers; the connection is closed after
	BodyTimeout    time.Duration // time to send the request body; 408 and the connection closed after
	WriteTimeout   time.Duration // time to answer a plain request; subscriptions are exempt
	IdleTimeout    time.Duration // keep-alive connections idle this long are closed
	MaxHeaderBytes int           // request header limit (431 above)
	MaxPerClient   int           // requests in progress per client address (429 above; 0: no limit)
	MaxBodyReads   int           // request bodies being received at once (503 above; 0: no limit)

	// Authentication (edge/auth).
	AuthFile       string // API keys and JWT settings; "" leaves the edge open
	InsecureNoAuth bool   // a standalone edge may run without AuthFile

	// Subscriptions.
	MaxSubsPerConn  int // operations at once on one WebSocket
	MaxSubsPerWF    int // live subscriptions per workflow on one edge
	SubQueueBytes   int // how far one subscription may fall behind before it is ended
	ConnBufferBytes int // results buffered for one connection's client
}

// Register declares the HTTP flags; defCORS is the default CORS origins.
func (h *HTTP) Register(f *Flags, defAddr, defCORS string) {
	f.String(&h.Addr, "http", "CB_HTTP_ADDR", defAddr, "HTTP listen address of the GraphQL edge")
	f.String(&h.CORS, "cors", "CB_CORS_ORIGINS", defCORS, "allowed CORS origins, comma separated (* for any)")
	f.Int64(&h.MaxBodyBytes, "max-body", "CB_MAX_BODY_BYTES", 1<<20, "maximum request body in bytes")
	f.Int(&h.MaxTokens, "max-tokens", "CB_MAX_TOKENS", 2000, "maximum GraphQL document tokens")
	f.Int(&h.MaxDepth, "max-depth", "CB_MAX_DEPTH", 15, "maximum GraphQL selection depth")
	f.Int(&h.MaxAliases, "max-aliases", "CB_MAX_ALIASES", 30, "maximum GraphQL aliases per document")
	f.Int(&h.MaxFields, "max-fields", "CB_MAX_FIELDS", 5000, "maximum GraphQL fields one operation selects, fragments expanded")
	f.Duration(&h.Timeout, "http-timeout", "CB_HTTP_TIMEOUT", 10*time.Second, "deadline of one GraphQL request")
	f.Bool(&h.NoIntrospect, "no-introspection", "CB_NO_INTROSPECTION", false, "disable GraphQL introspection")
	f.Int(&h.MaxInFlight, "max-in-flight", "CB_MAX_IN_FLIGHT", 1024, "HTTP requests served at once (more get 503 + Retry-After)")
	h.registerGuards(f)
	h.registerSubscriptions(f)
	f.String(&h.AuthFile, "auth-file", "CB_AUTH_FILE", "", "auth file (YAML or JSON: apiKeys, jwt); reloaded on SIGHUP; without it the edge is open")
}

// registerSubscriptions declares the flags that bound subscriptions.
func (h *HTTP) registerSubscriptions(f *Flags) {
	f.Int(&h.MaxSubsPerConn, "max-subscriptions-per-connection", "CB_MAX_SUBS_PER_CONN", 100, "operations at once on one WebSocket (more get an error)")
	f.Int(&h.MaxSubsPerWF, "max-subscriptions-per-workflow", "CB_MAX_SUBS_PER_WORKFLOW", 1000, "live subscriptions of one workflow on this edge (more get RESOURCE_EXHAUSTED)")
	f.Int(&h.SubQueueBytes, "subscription-queue-bytes", "CB_SUB_QUEUE_BYTES", 4<<20, "how far one subscription may fall behind the workflow's changes before it is ended (RESOURCE_EXHAUSTED)")
	f.Int(&h.ConnBufferBytes, "connection-buffer-bytes", "CB_CONN_BUFFER_BYTES", 8<<20, "results buffered for one WebSocket or SSE client; one that reads none for the write timeout is disconnected")
}

// registerGuards declares the flags that bound hostile and overloading
// clients.
func (h *HTTP) registerGuards(f *Flags) {
	f.Duration(&h.HeaderTimeout, "http-header-timeout", "CB_HTTP_HEADER_TIMEOUT", 5*time.Second, "time a client has to send a request's headers (the connection is closed after)")
	f.Duration(&h.BodyTimeout, "http-body-timeout", "CB_HTTP_BODY_TIMEOUT", 10*time.Second, "time a client has to send a request's body (408 and the connection closed after)")
	f.Duration(&h.WriteTimeout, "http-write-timeout", "CB_HTTP_WRITE_TIMEOUT", 30*time.Second, "time to answer a plain HTTP request, at least --http-body-timeout + --http-timeout + 1s (WebSocket and SSE subscriptions are exempt)")
	f.Duration(&h.IdleTimeout, "http-idle-timeout", "CB_HTTP_IDLE_TIMEOUT", 2*time.Minute, "idle keep-alive HTTP connections are closed after this")
	f.Int(&h.MaxHeaderBytes, "max-header-bytes", "CB_MAX_HEADER_BYTES", 64<<10, "maximum request header bytes (more get 431)")
	f.Int(&h.MaxPerClient, "max-per-client", "CB_MAX_PER_CLIENT", 64, "HTTP requests in progress per client address, an IPv4 address or IPv6 /64, subscriptions included (more get 429 + Retry-After; 0: no limit)")
	f.Int(&h.MaxBodyReads, "max-body-reads", "CB_MAX_BODY_READS", 1024, "request bodies being received at once (more get 503 + Retry-After; 0: no limit)")
}

// Origins returns the allowed CORS origins.
func (h *HTTP) Origins() []string {
	var out []string
	for _, o := range strings.Split(h.CORS, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}
