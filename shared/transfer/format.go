// Package transfer exports a workflow — every version, every token with
// its whole history and, optionally, its retained events — to a stream of
// newline-delimited JSON, and imports such a stream into a deployment. It
// works through the services only (shared/client): export reads with the
// ordinary paged endpoints, import writes with workflow.import,
// token.import and token.importevents. Both hold a bounded amount in
// memory whatever the workflow's size (export also remembers the ids of
// the tokens it wrote, 16 bytes each, so that a token that moves while it
// runs is not written twice).
//
// The format (formatVersion 1), one JSON object per line, in this order:
//
//	{"kind":"header","format":"circuit-breaker/export","formatVersion":1,"exportedAt":…,"workflowId":…,"includesEvents":bool}
//	{"kind":"version","definition":Definition}                          one per version, 1, 2, … in order
//	{"kind":"event","event":{"sequence","subject","time","event"}}       the retained events, in order (with --events)
//	{"kind":"token","token":Token}                                      per token, followed by
//	{"kind":"history","tokenId":…,"entry":{"sequence","record","event"?}}  its history entries, oldest first
//	{"kind":"end","versions":V,"tokens":N,"historyEntries":M,"events":K}   the counts: a file without it is truncated
//
// A failed export ends with {"kind":"error","message":…} instead of the
// end line. The README documents every field. NATS sequences, subjects and
// stream times in a file are the source's, for information: an import
// assigns new ones.
package transfer

import (
	"time"

	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Format and FormatVersion identify the file format in its header.
const (
	Format        = "circuit-breaker/export"
	FormatVersion = 1
)

// Line kinds.
const (
	KindHeader  = "header"
	KindVersion = "version"
	KindEvent   = "event"
	KindToken   = "token"
	KindHistory = "history"
	KindEnd     = "end"
	KindError   = "error"
)

// ContentType is the media type of an export file.
const ContentType = "application/x-ndjson"

// Header is the first line of a file.
type Header struct {
	Kind           string    `json:"kind"`
	Format         string    `json:"format"`
	FormatVersion  int       `json:"formatVersion"`
	ExportedAt     time.Time `json:"exportedAt"`
	WorkflowID     string    `json:"workflowId"`
	IncludesEvents bool      `json:"includesEvents"`
}

// VersionLine carries one version of the workflow's definition.
type VersionLine struct {
	Kind       string           `json:"kind"`
	Definition *flow.Definition `json:"definition"`
}

// EventLine carries one retained event.
type EventLine struct {
	Kind  string            `json:"kind"`
	Event *wire.EventRecord `json:"event"`
}

// TokenLine carries one token's state; its history lines follow it.
type TokenLine struct {
	Kind  string      `json:"kind"`
	Token *flow.Token `json:"token"`
}

// HistoryLine carries one entry of the history of the token before it.
type HistoryLine struct {
	Kind    string            `json:"kind"`
	TokenID string            `json:"tokenId"`
	Entry   *wire.HistoryItem `json:"entry"`
}

// Counts are what a file holds, as its end line states them.
type Counts struct {
	Versions       int `json:"versions"`
	Tokens         int `json:"tokens"`
	HistoryEntries int `json:"historyEntries"`
	Events         int `json:"events"`
}

// EndLine is the last line of a complete file.
type EndLine struct {
	Kind string `json:"kind"`
	Counts
}

// ErrorLine ends a file whose export failed.
type ErrorLine struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// line is any line as read: the union of the kinds' fields.
type line struct {
	Kind           string            `json:"kind"`
	Format         string            `json:"format"`
	FormatVersion  int               `json:"formatVersion"`
	WorkflowID     string            `json:"workflowId"`
	IncludesEvents bool              `json:"includesEvents"`
	Definition     *flow.Definition  `json:"definition"`
	Event          *wire.EventRecord `json:"event"`
	Token          *flow.Token       `json:"token"`
	TokenID        string            `json:"tokenId"`
	Entry          *wire.HistoryItem `json:"entry"`
	Message        string            `json:"message"`
	Counts
}
