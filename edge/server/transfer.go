package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/transfer"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Export and import over HTTP (shared/transfer has the format):
//
//	GET  /export/workflows/{id}[?events=true]  streams the workflow as NDJSON
//	POST /import[?merge=true]                  reads NDJSON as it arrives; answers a JSON summary
//
// Both are for admins whenever the edge authenticates (an open metrics
// setting does not open them) and act in the caller's tenant scope. They
// stream: the body of an import is not read whole first (the guard lets it
// through, see streamed), each line is bounded (transfer's 16 MiB), and
// the read deadline is the body timeout between reads, not for the whole
// body; the write deadline moves on as an export is written.

// Paths of the transfer endpoints.
const (
	exportPath = "/export/workflows/"
	importPath = "/import"
)

// streamed reports whether r is an import, whose body the guard must not
// read whole: it may be far larger than --max-body, and is read line by line.
func streamed(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Path == importPath }

// transferRoutes adds the transfer endpoints to mux.
func (s *Server) transferRoutes(mux *http.ServeMux) {
	mux.Handle("GET "+exportPath+"{id}", s.adminAlways(http.HandlerFunc(s.exportWorkflow)))
	mux.Handle("POST "+importPath, s.adminAlways(http.HandlerFunc(s.importWorkflow)))
}

// adminAlways serves next to admins only when the edge authenticates,
// whatever metricsOpen says; the identity goes into the context.
func (s *Server) adminAlways(next http.Handler) http.Handler {
	a := s.opts.Auth
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.Authenticate(r.Header.Get("Authorization"))
		if err != nil {
			w.Header().Set("Connection", "close")
			unauthenticated(w, err)
			return
		}
		noteIdentity(r.Context(), id)
		if id.Role < auth.Admin {
			w.Header().Set("Connection", "close")
			transferError(w, fail.New(fail.Forbidden, "%s needs the admin role; %s has the %s role", r.URL.Path, id.Name, id.Role))
			return
		}
		ctx, cancel := untilExpiry(auth.WithIdentity(r.Context(), id), id)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// client is the services' client in the request's tenant scope.
func (s *Server) transferClient(ctx context.Context) *client.Client {
	c := client.New(s.nc)
	if id, ok := auth.FromContext(ctx); ok {
		return c.As(id.Scope())
	}
	return c
}

func (s *Server) exportWorkflow(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	events, err := boolParam(r, "events")
	if err == nil {
		err = wire.ValidWorkflowID(id)
	}
	if err != nil {
		transferError(w, err)
		return
	}
	rc := http.NewResponseController(w)
	out := &lazyWriter{w: w, extend: func() { _ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout)) }, start: func() {
		w.Header().Set("Content-Type", transfer.ContentType)
		w.Header().Set("Content-Disposition", `attachment; filename="`+safeFilename(id)+`.ndjson"`)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}}
	_, err = transfer.Export(r.Context(), s.transferClient(r.Context()), out, transfer.ExportOptions{WorkflowID: id, Events: events,
		Flush: func() { _ = rc.Flush() }})
	if err != nil && !out.started {
		transferError(w, err)
	} else if err != nil {
		s.opts.Log.Warn().Err(err).Str("workflow", id).Msg("export ended early (the file ends with an error line)")
	}
}

func (s *Server) importWorkflow(w http.ResponseWriter, r *http.Request) {
	merge, err := boolParam(r, "merge")
	if err != nil {
		transferError(w, err)
		return
	}
	rc := http.NewResponseController(w)
	idle := s.opts.BodyTimeout
	body := &idleReader{r: r.Body, extend: func() { _ = rc.SetReadDeadline(time.Now().Add(idle)) }}
	by := "http"
	if id, ok := auth.FromContext(r.Context()); ok {
		by = id.Name
	}
	sum, err := transfer.Import(r.Context(), s.transferClient(r.Context()), body, transfer.ImportOptions{Merge: merge, TriggeredBy: by,
		RequestBytes: int(min(s.nc.MaxPayload()/4, 1<<20)),
		Progress:     func(*transfer.Summary) { _ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout)) }})
	status := http.StatusOK
	if err != nil {
		status = httpStatus(err)
		if body.err != nil && !errors.Is(body.err, io.EOF) { // the client, not the file: too slow, or gone
			status, sum.Error, sum.Code = http.StatusRequestTimeout, "reading the request body: "+body.err.Error(), "BAD_REQUEST"
		}
		w.Header().Set("Connection", "close") // the rest of the body, if any, is not read
	}
	_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	writeJSON(w, status, sum)
}

// boolParam reads an optional true/false query parameter.
func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fail.New(fail.BadInput, "%s must be true or false, not %q", name, v)
	}
	return b, nil
}

// transferError answers err as {"error", "code"} with its HTTP status.
func transferError(w http.ResponseWriter, err error) {
	writeJSON(w, httpStatus(err), map[string]string{"error": err.Error(), "code": fail.KindOf(err).String()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// httpStatus is the status of an error kind.
func httpStatus(err error) int {
	switch fail.KindOf(err) {
	case fail.BadInput:
		return http.StatusBadRequest
	case fail.NotFound:
		return http.StatusNotFound
	case fail.Conflict:
		return http.StatusConflict
	case fail.Forbidden:
		return http.StatusForbidden
	case fail.ResourceExhausted:
		return http.StatusTooManyRequests
	case fail.Unavailable:
		return http.StatusServiceUnavailable
	case fail.Timeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// safeFilename keeps a workflow id's safe characters (':' of a tenant id
// becomes '_').
func safeFilename(id string) string {
	b := []byte(id)
	for i, c := range b {
		if c == ':' {
			b[i] = '_'
		}
	}
	return string(b)
}

// lazyWriter writes the response's header when the first bytes come, so
// an export that fails before writing anything gets an error status, and
// gives every write the write timeout (a client that stops reading stalls
// the export that long, no longer; an export as long as it keeps going).
type lazyWriter struct {
	w       io.Writer
	start   func()
	extend  func()
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.start()
	}
	l.extend()
	return l.w.Write(p)
}

// idleReader gives every read of the body the body timeout, so a body
// may take as long as it keeps coming (the time the import spends on the
// services between reads does not count), and remembers the error that
// ended it.
type idleReader struct {
	r      io.Reader
	extend func()
	err    error
}

func (i *idleReader) Read(p []byte) (int, error) {
	i.extend()
	n, err := i.r.Read(p)
	if err != nil && i.err == nil {
		i.err = err
	}
	return n, err
}
