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
	Timeout      time.Duration // per-request deadline, passed on to NATS
	NoIntrospect bool          // disable introspection
	MaxInFlight  int           // requests served at once; more get 503
}

// Register declares the HTTP flags; defCORS is the default CORS origins.
func (h *HTTP) Register(f *Flags, defAddr, defCORS string) {
	f.String(&h.Addr, "http", "CB_HTTP_ADDR", defAddr, "HTTP listen address of the GraphQL edge")
	f.String(&h.CORS, "cors", "CB_CORS_ORIGINS", defCORS, "allowed CORS origins, comma separated (* for any)")
	f.Int64(&h.MaxBodyBytes, "max-body", "CB_MAX_BODY_BYTES", 1<<20, "maximum request body in bytes")
	f.Int(&h.MaxTokens, "max-tokens", "CB_MAX_TOKENS", 2000, "maximum GraphQL document tokens")
	f.Int(&h.MaxDepth, "max-depth", "CB_MAX_DEPTH", 15, "maximum GraphQL selection depth")
	f.Int(&h.MaxAliases, "max-aliases", "CB_MAX_ALIASES", 30, "maximum GraphQL aliases per document")
	f.Duration(&h.Timeout, "http-timeout", "CB_HTTP_TIMEOUT", 10*time.Second, "deadline of one GraphQL request")
	f.Bool(&h.NoIntrospect, "no-introspection", "CB_NO_INTROSPECTION", false, "disable GraphQL introspection")
	f.Int(&h.MaxInFlight, "max-in-flight", "CB_MAX_IN_FLIGHT", 1024, "HTTP requests served at once (more get 503 + Retry-After)")
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
