package graphiql

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

var assetNames = map[string]struct {
	contentType string
	minSize     int
	marker      string
}{
	"graphiql.min.js":             {"text/javascript; charset=utf-8", 500_000, "createFetcher"},
	"graphiql.min.css":            {"text/css; charset=utf-8", 100_000, ".graphiql-container"},
	"react.production.min.js":     {"text/javascript; charset=utf-8", 5_000, "createElement"},
	"react-dom.production.min.js": {"text/javascript; charset=utf-8", 100_000, "createRoot"},
}

// externalURL matches an absolute http(s) URL; the w3.org XML namespace names in
// React/SVG code are identifiers, never fetched, and are excluded.
var externalURL = regexp.MustCompile(`https?://[^\s"'<>)]*`)

// jsString reports whether page assigns the JS string literal value to variable
// name; html/template may or may not escape "/" as "\/" depending on Go version.
func jsString(page, name, value string) bool {
	return strings.Contains(page, "var "+name+" = \""+value+"\"") ||
		strings.Contains(page, "var "+name+" = \""+strings.ReplaceAll(value, "/", `\/`)+"\"")
}

func serve(h http.Handler, method, target string, hdr map[string]string) *http.Response {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPage(t *testing.T) {
	h := Page(Options{Endpoint: "/graphql", AssetPrefix: "/graphiql/", Title: "Circuit Breaker"})
	for _, path := range []string{"/", "/graphiql", "/graphql"} {
		res := serve(h, http.MethodGet, path, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", path, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
		page := body(t, res)
		for name := range assetNames {
			want := "/graphiql/" + name + "?v=" + assets[name].version
			if !strings.Contains(page, want) {
				t.Errorf("page lacks asset URL %q", want)
			}
		}
		if u := externalURL.FindAllString(page, -1); len(u) > 0 {
			t.Errorf("page references external URLs %q", u)
		}
		if !jsString(page, "endpoint", "/graphql") {
			t.Errorf("page lacks endpoint")
		}
		for _, want := range []string{
			"<title>Circuit Breaker</title>",
			"GraphiQL.createFetcher(",
			"application/graphql-response+json, application/json;q=0.9",
			"subscriptionUrl: subscriptionUrl",
			`query {\n  workflows {\n    id\n    name\n    places\n  }\n}`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q", want)
			}
		}
	}
	if res := serve(h, http.MethodPost, "/", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d", res.StatusCode)
	}
	if res := serve(h, http.MethodHead, "/", nil); res.StatusCode != http.StatusOK || body(t, res) != "" {
		t.Errorf("HEAD: status %d", res.StatusCode)
	}
}

func TestPageDefaultsAndEscaping(t *testing.T) {
	page := body(t, serve(Page(Options{}), http.MethodGet, "/", nil))
	if !jsString(page, "endpoint", "/graphql") {
		t.Errorf("default endpoint missing")
	}
	for _, want := range []string{"<title>GraphiQL</title>", `href="/graphiql/graphiql.min.css?v=`, `var subscriptionUrl = ""`} {
		if !strings.Contains(page, want) {
			t.Errorf("default page lacks %q", want)
		}
	}

	page = body(t, serve(Page(Options{
		Title:           "</title><script>alert(1)</script>",
		Endpoint:        `/g"</script><script>alert(2)</script>`,
		AssetPrefix:     "/x",
		SubscriptionURL: "wss://example.test/graphql",
	}), http.MethodGet, "/", nil))
	if strings.Contains(page, "alert(1)</script>") || strings.Contains(page, "alert(2)</script>") {
		t.Errorf("options not escaped:\n%s", page)
	}
	if !strings.Contains(page, `src="/x/graphiql.min.js?v=`) {
		t.Errorf("AssetPrefix without trailing slash not normalised")
	}
	if !jsString(page, "subscriptionUrl", "wss://example.test/graphql") {
		t.Errorf("SubscriptionURL not passed through")
	}
}

func TestAssets(t *testing.T) {
	h := Assets("/graphiql/")
	if len(assets) != len(assetNames) {
		t.Errorf("embedded %d assets, want %d", len(assets), len(assetNames))
	}
	for name, want := range assetNames {
		res := serve(h, http.MethodGet, "/graphiql/"+name+"?v=whatever", nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", name, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != want.contentType {
			t.Errorf("%s: Content-Type %q, want %q", name, ct, want.contentType)
		}
		if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=31536000") {
			t.Errorf("%s: Cache-Control %q", name, cc)
		}
		etag := res.Header.Get("ETag")
		if !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
			t.Errorf("%s: ETag %q", name, etag)
		}
		b := body(t, res)
		if len(b) < want.minSize || !strings.Contains(b, want.marker) {
			t.Errorf("%s: %d bytes, want >= %d containing %q", name, len(b), want.minSize, want.marker)
		}

		res = serve(h, http.MethodGet, "/graphiql/"+name, map[string]string{"If-None-Match": etag})
		if res.StatusCode != http.StatusNotModified {
			t.Errorf("%s: If-None-Match: status %d, want 304", name, res.StatusCode)
		}
	}
	for _, p := range []string{"/graphiql/", "/graphiql/nope.js", "/graphiql/LICENSES.md", "/graphiql/assets/graphiql.min.js", "/other/graphiql.min.js", "/graphiql/../graphiql.min.js"} {
		if res := serve(h, http.MethodGet, p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, res.StatusCode)
		}
	}
	if res := serve(h, http.MethodPost, "/graphiql/graphiql.min.js", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST asset: status %d", res.StatusCode)
	}
	if res := serve(Assets("/graphiql"), http.MethodGet, "/graphiql/react.production.min.js", nil); res.StatusCode != http.StatusOK {
		t.Errorf("prefix without slash: status %d", res.StatusCode)
	}
}

// TestAssetsLoadNothingRemote guards the offline promise: the CSS has no http(s)
// URL at all (its fonts are data: URLs), and the scripts reference no CDN or
// font host. Remaining http(s) strings in the JS are documentation links in
// messages, XML namespace names and markdown link handling, none of them loaded.
func TestAssetsLoadNothingRemote(t *testing.T) {
	css := string(assets["graphiql.min.css"].body)
	if u := externalURL.FindAllString(css, -1); len(u) > 0 {
		t.Errorf("graphiql.min.css references %q", u)
	}
	if strings.Contains(css, "@import") {
		t.Errorf("graphiql.min.css has @import")
	}
	for name := range assetNames {
		s := string(assets[name].body)
		for _, host := range []string{"unpkg.com", "jsdelivr.net", "esm.sh", "cdnjs", "fonts.googleapis", "fonts.gstatic", "skypack"} {
			if strings.Contains(s, host) {
				t.Errorf("%s mentions %s", name, host)
			}
		}
	}
}

// inlineScripts returns the text of every <script> element without a src.
var inlineScripts = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// TestPageBearerKeyField checks the page's field for a bearer key: labelled,
// a password input, kept in sessionStorage only, sent on every request.
func TestPageBearerKeyField(t *testing.T) {
	page := body(t, serve(Page(Options{}), http.MethodGet, "/", nil))
	for _, want := range []string{
		`<label for="cb-bearer">Bearer key (API key or JWT)</label>`,
		`<input id="cb-bearer" type="password" autocomplete="off"`,
		`<button id="cb-bearer-clear" type="button"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	scripts := inlineScripts.FindAllStringSubmatch(page, -1)
	if len(scripts) != 1 {
		t.Fatalf("%d inline scripts, want 1", len(scripts))
	}
	script := scripts[0][1]
	for _, want := range []string{
		`var stored = "cb.bearer"`,
		"sessionStorage.getItem(stored)",
		"sessionStorage.setItem(stored, key())",
		`headers.authorization = "Bearer " + key()`,
		"fetcher: makeFetcher()",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	for _, never := range []string{"localStorage", "cookie", "console."} {
		if strings.Contains(script, never) {
			t.Errorf("script mentions %q", never)
		}
	}
	// The CSP admits no inline handler attributes: the script adds listeners.
	if m := regexp.MustCompile(`(?i)\son[a-z]+=`).FindString(page); m != "" {
		t.Errorf("page has an inline event handler %q", m)
	}
}

// TestPageContentSecurityPolicy checks that the CSP admits the page's inline
// script by the hash of exactly the text served, also when options are
// escaped into it, and the assets' origin when AssetPrefix is absolute.
func TestPageContentSecurityPolicy(t *testing.T) {
	for _, o := range []Options{
		{},
		{Endpoint: `/g"</script><script>alert(2)</script>`, SubscriptionURL: "wss://example.test/graphql"},
		{AssetPrefix: "https://assets.example.test/gq/"},
	} {
		h := Page(o)
		res := serve(h, http.MethodGet, "/", nil)
		csp := res.Header.Get("Content-Security-Policy")
		page := body(t, res)
		scripts := inlineScripts.FindAllStringSubmatch(page, -1)
		if len(scripts) != 1 {
			t.Fatalf("%+v: %d inline scripts, want 1", o, len(scripts))
		}
		sum := sha256.Sum256([]byte(scripts[0][1]))
		src := "script-src 'self' "
		if strings.HasPrefix(o.AssetPrefix, "https://") {
			src += "https://assets.example.test "
		}
		want := src + "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
		if csp != want {
			t.Errorf("%+v: CSP\n%s\nwant\n%s", o, csp, want)
		}
		if head := serve(h, http.MethodHead, "/", nil).Header.Get("Content-Security-Policy"); head != csp {
			t.Errorf("HEAD: CSP %q", head)
		}
	}
}
