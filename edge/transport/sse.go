package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

// Media types used by SSE.
const (
	mediaEventStream = "text/event-stream"
	mediaJSON        = "application/json"
)

// SSE serves GraphQL over Server-Sent Events in graphql-sse's "distinct
// connections" mode: a POST (JSON body) or GET (query parameters) request
// accepting text/event-stream gets a stream of `next` events, one per
// result, and a final `complete` event; queries and mutations get one
// `next`. Like graphql-sse's server, a request that cannot be parsed or
// whose operation cannot be found is answered with a non-200 JSON body
// ({"errors":[...]}: 400; 405 for a mutation over GET, 406, 413, 415, and
// 403 when OnConnect refuses), while validation, variable and source
// stream errors are sent as a `next` event on an accepted stream, which
// EventSource can read. The stream ends without `complete` when the client
// is too slow, goes away, or the request context ends (server shutdown).
func SSE(s *gql.Schema, o Options) http.Handler {
	o = o.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveSSE(w, r, s, &o)
	})
}

// serveSSE handles one SSE request.
func serveSSE(w http.ResponseWriter, r *http.Request, s *gql.Schema, o *Options) {
	ctx, log := o.requestContext(r, "sse")
	if !acceptsEventStream(r) {
		writeJSONError(w, http.StatusNotAcceptable, "Accept must include "+mediaEventStream+".")
		return
	}
	req, status, msg := readSSERequest(w, r, o.Limits)
	if status != 0 {
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", msg)
			msg = "Use " + msg + "."
		}
		writeJSONError(w, status, msg)
		return
	}
	ctx, err := o.connect(ctx, r, nil)
	if err != nil {
		log.Info().Err(err).Msg("connection refused")
		writeJSONError(w, http.StatusForbidden, "Forbidden")
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results, errResp := s.Subscribe(ctx, req, o.Limits)
	if errResp != nil {
		if rejectsRequest(errResp) {
			writeJSON(w, http.StatusBadRequest, errResp)
			return
		}
		results = single(errResp)
	}
	streamSSE(ctx, w, results, o, log, cancel)
}

// rejectsRequest reports whether a request error is answered with 400
// rather than streamed: the document does not parse, the operation cannot
// be determined or the request is malformed (graphql-sse does the same).
func rejectsRequest(resp *gql.Response) bool {
	rejected := []string{gql.CodeParseFailed, gql.CodeOperationFailed, gql.CodeBadRequest}
	for _, e := range resp.Errors {
		if code, _ := e.Extensions["code"].(string); slices.Contains(rejected, code) {
			return true
		}
	}
	return false
}

// single returns a closed channel holding resp.
func single(resp *gql.Response) <-chan *gql.Response {
	ch := make(chan *gql.Response, 1)
	ch <- resp
	close(ch)
	return ch
}

// streamSSE writes results as events until they end, the client goes
// away, or the client is too slow (the stream then ends without complete).
func streamSSE(ctx context.Context, w http.ResponseWriter, results <-chan *gql.Response, o *Options, log zerolog.Logger, cancel context.CancelFunc) {
	h := w.Header()
	h.Set("Content-Type", mediaEventStream+"; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: o.WriteTimeout}
	if !sw.write([]byte(":\n\n")) {
		return
	}
	stopKeepAlive := sw.keepAlive(o.KeepAlive)
	ok := forward(ctx, results, o.SendBuffer, newBudget(o.MaxBufferedBytes), o.WriteTimeout, encodeEvent,
		func(b []byte) bool {
			if !sw.write(b) {
				cancel()
				return false
			}
			return true
		},
		func() {
			log.Warn().Int("buffer", o.SendBuffer).Msg("client too slow; ending stream")
			cancel()
		})
	stopKeepAlive()
	if ok && ctx.Err() == nil {
		sw.write([]byte("event: complete\ndata:\n\n"))
	}
}

// encodeEvent encodes a result as a `next` event. JSON encoding escapes
// newlines, so the data fits one line.
func encodeEvent(r *gql.Response) []byte {
	data, err := r.MarshalJSON() // compact already: not parsed again
	if err != nil {
		data, _ = json.Marshal(internalErrorPayload(msgNext))
	}
	b := make([]byte, 0, len(data)+20)
	b = append(b, "event: next\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// sseWriter serialises writes to an event stream and flushes each one
// within a deadline.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration

	mu     sync.Mutex // serialises write
	failed bool       // a write failed; guarded by mu
}

// write writes and flushes b; false once a write has failed.
func (sw *sseWriter) write(b []byte) bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.failed {
		return false
	}
	_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout))
	_, err := sw.w.Write(b)
	if err == nil {
		err = sw.rc.Flush()
	}
	_ = sw.rc.SetWriteDeadline(time.Time{})
	sw.failed = err != nil
	return err == nil
}

// keepAlive writes a ":" comment every interval until the returned stop
// function is called; stop waits for the goroutine to end.
func (sw *sseWriter) keepAlive(interval time.Duration) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sw.write([]byte(":\n\n"))
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// writeJSON writes resp as a JSON body with status.
func writeJSON(w http.ResponseWriter, status int, resp *gql.Response) {
	body, err := json.Marshal(resp)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"errors":[{"message":"internal error: encoding response"}]}`)
	}
	w.Header().Set("Content-Type", mediaJSON+"; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeJSONError writes one request error with status.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, &gql.Response{Errors: []*gql.Error{{Message: msg, Extensions: map[string]any{"code": gql.CodeBadRequest}}}})
}
