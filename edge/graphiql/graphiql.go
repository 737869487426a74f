// Package graphiql serves the GraphiQL IDE fully offline: the page and its
// JavaScript/CSS (graphiql@4.1.2, react@18.3.1, react-dom@18.3.1, all MIT, see
// assets/LICENSES.md) are embedded in the binary, so nothing is fetched from a
// CDN or the internet at run time.
//
// Mount the two handlers side by side, for example:
//
//	mux.Handle("GET /graphiql/", graphiql.Assets("/graphiql/"))
//	mux.Handle("GET /graphiql", graphiql.Page(graphiql.Options{Endpoint: "/graphql", AssetPrefix: "/graphiql/"}))
//
// Page may be mounted on any path (including /graphql itself for requests that
// accept text/html); it always references the assets through Options.AssetPrefix.
//
// The page loads without credentials. Above the editor it has a field for a
// bearer key (an API key or a JWT), kept in the tab's sessionStorage only and
// sent with every request the page makes; see pageTmpl.
package graphiql

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/cbnats/circuitbreaker/edge/webpage"
)

// Versions of the vendored assets; keep in sync with assets/LICENSES.md.
const (
	GraphiQLVersion = "4.1.2"
	ReactVersion    = "18.3.1"
	ReactDOMVersion = "18.3.1"
)

//go:embed assets/graphiql.min.js assets/graphiql.min.css assets/react.production.min.js assets/react-dom.production.min.js
var assetFS embed.FS

// asset is one embedded file, prepared once at start-up.
type asset struct {
	body        []byte
	contentType string
	etag        string // quoted strong ETag
	version     string // short content hash used as ?v= cache buster
}

var assets = loadAssets()

func loadAssets() map[string]*asset {
	types := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
	}
	m := map[string]*asset{}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])
		m[path.Base(p)] = &asset{
			body:        b,
			contentType: types[path.Ext(p)],
			etag:        `"` + h[:32] + `"`,
			version:     h[:12],
		}
		return nil
	})
	if err != nil {
		panic("graphiql: embedded assets: " + err.Error())
	}
	return m
}

// Options configures the GraphiQL page.
type Options struct {
	// Endpoint is the GraphQL HTTP endpoint queries are POSTed to. Default "/graphql".
	Endpoint string
	// AssetPrefix is the URL prefix Assets is mounted on. Default "/graphiql/".
	AssetPrefix string
	// SubscriptionURL is the graphql-transport-ws URL (ws:// or wss://). When empty the
	// page derives it in the browser from location and Endpoint (ws(s)://host/Endpoint).
	SubscriptionURL string
	// Title is the page title. Default "GraphiQL".
	Title string
	// ConsoleURL, when set, is linked from the page's top bar ("Console").
	ConsoleURL string
}

func (o Options) withDefaults() Options {
	if o.Endpoint == "" {
		o.Endpoint = "/graphql"
	}
	if o.AssetPrefix == "" {
		o.AssetPrefix = "/graphiql/"
	}
	if !strings.HasSuffix(o.AssetPrefix, "/") {
		o.AssetPrefix += "/"
	}
	if o.Title == "" {
		o.Title = "GraphiQL"
	}
	return o
}

// DefaultQuery is shown in the editor on first load (GraphiQL keeps later edits in
// the browser's localStorage).
const DefaultQuery = `# Circuit Breaker GraphQL API
#
# Workflows are Petri-net definitions: places
# and transitions. Tokens move between places
# when a transition fires.
#
# Docs panel (book icon, top left): the schema.
# Queries read workflows and tokens, mutations
# create them and fire transitions,
# subscriptions stream changes over
# graphql-transport-ws.
#
# Ctrl-Space: autocomplete  Ctrl-Enter: run
# Shift-Ctrl-P: prettify

query {
  workflows {
    id
    name
    places
  }
}
`

// The page: a bar with the bearer key field above GraphiQL, and one inline
// script. The key is kept in this tab's sessionStorage only (never
// localStorage or a cookie, so it is gone when the tab closes); every request
// the page makes carries it: POSTs as "Authorization: Bearer <key>", graphql-ws
// in connection_init's payload ({"authorization": "Bearer <key>"}).
// GraphiQL's createFetcher sends the fetcher options' headers both ways, and
// opens a new WebSocket client for each subscription, so a changed key is used
// from the next request on. A changed key also hands GraphiQL a new fetcher,
// which makes it fetch the schema again. A pasted "Bearer " prefix is dropped;
// an Authorization header typed into GraphiQL's own Headers editor wins over
// the field. With storage disabled the key lives in the field only.
var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<link rel="stylesheet" href="{{.CSS}}">
<style>
html,body{margin:0;height:100%;overflow:hidden}
body{display:flex;flex-direction:column}
#graphiql{flex:1;min-height:0}
.cb-auth{display:flex;align-items:center;gap:.5rem;padding:.3rem .75rem;font:13px/1.4 system-ui,sans-serif;
  background:#f4f5f7;color:#333;border-bottom:1px solid #dcdfe4}
.cb-auth input{width:22rem;max-width:40vw;padding:.2rem .4rem;font:inherit;border:1px solid #b9bec7;border-radius:4px}
.cb-auth button{padding:.2rem .6rem;font:inherit;border:1px solid #b9bec7;border-radius:4px;background:#fff;cursor:pointer}
.cb-auth small{color:#666}
.cb-auth .cb-console{margin-left:auto;color:#0550ae}
body.graphiql-dark .cb-auth .cb-console{color:#79c0ff}
body.graphiql-dark .cb-auth{background:#0f1420;color:#ccd;border-color:#2a3040}
body.graphiql-dark .cb-auth input,body.graphiql-dark .cb-auth button{background:#1a2030;color:#ccd;border-color:#3a4255}
body.graphiql-dark .cb-auth small{color:#99a}
</style>
</head>
<body>
<div class="cb-auth" role="group" aria-label="Authentication">
<label for="cb-bearer">Bearer key (API key or JWT)</label>
<input id="cb-bearer" type="password" autocomplete="off" spellcheck="false" aria-describedby="cb-bearer-note">
<button id="cb-bearer-clear" type="button" aria-label="Clear the bearer key">Clear</button>
<small id="cb-bearer-note">kept in this tab's session storage only; sent as Authorization: Bearer</small>
{{if .ConsoleURL}}<a class="cb-console" href="{{.ConsoleURL}}">Console</a>{{end}}
</div>
<div id="graphiql">Loading GraphiQL…</div>
<script src="{{.React}}"></script>
<script src="{{.ReactDOM}}"></script>
<script src="{{.GraphiQL}}"></script>
<script>
(function () {
  var endpoint = {{.Endpoint}};
  var subscriptionUrl = {{.SubscriptionURL}};
  if (!subscriptionUrl) {
    var u = new URL(endpoint, window.location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    subscriptionUrl = u.href;
  }
  var base = GraphiQL.createFetcher({
    url: endpoint,
    subscriptionUrl: subscriptionUrl,
    headers: { accept: "application/graphql-response+json, application/json;q=0.9" }
  });

  var stored = "cb.bearer";
  var input = document.getElementById("cb-bearer");
  var key = function () { return input.value.trim().replace(/^bearer\s+/i, ""); };
  var save = function () {
    try {
      if (key()) sessionStorage.setItem(stored, key()); else sessionStorage.removeItem(stored);
    } catch (e) {}
  };
  try { input.value = sessionStorage.getItem(stored) || ""; } catch (e) {}

  var makeFetcher = function () {
    return function (params, opts) {
      var headers = {};
      if (key()) headers.authorization = "Bearer " + key();
      var own = (opts && opts.headers) || {};
      for (var name in own) {
        if (name.toLowerCase() === "authorization") delete headers.authorization;
        headers[name] = own[name];
      }
      return base(params, Object.assign({}, opts, { headers: headers }));
    };
  };
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  var used = key();
  var render = function () {
    used = key();
    root.render(React.createElement(GraphiQL, { fetcher: makeFetcher(), defaultQuery: {{.DefaultQuery}} }));
  };
  var commit = function () { save(); if (key() !== used) render(); };
  input.addEventListener("input", save);
  input.addEventListener("change", commit);
  input.addEventListener("keydown", function (e) { if (e.key === "Enter") commit(); });
  document.getElementById("cb-bearer-clear").addEventListener("click", function () {
    input.value = "";
    commit();
    input.focus();
  });
  render();
})();
</script>
</body>
</html>
`))

// inlineScript returns the text of page's one inline <script> element (the one
// without a src attribute): what its CSP hash is computed over.
func inlineScript(page []byte) []byte {
	const open, end = "<script>", "</script>"
	i := bytes.Index(page, []byte(open))
	if i < 0 {
		return nil
	}
	rest := page[i+len(open):]
	j := bytes.Index(rest, []byte(end))
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// contentSecurityPolicy allows scripts from the page's own origin (and the
// assets' origin, when AssetPrefix is an absolute URL) and the page's one
// inline script by its SHA-256 hash: no other inline script, eval, plugin,
// <base> or framing. Styles, images and connections are not restricted
// (GraphiQL sets inline styles; the endpoints may be on another origin).
func contentSecurityPolicy(o Options, script []byte) string {
	sum := sha256.Sum256(script)
	src := "'self'"
	if u, err := url.Parse(o.AssetPrefix); err == nil && u.Scheme != "" && u.Host != "" {
		src += " " + u.Scheme + "://" + u.Host
	}
	return "script-src " + src + " 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'" +
		"; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// Page returns a handler that serves the GraphiQL HTML page. With an empty
// Options.SubscriptionURL the page computes the graphql-transport-ws URL in the
// browser: Endpoint resolved against the page location, with ws:// for http://
// and wss:// for https://.
//
// It serves GET and HEAD at whatever path it is mounted on (other methods get
// 405), with a Content-Security-Policy that admits the page's own inline
// script by its hash (contentSecurityPolicy). The page is rendered once, here; a bad Options value cannot fail later.
func Page(o Options) http.Handler {
	o = o.withDefaults()
	assetURL := func(name string) string {
		return o.AssetPrefix + name + "?v=" + assets[name].version
	}
	var buf bytes.Buffer
	err := pageTmpl.Execute(&buf, map[string]string{
		"Title":           o.Title,
		"ConsoleURL":      o.ConsoleURL,
		"Endpoint":        o.Endpoint,
		"SubscriptionURL": o.SubscriptionURL,
		"DefaultQuery":    DefaultQuery,
		"CSS":             assetURL("graphiql.min.css"),
		"React":           assetURL("react.production.min.js"),
		"ReactDOM":        assetURL("react-dom.production.min.js"),
		"GraphiQL":        assetURL("graphiql.min.js"),
	})
	if err != nil {
		panic("graphiql: page template: " + err.Error())
	}
	body := buf.Bytes()
	script := inlineScript(body)
	if script == nil {
		panic("graphiql: page template has no inline script")
	}
	csp := contentSecurityPolicy(o, script)
	return webpage.Handler(body, csp)
}

// Assets returns a handler serving the embedded files below prefix (for example
// "/graphiql/graphiql.min.js" with prefix "/graphiql/"). Responses carry an explicit
// Content-Type, a strong ETag (If-None-Match answers 304) and a one-year immutable
// Cache-Control; Page adds a content hash (?v=) to every asset URL, so a new
// binary with new assets never hits a stale cache. Unknown names get 404.
func Assets(prefix string) http.Handler {
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, prefix)
		a := assets[name]
		if !ok || a == nil {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Type", a.contentType)
		// ServeContent answers If-None-Match/If-Range from the ETag set above, and Range.
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}
