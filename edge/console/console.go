// Package console serves the Circuit Breaker console: a single-page view of
// workflows (their nets laid out by dagre, live token counts per place),
// tokens (data, history, guard explanations, firing) and live events,
// entirely offline from files embedded in the binary. The page speaks only
// the public GraphQL API (POST /graphql and graphql-transport-ws on the same
// path); see assets/app.js.
//
// Mount the two handlers side by side:
//
//	mux.Handle("GET /console", console.Page(console.Options{Endpoint: "/graphql", AssetPrefix: "/console/assets/"}))
//	mux.Handle("GET /console/assets/", console.Assets("/console/assets/"))
//
// Asset URLs carry the content hash of every asset together
// (/console/assets/<version>/app.js), so the modules' relative imports stay
// within one version and every file can be cached for a year: a new binary
// has a new version. The page loads without credentials; API calls carry
// the bearer key kept in the tab's sessionStorage ("cb.bearer", shared with
// GraphiQL's page).
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/cbnats/circuitbreaker/edge/webpage"
)

// DagreVersion is the vendored graph-layout library's version; keep in sync
// with assets/vendor/LICENSES.md.
const DagreVersion = "3.1.3"

//go:embed assets/*.js assets/*.css assets/index.html assets/vendor/*.js
var assetFS embed.FS

// asset is one embedded file, prepared once at start-up.
type asset struct {
	body        []byte
	contentType string
	etag        string // quoted strong ETag
}

// files are the served assets by their path below assets/ (index.html is
// the page's template and not served as a file).
var files, version = loadAssets()

var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
}

// loadAssets reads every embedded file and computes the version: a hash
// over all their names and contents, in name order.
func loadAssets() (map[string]*asset, string) {
	m := map[string]*asset{}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Base(p) == "index.html" {
			return err
		}
		b, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m[strings.TrimPrefix(p, "assets/")] = &asset{body: b, contentType: contentTypes[path.Ext(p)],
			etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		panic("console: embedded assets: " + err.Error())
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n + "\x00" + m[n].etag + "\x00"))
	}
	return m, hex.EncodeToString(h.Sum(nil))[:12]
}

// Options configures the console page.
type Options struct {
	// Endpoint is the GraphQL endpoint (POST and graphql-transport-ws), on
	// the page's own origin. Default "/graphql".
	Endpoint string
	// AssetPrefix is the path Assets is mounted on. Default "/console/assets/".
	AssetPrefix string
	// GraphiQL is the path of GraphiQL's page, linked from the console's header. Default "/graphql".
	GraphiQL string
}

func (o Options) withDefaults() Options {
	if o.Endpoint == "" {
		o.Endpoint = "/graphql"
	}
	if o.AssetPrefix == "" {
		o.AssetPrefix = "/console/assets/"
	}
	if !strings.HasSuffix(o.AssetPrefix, "/") {
		o.AssetPrefix += "/"
	}
	if o.GraphiQL == "" {
		o.GraphiQL = "/graphql"
	}
	return o
}

// ContentSecurityPolicy is the page's policy: scripts, styles, images and
// connections from the page's own origin only (the console has no inline
// script or style attribute; 'self' covers ws:// and wss:// to the same
// host), no plugins, <base>, form posts or framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

var pageTmpl = template.Must(template.ParseFS(assetFS, "assets/index.html"))

// Page returns a handler serving the console's HTML page on GET and HEAD
// (other methods get 405). The page is rendered once, here.
func Page(o Options) http.Handler {
	o = o.withDefaults()
	var buf bytes.Buffer
	err := pageTmpl.Execute(&buf, map[string]string{
		"Assets":   o.AssetPrefix + version + "/",
		"Endpoint": o.Endpoint,
		"GraphiQL": o.GraphiQL,
	})
	if err != nil {
		panic("console: page template: " + err.Error())
	}
	body := buf.Bytes()
	return webpage.Handler(body, ContentSecurityPolicy)
}

// Assets returns a handler serving the embedded files at
// prefix + <version> + "/" + name. The current version's files are cached
// for a year (immutable); another version's (a page from an older binary)
// are served with no-cache, so they are revalidated by ETag. Unknown names
// get 404.
func Assets(prefix string) http.Handler {
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, _ := strings.CutPrefix(r.URL.Path, prefix)
		v, name, ok := strings.Cut(rest, "/")
		a := files[name]
		if !strings.HasPrefix(r.URL.Path, prefix) || !ok || a == nil {
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
		if v == version {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Type", a.contentType)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}
