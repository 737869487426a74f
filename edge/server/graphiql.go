package server

import (
	"net/http"
)

// graphiqlPage and graphiqlAssets serve the offline GraphiQL (edge/graphiql).
func graphiqlPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><title>Circuit Breaker</title><p>GraphiQL is being added.</p>"))
	})
}

func graphiqlAssets() http.Handler { return http.NotFoundHandler() }
