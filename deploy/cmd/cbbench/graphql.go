package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// graphQL posts queries over one keep-alive HTTP client.
type graphQL struct {
	url string
	hc  *http.Client
}

func newGraphQL(url string) *graphQL {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	return &graphQL{url: url, hc: &http.Client{Transport: tr}}
}

// do runs a query and fails on HTTP or GraphQL errors.
// do posts query with variables, as GraphQL clients do: the document stays
// the same (and cached by the edge) whatever the values.
func (g *graphQL) do(ctx context.Context, query string, variables map[string]any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": variables})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r struct {
		Errors []struct{ Message string } `json:"errors"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || resp.StatusCode != 200 {
		return fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("graphql: %s", r.Errors[0].Message)
	}
	return nil
}
