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
package graphiql

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
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

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<link rel="stylesheet" href="{{.CSS}}">
<style>html,body{margin:0;height:100%;overflow:hidden}#graphiql{height:100vh;height:100dvh}</style>
</head>
<body>
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
  var fetcher = GraphiQL.createFetcher({
    url: endpoint,
    subscriptionUrl: subscriptionUrl,
    headers: { accept: "application/graphql-response+json, application/json;q=0.9" }
  });
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, { fetcher: fetcher, defaultQuery: {{.DefaultQuery}} })
  );
})();
</script>
</body>
</html>
`))

// Page returns a handler that serves the GraphiQL HTML page. With an empty
// Options.SubscriptionURL the page computes the graphql-transport-ws URL in the
// browser: Endpoint resolved against the page location, with ws:// for http://
// and wss:// for https://.
//
// It serves GET and HEAD at whatever path it is mounted on (other methods get
// 405). The page is rendered once, here; a bad Options value cannot fail later.
func Page(o Options) http.Handler {
	o = o.withDefaults()
	url := func(name string) string {
		return o.AssetPrefix + name + "?v=" + assets[name].version
	}
	var buf bytes.Buffer
	err := pageTmpl.Execute(&buf, map[string]string{
		"Title":           o.Title,
		"Endpoint":        o.Endpoint,
		"SubscriptionURL": o.SubscriptionURL,
		"DefaultQuery":    DefaultQuery,
		"CSS":             url("graphiql.min.css"),
		"React":           url("react.production.min.js"),
		"ReactDOM":        url("react-dom.production.min.js"),
		"GraphiQL":        url("graphiql.min.js"),
	})
	if err != nil {
		panic("graphiql: page template: " + err.Error())
	}
	body := buf.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
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
