package transfer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// RequestTimeout bounds each request export and import make.
const RequestTimeout = 30 * time.Second

// ExportOptions say what to export.
type ExportOptions struct {
	WorkflowID string
	Events     bool // also the retained events
	// Progress, when set, is called after each token and once at the end
	// with what has been written so far.
	Progress func(Counts)
	// Flush, when set, is called whenever the buffered lines have been
	// written to the writer (after each page of tokens), so an HTTP
	// response can send them on.
	Flush func()
}

// Export writes the workflow to w in the export format, reading it page
// by page through the services. It is not a snapshot of a workflow being
// written to: each token is written as it was when read, with its history
// up to that state (its first records entries); a token that changes
// while the export runs is written once. A workflow that does not exist
// is an error before anything is written; a failure later ends the file
// with an error line (and no end line).
func Export(ctx context.Context, c *client.Client, w io.Writer, o ExportOptions) (Counts, error) {
	var n Counts
	vs, err := call(ctx, func(ctx context.Context) (*wire.WorkflowVersions, error) {
		return c.WorkflowVersions(ctx, o.WorkflowID)
	})
	if err != nil {
		return n, err
	}
	if len(vs.Items) == 0 {
		return n, fail.New(fail.NotFound, "Workflow not found: %s", o.WorkflowID)
	}
	wfID := vs.Items[0].ID
	bw := bufio.NewWriterSize(w, 64<<10)
	e := &exporter{c: c, w: bw, o: o, wfID: wfID, n: &n, seen: make(map[uuid.UUID]struct{})}
	err = e.run(ctx, vs)
	if err != nil {
		_ = e.write(ErrorLine{Kind: KindError, Message: err.Error()})
	}
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = ferr
	}
	if o.Flush != nil {
		o.Flush()
	}
	if o.Progress != nil {
		o.Progress(n)
	}
	return n, err
}

type exporter struct {
	c    *client.Client
	w    *bufio.Writer
	o    ExportOptions
	wfID string
	n    *Counts
	seen map[uuid.UUID]struct{} // tokens written
}

func (e *exporter) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fail.Wrap(fail.Internal, err, "encode line")
	}
	if _, err := e.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (e *exporter) flush() error {
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if e.o.Flush != nil {
		e.o.Flush()
	}
	return nil
}

func (e *exporter) run(ctx context.Context, vs *wire.WorkflowVersions) error {
	if err := e.write(Header{Kind: KindHeader, Format: Format, FormatVersion: FormatVersion, ExportedAt: time.Now().UTC(),
		WorkflowID: e.wfID, IncludesEvents: e.o.Events}); err != nil {
		return err
	}
	for _, d := range vs.Items {
		if err := e.write(VersionLine{Kind: KindVersion, Definition: d}); err != nil {
			return err
		}
		e.n.Versions++
	}
	if e.o.Events {
		if err := e.events(ctx); err != nil {
			return err
		}
	}
	if err := e.tokens(ctx); err != nil {
		return err
	}
	return e.write(EndLine{Kind: KindEnd, Counts: *e.n})
}

// events writes the retained events, page by page.
func (e *exporter) events(ctx context.Context) error {
	for after := uint64(0); ; {
		p, err := call(ctx, func(ctx context.Context) (*wire.EventPage, error) {
			return e.c.History(ctx, &wire.HistoryRequest{WorkflowID: e.wfID, AfterSequence: after, First: wire.MaxPageSize})
		})
		if err != nil {
			return fmt.Errorf("events after sequence %d: %w", after, err)
		}
		for i := range p.Items {
			if err := e.write(EventLine{Kind: KindEvent, Event: &p.Items[i]}); err != nil {
				return err
			}
			e.n.Events++
		}
		if err := e.flush(); err != nil {
			return err
		}
		if p.Next == 0 {
			return nil
		}
		after = p.Next
	}
}

// tokens writes every token with its history, page by page: the live
// ones, then the archived ones.
func (e *exporter) tokens(ctx context.Context) error {
	if err := e.tokenList(ctx, e.c.ListTokens); err != nil {
		return err
	}
	return e.tokenList(ctx, e.c.ListArchivedTokens)
}

func (e *exporter) tokenList(ctx context.Context, list func(context.Context, string, wire.Page) (*wire.TokenPage, error)) error {
	for cursor := ""; ; {
		p, err := call(ctx, func(ctx context.Context) (*wire.TokenPage, error) {
			return list(ctx, e.wfID, wire.Page{First: wire.MaxPageSize, After: cursor})
		})
		if err != nil {
			return fmt.Errorf("tokens after %q: %w", cursor, err)
		}
		for _, t := range p.Items {
			u, err := uuid.Parse(t.ID)
			if err != nil {
				return fail.Wrap(fail.Internal, err, "token id "+t.ID)
			}
			if _, dup := e.seen[u]; dup {
				continue // moved since it was written: it is written as it was then
			}
			ok, err := e.token(ctx, t)
			if err != nil {
				return fmt.Errorf("token %s: %w", t.ID, err)
			}
			if ok {
				e.seen[u] = struct{}{}
				if e.o.Progress != nil {
					e.o.Progress(*e.n)
				}
			}
		}
		if err := e.flush(); err != nil {
			return err
		}
		if p.Next == "" {
			return nil
		}
		cursor = p.Next
	}
}

// token writes one token and its first t.Records history entries; false
// when the token is gone (deleted since it was listed).
func (e *exporter) token(ctx context.Context, t *flow.Token) (bool, error) {
	req := &wire.TokenHistoryRequest{TokenID: t.ID, First: wire.MaxPageSize}
	written, started := 0, false
	for {
		p, err := call(ctx, func(ctx context.Context) (*wire.TokenHistoryPage, error) { return e.c.TokenHistory(ctx, req) })
		if !started && errors.Is(err, fail.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("history after entry %d: %w", written, err)
		}
		if !started {
			if err := e.write(TokenLine{Kind: KindToken, Token: t}); err != nil {
				return false, err
			}
			e.n.Tokens, started = e.n.Tokens+1, true
		}
		for i := range p.Items {
			if written == t.Records {
				return true, nil // entries of changes made after the state was read
			}
			if err := e.write(HistoryLine{Kind: KindHistory, TokenID: t.ID, Entry: &p.Items[i]}); err != nil {
				return false, err
			}
			written++
			e.n.HistoryEntries++
		}
		if written == t.Records {
			return true, nil
		}
		if p.Next == 0 {
			return false, fail.New(fail.Internal, "its history has %d entries, its records say %d", written, t.Records)
		}
		req.After = strconv.FormatUint(p.Next, 10)
	}
}

// call runs one request with RequestTimeout.
func call[T any](ctx context.Context, f func(context.Context) (*T, error)) (*T, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	return f(ctx)
}
