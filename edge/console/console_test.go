package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, h http.Handler, method, target string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Result(), string(b)
}

// The files the page cannot work without, and a marker of each.
var wantFiles = map[string]string{
	"app.js":                    "workflowView(",
	"api.js":                    "graphql-transport-ws",
	"views.js":                  "transitionEvaluations",
	"net.js":                    "dagre.layout(",
	"dom.js":                    "createElementNS",
	"console.css":               "prefers-color-scheme: dark",
	"vendor/dagre-3.1.3.esm.js": "export{",
}

func TestEmbeddedFilesPresent(t *testing.T) {
	for name, marker := range wantFiles {
		a := files[name]
		if a == nil {
			t.Errorf("%s is not embedded", name)
			continue
		}
		if !strings.Contains(string(a.body), marker) {
			t.Errorf("%s lacks %q", name, marker)
		}
	}
	if _, ok := files["index.html"]; ok {
		t.Error("the page template is served as a file")
	}
	lic, err := fs.ReadFile(assetFS, "assets/vendor/dagre-3.1.3.esm.js")
	if err != nil || len(lic) < 40_000 {
		t.Errorf("vendored dagre: %d bytes, %v", len(lic), err)
	}
}

func TestPageHeadersAndCSP(t *testing.T) {
	h := Page(Options{})
	for _, path := range []string{"/console", "/console/"} {
		res, body := serve(t, h, http.MethodGet, path, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, res.StatusCode)
		}
		for k, want := range map[string]string{
			"Content-Type":            "text/html; charset=utf-8",
			"Cache-Control":           "no-cache",
			"X-Content-Type-Options":  "nosniff",
			"Content-Security-Policy": ContentSecurityPolicy,
		} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("%s: %q, want %q", k, got, want)
			}
		}
		for _, want := range []string{
			`<script type="module" src="/console/assets/` + version + `/app.js"></script>`,
			`href="/console/assets/` + version + `/console.css"`,
			`<meta name="cb-endpoint" content="/graphql">`,
			`<label for="cb-bearer">Bearer key (API key or JWT)</label>`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %s", want)
			}
		}
		if regexp.MustCompile(`<script>|<script [^>]*>[^<]`).MatchString(body) || strings.Contains(body, "style=") {
			t.Error("the page has an inline script or style attribute, which its CSP forbids")
		}
	}
	for _, directive := range []string{"script-src 'self'", "default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(ContentSecurityPolicy, directive) {
			t.Errorf("CSP lacks %s", directive)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") {
		t.Error("CSP allows unsafe-inline or unsafe-eval")
	}
	if res, _ := serve(t, h, http.MethodPost, "/console", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", res.StatusCode)
	}
	if res, body := serve(t, h, http.MethodHead, "/console", nil); res.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD: %d, %d bytes", res.StatusCode, len(body))
	}
}

func TestAssetsContentTypesAndCaching(t *testing.T) {
	h := Assets("/console/assets/")
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	for name, a := range files {
		res, body := serve(t, h, http.MethodGet, "/console/assets/"+version+"/"+name, nil)
		if res.StatusCode != http.StatusOK || body != string(a.body) {
			t.Fatalf("GET %s: %d, %d bytes", name, res.StatusCode, len(body))
		}
		ext := name[strings.LastIndex(name, "."):]
		if got := res.Header.Get("Content-Type"); got != types[ext] {
			t.Errorf("%s: Content-Type %q", name, got)
		}
		if got := res.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", name, got)
		}
		res, _ = serve(t, h, http.MethodGet, "/console/assets/"+version+"/"+name, map[string]string{"If-None-Match": a.etag})
		if res.StatusCode != http.StatusNotModified {
			t.Errorf("%s with its ETag: %d", name, res.StatusCode)
		}
	}
	// A page of an older binary still gets the files, revalidated each time.
	res, _ := serve(t, h, http.MethodGet, "/console/assets/0123456789ab/app.js", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("other version: %d %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	for _, p := range []string{"/console/assets/" + version + "/index.html", "/console/assets/" + version + "/nope.js",
		"/console/assets/app.js", "/console/assets/" + version + "/../console.go", "/elsewhere/" + version + "/app.js"} {
		if res, _ := serve(t, h, http.MethodGet, p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
}

// externalURL matches an absolute URL or a protocol-relative one in a
// string; the SVG namespace name is an identifier, never fetched.
var externalURL = regexp.MustCompile(`(?:https?:)?//[a-zA-Z0-9.-]+\.[a-z]{2,}[^\s"'<>)]*`)

func TestNoExternalURLsInAssets(t *testing.T) {
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		for _, u := range externalURL.FindAllString(string(b), -1) {
			if u != "http://www.w3.org/2000/svg" {
				t.Errorf("%s references %s", p, u)
			}
		}
		if strings.Contains(string(b), "sourceMappingURL") && !strings.HasPrefix(p, "assets/vendor/") {
			t.Errorf("%s references a source map", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The modules import only each other, by relative path, so they resolve
// below the versioned asset path.
func TestModuleImportsAreRelative(t *testing.T) {
	imp := regexp.MustCompile(`(?m)^import .* from '([^']+)';`)
	for name, a := range files {
		for _, m := range imp.FindAllStringSubmatch(string(a.body), -1) {
			target := strings.TrimPrefix(m[1], "./")
			if !strings.HasPrefix(m[1], "./") || files[target] == nil {
				t.Errorf("%s imports %q: not an embedded file by relative path", name, m[1])
			}
		}
	}
}
