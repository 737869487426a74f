// Command cbbench measures Circuit Breaker's paths beside the raw NATS and
// JetStream operations underneath them, in one run on one machine, and
// prints a table: operation, clients, ops/s, p50, p99 and the ratio to the
// raw baseline. By default it starts the whole system embedded (in this
// process); --nats and --graphql target a running deployment instead.
//
//	go run ./deploy/cmd/cbbench --duration 3s --json bench.json
//
// A deployment whose server requires a login (deploy/nats/*.conf) takes
// --nats-user (NATS_USER) and NATS_PASSWORD; run-r3.sh runs it against the
// 3-node cluster of deploy/nats/cluster.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/deploy/stack"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/embedded"
	"github.com/cbnats/circuitbreaker/shared/natsconn"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// settings are the command's flags.
type settings struct {
	natsURL, graphqlURL string
	login               config.NATS // credentials for --nats
	duration            time.Duration
	maxOps              int
	clients             []int
	placeSizes          []int
	subscribers         []int
	events              int
	only                *regexp.Regexp
	jsonOut             string
	syncAlways          bool
	dataDir             string
	cpuProfile          string
	tokenInstances      int
	longHistory         int
	timers              int
	pids                map[string]int
}

func parse(args []string, getenv func(string) string) (settings, error) {
	var s settings
	fs := flag.NewFlagSet("cbbench", flag.ContinueOnError)
	registerLogin(&config.Flags{FS: fs, Getenv: getenv}, &s.login)
	fs.StringVar(&s.natsURL, "nats", "", "NATS URL of a running deployment (default: start one embedded)")
	fs.StringVar(&s.graphqlURL, "graphql", "", "GraphQL URL of a running deployment's edge")
	fs.DurationVar(&s.duration, "duration", 3*time.Second, "time per measured case")
	fs.IntVar(&s.maxOps, "max-ops", 500_000, "operations per measured case at most")
	clients := fs.String("clients", "1,16", "concurrent clients per case")
	places := fs.String("place-sizes", "1000,10000,100000", "workflow sizes for tokens-in-place (1000 tokens in the place)")
	subs := fs.String("subscribers", "1,50", "concurrent event subscribers")
	fs.IntVar(&s.events, "events", 5000, "events each subscriber reads in the fan-out case")
	only := fs.String("only", "", "run only cases whose name matches this regexp")
	pids := fs.String("pids", "", "report the memory of these processes too, e.g. token=1234,workflow=1235 (separate-process deployments)")
	fs.StringVar(&s.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&s.syncAlways, "sync-always", false, "embedded server fsyncs every write")
	fs.StringVar(&s.dataDir, "data-dir", "", "embedded data directory (default: a temporary one, removed)")
	fs.IntVar(&s.longHistory, "long-history", 10_000, "transitions of the long-lived token in the history cases")
	fs.IntVar(&s.timers, "timers", 10_000, "timers due in the same second in the timers case")
	fs.IntVar(&s.tokenInstances, "token-instances", 1, "embedded token service instances (more than one race each other)")
	fs.StringVar(&s.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (server, services, edge, clients) to this file")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	var err error
	s.login.URL = s.natsURL
	if s.clients, err = ints(*clients); err != nil {
		return s, err
	}
	if s.placeSizes, err = ints(*places); err != nil {
		return s, err
	}
	if s.subscribers, err = ints(*subs); err != nil {
		return s, err
	}
	if s.pids, err = namedPIDs(*pids); err != nil {
		return s, err
	}
	s.only, err = regexp.Compile(*only)
	return s, err
}

// registerLogin declares how cbbench logs in to a running deployment, with
// the services' flag and variable names (a password is better passed in
// NATS_PASSWORD, out of the process list).
func registerLogin(f *config.Flags, n *config.NATS) {
	f.String(&n.User, "nats-user", "NATS_USER", "", "NATS user for --nats (deploy/nats configs: admin)")
	f.String(&n.Password, "nats-password", "NATS_PASSWORD", "", "NATS password for --nats")
	f.String(&n.Creds, "creds", "NATS_CREDS", "", "NATS credentials file for --nats")
	f.String(&n.InboxPrefix, "inbox-prefix", "NATS_INBOX_PREFIX", "", "inbox prefix for --nats (least-privilege users)")
	n.ConnectTimeout, n.ReconnectBuffer = 10*time.Second, 8<<20
}

// namedPIDs parses "name=pid,…".
func namedPIDs(list string) (map[string]int, error) {
	out := map[string]int{}
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		name, v, ok := strings.Cut(f, "=")
		pid, err := strconv.Atoi(v)
		if !ok || err != nil {
			return nil, fmt.Errorf("--pids: want name=pid, got %q", f)
		}
		out[name] = pid
	}
	return out, nil
}

func ints(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("not a positive number: %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	s, err := parse(args, getenv)
	if err != nil {
		return err
	}
	t, err := target(s)
	if err != nil {
		return err
	}
	defer t.close()
	if s.cpuProfile != "" {
		f, err := os.Create(s.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	b := &bench{s: s, t: t, progress: stderr}
	results, err := b.all()
	if err != nil {
		return err
	}
	printTable(stdout, results, b.notes)
	if s.jsonOut != "" {
		return writeJSON(s.jsonOut, results, b.notes)
	}
	return nil
}

// system is what the benchmark talks to.
type system struct {
	nc      *nats.Conn // TCP, like a user
	graphql string
	stack   *stack.Stack
	tempDir string      // a temporary data directory, removed at the end
	login   config.NATS // how to reach a running deployment (no stack)
}

// serviceConn opens a connection for a bare stand-in of a service,
// connected as our services are: in-process to an embedded server, over
// TCP with the same login to a running deployment. The caller closes it.
func (t *system) serviceConn(name string) (*nats.Conn, error) {
	if t.stack != nil {
		return t.stack.Connect(name) // closed by the stack too; closing twice is harmless
	}
	return natsconn.Connect(t.login, name, zerolog.Nop())
}

func (t *system) close() {
	t.nc.Close()
	if t.stack != nil {
		t.stack.Stop()
	}
	if t.tempDir != "" {
		_ = os.RemoveAll(t.tempDir)
	}
}

func target(s settings) (*system, error) {
	if s.natsURL != "" {
		t := &system{graphql: s.graphqlURL, login: s.login}
		nc, err := natsconn.Connect(s.login, "cbbench", zerolog.Nop())
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", s.natsURL, err)
		}
		t.nc = nc
		return t, nil
	}
	t, dir := &system{}, s.dataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "cbbench-")
		if err != nil {
			return nil, err
		}
		t.tempDir, dir = d, d
	}
	st, err := stack.Start(context.Background(), stack.Options{
		Server:         embedded.Options{DataDir: dir, Port: -1, SyncAlways: s.syncAlways},
		TokenInstances: s.tokenInstances,
		Store:          config.Store{Replicas: 1, DedupeWindow: 2 * time.Minute, EventMaxAge: time.Hour, MaxDeliver: 5, RequestTimeout: 30 * time.Second, RouteWrites: true},
		HTTP:           config.HTTP{Addr: "127.0.0.1:0", MaxBodyBytes: 1 << 20, Timeout: 30 * time.Second, MaxInFlight: 4096},
		Log:            zerolog.Nop(),
	})
	if err != nil {
		return nil, err
	}
	t.stack, t.graphql = st, st.GraphQL
	t.nc, err = nats.Connect(st.ClientURL())
	return t, err
}
