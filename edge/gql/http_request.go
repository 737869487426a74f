package gql

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// ReadRequest decodes a GraphQL-over-HTTP GET or POST request. A non-zero
// status reports a malformed request with its message. The transports use
// it too.
func ReadRequest(w http.ResponseWriter, r *http.Request, maxBody int64) (Request, int, string) {
	if r.Method == http.MethodGet {
		return requestFromQuery(r)
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != mediaJSON {
		return Request{}, http.StatusUnsupportedMediaType, "Content-Type must be " + mediaJSON + "."
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if isTooLarge(err) {
		return Request{}, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body exceeds %d bytes.", maxBody)
	}
	if err != nil {
		return Request{}, http.StatusBadRequest, "Cannot read request body."
	}
	return requestFromJSON(body)
}

// requestFromJSON decodes a POST body, checking each parameter's type.
func requestFromJSON(body []byte) (Request, int, string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return Request{}, http.StatusBadRequest, "Request body must be a JSON object."
	}
	if dec.More() {
		return Request{}, http.StatusBadRequest, "Request body must be a single JSON object."
	}
	return requestFromParams(raw["query"], raw["operationName"], raw["variables"], raw["extensions"])
}

// requestFromQuery decodes GET query parameters; empty means absent.
func requestFromQuery(r *http.Request) (Request, int, string) {
	q := r.URL.Query()
	param := func(name string) any {
		if v := q.Get(name); v != "" {
			return v
		}
		return nil
	}
	vars, err := decodeJSONParam(q.Get("variables"))
	if err != nil {
		return Request{}, http.StatusBadRequest, "The variables parameter must be a JSON object."
	}
	ext, err := decodeJSONParam(q.Get("extensions"))
	if err != nil {
		return Request{}, http.StatusBadRequest, "The extensions parameter must be a JSON object."
	}
	return requestFromParams(param("query"), param("operationName"), vars, ext)
}

// decodeJSONParam decodes a JSON-encoded GET parameter ("" → nil).
func decodeJSONParam(s string) (any, error) {
	if s == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// requestFromParams checks parameter types: query a string, operationName
// a string or null, variables and extensions objects or null.
func requestFromParams(query, opName, vars, ext any) (Request, int, string) {
	var req Request
	var ok bool
	if req.Query, ok = query.(string); !ok || req.Query == "" {
		return req, http.StatusBadRequest, "The query parameter must be a non-empty string."
	}
	if opName != nil {
		if req.OperationName, ok = opName.(string); !ok {
			return req, http.StatusBadRequest, "The operationName parameter must be a string."
		}
	}
	if vars != nil {
		if req.Variables, ok = vars.(map[string]any); !ok {
			return req, http.StatusBadRequest, "The variables parameter must be an object."
		}
	}
	if ext != nil {
		if req.Extensions, ok = ext.(map[string]any); !ok {
			return req, http.StatusBadRequest, "The extensions parameter must be an object."
		}
	}
	return req, 0, ""
}

// negotiate picks the response media type from Accept headers: the
// supported type with the highest q (earlier wins ties); */* and
// application/* mean application/json; no header means application/json.
func negotiate(accepts []string) (string, bool) {
	if len(accepts) == 0 {
		return mediaJSON, true
	}
	best, bestQ := "", 0.0
	for _, h := range accepts {
		for _, part := range strings.Split(h, ",") {
			media, q := parseAcceptPart(part)
			if media != "" && q > bestQ {
				best, bestQ = media, q
			}
		}
	}
	return best, best != ""
}

// parseAcceptPart maps one Accept entry to a supported media type and its
// quality; "" when unsupported.
func parseAcceptPart(part string) (string, float64) {
	mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
	if err != nil {
		return "", 0
	}
	q := 1.0
	if s, ok := params["q"]; ok {
		if q, err = strconv.ParseFloat(s, 64); err != nil {
			return "", 0
		}
	}
	switch mt {
	case mediaGraphQLJSON:
		return mediaGraphQLJSON, q
	case mediaJSON, "application/*", "*/*":
		return mediaJSON, q
	}
	return "", 0
}

// contextWithTimeout derives the request context bounded by l.Timeout.
func contextWithTimeout(r *http.Request, l Limits) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), l.Timeout)
}
