package server

import (
	"net/http"

	"github.com/cbnats/circuitbreaker/edge/console"
	"github.com/cbnats/circuitbreaker/edge/graphiql"
)

const assetPrefix = "/graphiql/"

// graphiqlPage and graphiqlAssets serve the offline GraphiQL.
func graphiqlPage() http.Handler {
	return graphiql.Page(graphiql.Options{Endpoint: "/graphql", AssetPrefix: assetPrefix, Title: "Circuit Breaker", ConsoleURL: "/console"})
}

func graphiqlAssets() http.Handler { return graphiql.Assets(assetPrefix) }

const consoleAssets = "/console/assets/"

// consolePage and consoleAssetFiles serve the console (edge/console).
func consolePage() http.Handler {
	return console.Page(console.Options{Endpoint: "/graphql", AssetPrefix: consoleAssets, GraphiQL: "/graphql"})
}

func consoleAssetFiles() http.Handler { return console.Assets(consoleAssets) }
