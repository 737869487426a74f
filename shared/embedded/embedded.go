// Package embedded runs a nats-server with JetStream inside the process,
// storing under a data directory, for the one-command mode and for tests.
package embedded

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the embedded server.
type Options struct {
	DataDir string // JetStream store directory (required)
	Host    string // listen host; default 127.0.0.1
	Port    int    // client port; -1 picks a free one; 0 means 4222
	// NoListen serves in-process connections only.
	NoListen bool
	// SyncAlways fsyncs every write (server option sync_interval: always).
	SyncAlways bool
	// SyncInterval is how often the file store syncs and compacts its
	// blocks (server option sync_interval; 0: the server's 2 minutes).
	SyncInterval time.Duration
	// Logs, when true, routes the server's own log to stderr.
	Logs bool
}

// Start starts a server and waits until it accepts connections.
func Start(o Options) (*server.Server, error) {
	if o.DataDir == "" {
		return nil, errors.New("embedded: DataDir is required")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	opts := &server.Options{
		ServerName:   "cb-embedded",
		Host:         o.Host,
		Port:         o.Port,
		DontListen:   o.NoListen,
		JetStream:    true,
		StoreDir:     o.DataDir,
		NoSigs:       true,
		NoLog:        !o.Logs,
		SyncAlways:   o.SyncAlways,
		SyncInterval: o.SyncInterval,
		// Large enough for a page of tokens with long histories.
		MaxPayload: 8 << 20,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	if o.Logs {
		ns.ConfigureLogger()
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded: server not ready after 30s")
	}
	return ns, nil
}
