// Package webpage serves the edge's own HTML pages (GraphiQL, the
// console): GET or HEAD only, never cached without revalidation, with a
// Content-Security-Policy and no referrer or content sniffing.
package webpage

import "net/http"

// Handler serves body as an HTML page under csp.
func Handler(body []byte, csp string) http.Handler {
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
		h.Set("Content-Security-Policy", csp)
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
