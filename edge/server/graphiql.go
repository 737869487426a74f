package server

import (
	"net/http"

	"github.com/cbnats/circuitbreaker/edge/graphiql"
)

const assetPrefix = "/graphiql/"

// graphiqlPage and graphiqlAssets serve the offline GraphiQL.
func graphiqlPage() http.Handler {
	return graphiql.Page(graphiql.Options{Endpoint: "/graphql", AssetPrefix: assetPrefix, Title: "Circuit Breaker"})
}

func graphiqlAssets() http.Handler { return graphiql.Assets(assetPrefix) }
