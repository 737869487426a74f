package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/logging"
	"github.com/cbnats/circuitbreaker/shared/natsconn"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/transfer"
)

// The export and import subcommands talk to a running system over NATS,
// like any client:
//
//	circuit-breaker export --workflow ID [--events] > file.ndjson
//	circuit-breaker import [--merge] < file.ndjson
//
// Progress goes to stderr about once a second; import prints its summary
// as JSON on stdout. Both exit non-zero on failure.

// transferCommands are the subcommands runTransfer serves.
var transferCommands = map[string]bool{"export": true, "import": true}

// transferSettings are the flags of export and import.
type transferSettings struct {
	NATS        config.NATS
	Tenant      string
	Workflow    string
	Events      bool
	Merge       bool
	MaxLine     int
	TriggeredBy string
	LogLevel    string
}

func parseTransfer(cmd string, args []string, getenv func(string) string) (transferSettings, error) {
	var s transferSettings
	fs := flag.NewFlagSet("circuit-breaker "+cmd, flag.ContinueOnError)
	f := &config.Flags{FS: fs, Getenv: getenv}
	s.NATS.Register(f, "nats://127.0.0.1:4222")
	f.String(&s.Tenant, "tenant", "CB_TENANT", "", "act for this tenant only (default: every tenant)")
	f.String(&s.LogLevel, "log-level", "LOG_LEVEL", "warn", "log level: debug, info, warn, error")
	if cmd == "export" {
		f.String(&s.Workflow, "workflow", "", "", "id of the workflow to export (required)")
		f.Bool(&s.Events, "events", "", false, "also export the retained events")
	} else {
		f.Bool(&s.Merge, "merge", "", false, "add the file's later versions to an existing workflow whose versions equal the file's first ones")
		f.Int(&s.MaxLine, "max-line-bytes", "", transfer.DefaultMaxLineBytes, "longest line of the file accepted")
		f.String(&s.TriggeredBy, "triggered-by", "", "import", "who imported, as the token_imported events record it")
	}
	if err := f.Err(); err != nil {
		return s, err
	}
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("%s: unexpected argument %q (the file is %s)", cmd, fs.Arg(0), map[string]string{"export": "stdout", "import": "stdin"}[cmd])
	}
	if cmd == "export" && s.Workflow == "" {
		return s, fmt.Errorf("export: --workflow is required")
	}
	if s.Tenant != "" && !tenant.Valid(s.Tenant) {
		return s, fmt.Errorf("%s: --tenant %q is not a tenant name", cmd, s.Tenant)
	}
	return s, nil
}

// runTransfer runs export or import against the system at --nats.
func runTransfer(cmd string, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	s, err := parseTransfer(cmd, args, getenv)
	if err != nil {
		return err
	}
	log := logging.New(stderr, s.LogLevel, "circuit-breaker "+cmd)
	nc, err := natsconn.Connect(s.NATS, "circuit-breaker "+cmd, log)
	if err != nil {
		return fmt.Errorf("%s: connect to NATS at %s: %w", cmd, s.NATS.URL, err)
	}
	defer nc.Close()
	c := client.New(nc)
	if s.Tenant != "" {
		c = c.As(tenant.Scope(s.Tenant))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	every := newTicker(time.Second)
	if cmd == "export" {
		out := bufio.NewWriterSize(stdout, 256<<10)
		n, err := transfer.Export(ctx, c, out, transfer.ExportOptions{WorkflowID: s.Workflow, Events: s.Events,
			Progress: func(n transfer.Counts) {
				if every.due() {
					fmt.Fprintf(stderr, "exporting %s: %d tokens, %d history entries, %d events\n", s.Workflow, n.Tokens, n.HistoryEntries, n.Events)
				}
			}})
		if ferr := out.Flush(); err == nil && ferr != nil {
			err = fmt.Errorf("write: %w", ferr)
		}
		if err != nil {
			return fmt.Errorf("export %s: %w", s.Workflow, err)
		}
		fmt.Fprintf(stderr, "exported %s: %d versions, %d tokens, %d history entries, %d events\n", s.Workflow, n.Versions, n.Tokens, n.HistoryEntries, n.Events)
		return nil
	}
	sum, err := transfer.Import(ctx, c, stdin, transfer.ImportOptions{Merge: s.Merge, MaxLineBytes: s.MaxLine, TriggeredBy: s.TriggeredBy,
		RequestBytes: int(min(nc.MaxPayload()/4, 1<<20)),
		Progress: func(sum *transfer.Summary) {
			if every.due() {
				fmt.Fprintf(stderr, "importing %s: %d tokens read, %d imported, %d unchanged, %d not imported\n",
					sum.WorkflowID, sum.Read.Tokens, sum.Imported, sum.Unchanged, sum.Conflicts+sum.Failed)
			}
		}})
	b, _ := json.MarshalIndent(sum, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	fmt.Fprintf(stderr, "imported %s (workflow %s, %d versions added): %d tokens imported, %d unchanged, %d history entries stored, %d events imported\n",
		sum.WorkflowID, sum.Workflow, sum.VersionsAdded, sum.Imported, sum.Unchanged, sum.EntriesStored, sum.EventsImported)
	return nil
}

// ticker says when a second has passed since it last said so.
type ticker struct {
	every time.Duration
	last  time.Time
}

func newTicker(every time.Duration) *ticker { return &ticker{every: every, last: time.Now()} }

func (t *ticker) due() bool {
	if time.Since(t.last) < t.every {
		return false
	}
	t.last = time.Now()
	return true
}
