package transfer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Defaults of ImportOptions.
const (
	DefaultMaxLineBytes = 16 << 20
	DefaultRequestBytes = 512 << 10
	maxProblems         = 100
)

// ImportOptions configure an import.
type ImportOptions struct {
	// Merge adds the file's later versions to an existing workflow whose
	// versions equal the file's first ones (without it, that is a conflict).
	Merge bool
	// MaxLineBytes bounds one line of the file (default 16 MiB).
	MaxLineBytes int
	// RequestBytes is about how much of the file goes into one request
	// (default 512 KiB); keep it under the NATS server's max_payload.
	RequestBytes int
	// TriggeredBy is recorded in each token_imported event.
	TriggeredBy string
	// Progress, when set, is called after each request with the summary so far.
	Progress func(*Summary)
}

// Summary says what an import did. The counts of lines read are those of
// the file; the others are what the deployment did with them.
type Summary struct {
	WorkflowID      string    `json:"workflowId"`
	Workflow        string    `json:"workflow,omitempty"` // created, resumed, merged or unchanged
	Read            Counts    `json:"read"`               // lines read, by kind
	VersionsAdded   int       `json:"versionsAdded"`
	Imported        int       `json:"tokensImported"`
	Unchanged       int       `json:"tokensUnchanged"` // stored identically before
	Conflicts       int       `json:"tokensConflicting"`
	Failed          int       `json:"tokensFailed"`
	EntriesStored   int       `json:"historyEntriesStored"`
	EventsImported  int       `json:"eventsImported"`
	EventsSkipped   int       `json:"eventsSkipped"` // imported before
	EventsExpired   int       `json:"eventsExpired"` // older than the event retention here
	Complete        bool      `json:"complete"`      // the end line was read and its counts match
	Problems        []Problem `json:"problems,omitempty"`
	ProblemsOmitted int       `json:"problemsOmitted,omitempty"`
	Error           string    `json:"error,omitempty"`
	Code            string    `json:"code,omitempty"`
}

// Problem is a token that was not imported, and why.
type Problem struct {
	TokenID string `json:"tokenId"`
	Code    string `json:"code"`
	Error   string `json:"error"`
}

// Import reads an export file from r and writes it through the services:
// the versions first (one request), then the events, then the tokens, a
// token's state after its history. It streams: it holds about one
// request's worth of the file and the state of the token being read.
//
// A token is sent only once the line after its history has been read, so
// a file cut off inside a token's history never makes that token visible.
// The tokens before a bad or missing line are imported, and the error says
// where the file broke; importing the whole file again completes the
// import, idempotently (what is stored identically is skipped, entries of
// a token cut off part-way included). A token stored differently is a
// conflict, reported per token; the import goes on with the others. The
// error is nil only when the whole file was imported or found identical.
func Import(ctx context.Context, c *client.Client, r io.Reader, o ImportOptions) (*Summary, error) {
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.RequestBytes <= 0 {
		o.RequestBytes = DefaultRequestBytes
	}
	im := &importer{c: c, o: o, in: bufio.NewReaderSize(r, 64<<10), sum: &Summary{}}
	err := im.run(ctx)
	if err == nil {
		err = im.tokenProblems()
	}
	if err != nil {
		im.sum.Error, im.sum.Code = err.Error(), fail.KindOf(err).String()
	}
	return im.sum, err
}

type importer struct {
	c    *client.Client
	o    ImportOptions
	in   *bufio.Reader
	sum  *Summary
	line int // number of the last line read

	wfID     string
	versions []*flow.Definition
	stage    int // of the file: 0 header, 1 versions, 2 events, 3 tokens, 4 end

	events       []wire.EventRecord
	eventBytes   int
	cur          *flow.Token // the token whose history is being read
	curParts     int         // its parts sent so far
	curEntries   []wire.HistoryItem
	curFirst     int // number of curEntries[0]
	curBytes     int
	curCount     int // its entries read
	pending      []wire.ImportTokenPart
	pendBytes    int
	pendEntries  int
	lastProblem  string // the last token reported, so a token is reported once
	broken       bool   // the file is at fault (not the services)
	unterminated bool   // the last line read had no newline
}

// Stages of the file.
const (
	stageHeader = iota
	stageVersions
	stageEvents
	stageTokens
	stageEnd
)

// fileError is a problem of the file itself, at a line.
func (im *importer) fileError(format string, args ...any) error {
	im.broken = true
	return fail.New(fail.BadInput, "line %d: %s", im.line, fmt.Sprintf(format, args...))
}

func (im *importer) run(ctx context.Context) error {
	for {
		raw, err := im.readLine()
		if errors.Is(err, io.EOF) {
			return im.truncated(ctx)
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		var l line
		if err := json.Unmarshal(raw, &l); err != nil {
			im.flushQuietly(ctx)
			if im.unterminated {
				return im.fileError("the file ends inside this line: it is truncated. The tokens read whole before it were imported; import the complete file to finish")
			}
			return im.fileError("not a JSON line of an export file: %s", wire.DescribeJSONError(err))
		}
		if im.stage == stageEnd {
			return im.fileError("a %q line follows the end line", l.Kind)
		}
		if err := im.take(ctx, &l, len(raw)); err != nil {
			if im.broken {
				im.flushQuietly(ctx)
			}
			return err
		}
		if im.stage == stageEnd {
			return im.finish(ctx)
		}
	}
}

// readLine returns the next line (without its newline), at most
// MaxLineBytes long; io.EOF at the end (a last line without a newline is
// returned first).
func (im *importer) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := im.in.ReadSlice('\n')
		if len(buf)+len(chunk) > im.o.MaxLineBytes+1 {
			im.line++
			return nil, im.fileError("longer than %d bytes", im.o.MaxLineBytes)
		}
		buf = append(buf, chunk...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(buf) == 0 {
				return nil, io.EOF
			}
			im.line++
			if len(buf) > im.o.MaxLineBytes {
				return nil, im.fileError("longer than %d bytes", im.o.MaxLineBytes)
			}
			im.unterminated = true // the last line, without its newline
			return buf, nil
		case err != nil:
			return nil, fmt.Errorf("read line %d: %w", im.line+1, err)
		}
		im.line++
		return bytes.TrimSuffix(buf, []byte("\n")), nil
	}
}

// take handles one line.
func (im *importer) take(ctx context.Context, l *line, size int) error {
	if im.stage == stageHeader {
		return im.header(l)
	}
	switch l.Kind {
	case KindVersion:
		if im.stage != stageVersions {
			return im.fileError("version lines must come right after the header")
		}
		if l.Definition == nil {
			return im.fileError("a version line without its definition")
		}
		im.versions = append(im.versions, l.Definition)
		im.sum.Read.Versions++
		if len(im.versions) > wire.MaxImportVersions {
			return im.fileError("more than %d versions", wire.MaxImportVersions)
		}
		return nil
	case KindEvent:
		if err := im.enter(ctx, stageEvents); err != nil {
			return err
		}
		if l.Event == nil {
			return im.fileError("an event line without its event")
		}
		im.sum.Read.Events++
		im.events, im.eventBytes = append(im.events, *l.Event), im.eventBytes+size
		if len(im.events) >= wire.MaxImportEvents || im.eventBytes >= im.o.RequestBytes {
			return im.sendEvents(ctx)
		}
		return nil
	case KindToken:
		if err := im.enter(ctx, stageTokens); err != nil {
			return err
		}
		if l.Token == nil {
			return im.fileError("a token line without its token")
		}
		if err := im.endToken(ctx); err != nil {
			return err
		}
		im.sum.Read.Tokens++
		if l.Token.Data == nil { // absent; an explicit null stays null
			l.Token.Data = json.RawMessage(`{}`)
		}
		im.cur, im.curParts, im.curEntries, im.curFirst, im.curBytes, im.curCount = l.Token, 0, nil, 1, size, 0
		return nil
	case KindHistory:
		if im.cur == nil || l.TokenID != im.cur.ID {
			return im.fileError("a history line of token %s, which is not the token before it", l.TokenID)
		}
		if l.Entry == nil {
			return im.fileError("a history line without its entry")
		}
		im.sum.Read.HistoryEntries++
		im.curCount++
		im.curEntries, im.curBytes = append(im.curEntries, *l.Entry), im.curBytes+size
		if im.curBytes >= im.o.RequestBytes || len(im.curEntries) >= wire.MaxImportEntries/2 {
			return im.partOfToken(ctx)
		}
		return nil
	case KindEnd:
		if err := im.enter(ctx, stageTokens); err != nil {
			return err
		}
		if err := im.endToken(ctx); err != nil {
			return err
		}
		if l.Counts != im.sum.Read {
			return im.fileError("the end line counts %+v, the file holds %+v: lines are missing or added", l.Counts, im.sum.Read)
		}
		im.stage = stageEnd
		return nil
	case KindError:
		return im.fileError("the export that wrote this file failed: %s", l.Message)
	case KindHeader:
		return im.fileError("a second header")
	}
	return im.fileError("unknown kind %q", l.Kind)
}

func (im *importer) header(l *line) error {
	if l.Format != Format || (l.Kind != "" && l.Kind != KindHeader) {
		return im.fileError("not an export file: the first line must be the header {\"kind\":\"header\",\"format\":%q,…}", Format)
	}
	if l.FormatVersion != FormatVersion {
		return im.fileError("format version %d; this release reads version %d", l.FormatVersion, FormatVersion)
	}
	if err := wire.ValidWorkflowID(l.WorkflowID); err != nil {
		return im.fileError("%s", err.Error())
	}
	im.wfID, im.sum.WorkflowID, im.stage = l.WorkflowID, l.WorkflowID, stageVersions
	return nil
}

// enter moves the file on to stage s (events, then tokens): leaving the
// versions imports the workflow, leaving the events sends the last ones.
func (im *importer) enter(ctx context.Context, s int) error {
	if im.stage > s {
		return im.fileError("event lines must come before the tokens")
	}
	if im.stage == stageVersions {
		if err := im.sendWorkflow(ctx); err != nil {
			return err
		}
	}
	if im.stage == stageEvents && s == stageTokens {
		if err := im.sendEvents(ctx); err != nil {
			return err
		}
	}
	im.stage = s
	return nil
}

func (im *importer) sendWorkflow(ctx context.Context) error {
	if len(im.versions) == 0 {
		return im.fileError("no version lines: a workflow needs at least one")
	}
	rep, err := call(ctx, func(ctx context.Context) (*wire.ImportWorkflowReply, error) {
		return im.c.ImportWorkflow(ctx, &wire.ImportWorkflowRequest{WorkflowID: im.wfID, Versions: im.versions, Merge: im.o.Merge})
	})
	if err != nil {
		return fmt.Errorf("workflow %s: %w", im.wfID, err)
	}
	im.wfID, im.sum.WorkflowID = rep.WorkflowID, rep.WorkflowID // the full id, in a tenant's scope
	im.sum.Workflow, im.sum.VersionsAdded, im.versions = rep.Outcome, rep.Added, nil
	im.progress()
	return nil
}

func (im *importer) sendEvents(ctx context.Context) error {
	if len(im.events) == 0 {
		return nil
	}
	rep, err := call(ctx, func(ctx context.Context) (*wire.ImportEventsReply, error) {
		return im.c.ImportEvents(ctx, &wire.ImportEventsRequest{WorkflowID: im.wfID, Events: im.events})
	})
	if err != nil {
		return fmt.Errorf("events up to line %d: %w", im.line, err)
	}
	im.sum.EventsImported += rep.Imported
	im.sum.EventsSkipped += rep.Skipped
	im.sum.EventsExpired += rep.Expired
	im.events, im.eventBytes = nil, 0
	im.progress()
	return nil
}

// partOfToken queues the entries read of the current token as a part
// without its state (its history goes on).
func (im *importer) partOfToken(ctx context.Context) error {
	part := wire.ImportTokenPart{TokenID: im.cur.ID, First: im.curFirst, Entries: im.curEntries}
	im.curFirst += len(im.curEntries)
	size := im.curBytes
	im.curEntries, im.curBytes, im.curParts = nil, 0, im.curParts+1
	return im.queue(ctx, part, size)
}

// endToken queues the current token's last part, with its state: the
// line after its history has been read, so the history is whole.
func (im *importer) endToken(ctx context.Context) error {
	t := im.cur
	if t == nil {
		return nil
	}
	if im.curCount != t.Records {
		return im.fileError("token %s has records %d, but %d history lines follow it", t.ID, t.Records, im.curCount)
	}
	part := wire.ImportTokenPart{TokenID: t.ID, First: im.curFirst, Entries: im.curEntries, Token: t, Final: true}
	size := im.curBytes
	im.cur, im.curEntries, im.curBytes = nil, nil, 0
	return im.queue(ctx, part, size)
}

// queue adds a part to the next request, sending it when it is full.
func (im *importer) queue(ctx context.Context, p wire.ImportTokenPart, size int) error {
	if len(im.pending) > 0 && (im.pendBytes+size > im.o.RequestBytes || im.pendEntries+len(p.Entries) > wire.MaxImportEntries ||
		len(im.pending) >= maxPartsPerRequest) {
		if err := im.sendTokens(ctx); err != nil {
			return err
		}
	}
	im.pending, im.pendBytes, im.pendEntries = append(im.pending, p), im.pendBytes+size, im.pendEntries+len(p.Entries)
	return nil
}

// maxPartsPerRequest keeps a token.import request well within a
// service's request deadline.
const maxPartsPerRequest = 250

func (im *importer) sendTokens(ctx context.Context) error {
	if len(im.pending) == 0 {
		return nil
	}
	rep, err := call(ctx, func(ctx context.Context) (*wire.ImportTokensReply, error) {
		return im.c.ImportTokens(ctx, &wire.ImportTokensRequest{WorkflowID: im.wfID, Tokens: im.pending, TriggeredBy: im.o.TriggeredBy})
	})
	if err != nil {
		return fmt.Errorf("tokens up to line %d: %w", im.line, err)
	}
	if len(rep.Items) != len(im.pending) {
		return fail.New(fail.Internal, "token.import answered %d items for %d parts", len(rep.Items), len(im.pending))
	}
	for i, it := range rep.Items {
		im.sum.EntriesStored += it.Entries
		final := im.pending[i].Final
		switch it.Outcome {
		case wire.ImportImported:
			im.sum.Imported++
		case wire.ImportUnchanged:
			if final {
				im.sum.Unchanged++
			}
		case wire.ImportPartial:
		case wire.ImportConflict:
			im.problem(it, &im.sum.Conflicts)
		default:
			im.problem(it, &im.sum.Failed)
		}
	}
	im.pending, im.pendBytes, im.pendEntries = nil, 0, 0
	im.progress()
	return nil
}

// problem records a token that was not imported, once per token.
func (im *importer) problem(it wire.ImportOutcome, count *int) {
	if it.TokenID == im.lastProblem {
		return
	}
	im.lastProblem = it.TokenID
	*count++
	if len(im.sum.Problems) < maxProblems {
		im.sum.Problems = append(im.sum.Problems, Problem{TokenID: it.TokenID, Code: it.Code, Error: it.Error})
	} else {
		im.sum.ProblemsOmitted++
	}
}

// finish sends what is queued after the end line.
func (im *importer) finish(ctx context.Context) error {
	if err := im.sendTokens(ctx); err != nil {
		return err
	}
	im.sum.Complete = true
	return nil
}

// truncated ends an import whose file ended without its end line: the
// events and the tokens read whole are sent, the token being read is not.
func (im *importer) truncated(ctx context.Context) error {
	im.broken = true
	switch im.stage {
	case stageHeader:
		return fail.New(fail.BadInput, "the file is empty: an export file starts with its header line")
	case stageVersions:
		return fail.New(fail.BadInput, "the file ends after line %d, in its versions, without its end line: it is truncated; nothing was imported", im.line)
	case stageEvents:
		if err := im.sendEvents(ctx); err != nil {
			return err
		}
		return fail.New(fail.BadInput, "the file ends after line %d, in its events, without its end line: it is truncated. The workflow and the events read were imported, no token; import the complete file to finish", im.line)
	}
	im.flushQuietly(ctx)
	whole, what := im.sum.Read.Tokens, ""
	if im.cur != nil {
		whole, what = whole-1, "; token "+im.cur.ID+", being read, was not (nothing of it is visible)"
	}
	return fail.New(fail.BadInput, "the file ends after line %d without its end line: it is truncated. The workflow and the %d token(s) read whole were imported%s; import the complete file to finish",
		im.line, whole, what)
}

// flushQuietly sends the tokens read whole before the file broke off.
func (im *importer) flushQuietly(ctx context.Context) {
	if im.stage >= stageTokens {
		_ = im.sendTokens(ctx)
	}
}

// tokenProblems is the error of an import that read the whole file but
// did not import every token.
func (im *importer) tokenProblems() error {
	s := im.sum
	if s.Conflicts+s.Failed == 0 {
		return nil
	}
	first := ""
	if len(s.Problems) > 0 {
		first = "; the first: " + s.Problems[0].Error
	}
	if s.Conflicts > 0 {
		return fail.New(fail.Conflict, "%d token(s) exist with other contents and were not imported, %d failed%s", s.Conflicts, s.Failed, first)
	}
	kind := fail.Internal
	if len(s.Problems) > 0 {
		kind = kindOf(s.Problems[0].Code)
	}
	return fail.New(kind, "%d token(s) were not imported%s", s.Failed, first)
}

func kindOf(code string) fail.Kind {
	for k := fail.Internal; k <= fail.Forbidden; k++ {
		if k.String() == code {
			return k
		}
	}
	return fail.Internal
}

func (im *importer) progress() {
	if im.o.Progress != nil {
		im.o.Progress(im.sum)
	}
}
