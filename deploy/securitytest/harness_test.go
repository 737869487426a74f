package securitytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// users are the users of accounts.conf and the environment variable each
// one's password comes from.
var users = map[string]string{
	"admin":      "CB_ADMIN_PASSWORD",
	"workflow":   "CB_WORKFLOW_PASSWORD",
	"token":      "CB_TOKEN_PASSWORD",
	"event":      "CB_EVENT_PASSWORD",
	"edge":       "CB_EDGE_PASSWORD",
	"subscriber": "CB_SUBSCRIBER_PASSWORD",
	// Tenants' own users: requests in their tenant's scope only.
	"tenant-acme": "CB_TENANT_ACME_PASSWORD",
	"tenant-beta": "CB_TENANT_BETA_PASSWORD",
	"sys":         "CB_SYS_PASSWORD",
}

// natsDir is deploy/nats.
func natsDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "nats"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// setPasswords puts a fresh random password for every user in the
// environment, where the config file's $VARIABLES are looked up.
func setPasswords(t *testing.T) map[string]string {
	t.Helper()
	pw := make(map[string]string, len(users))
	for user, env := range users {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		pw[user] = hex.EncodeToString(b)
		t.Setenv(env, pw[user])
	}
	return pw
}

// startServer starts nats-server from a config file of deploy/nats on a
// random loopback port, storing in a temporary directory.
func startServer(t *testing.T, conf string) *server.Server {
	t.Helper()
	return startServerFile(t, filepath.Join(natsDir(t), conf))
}

// startServerFile is startServer for a config file given by its path.
func startServerFile(t *testing.T, path string) *server.Server {
	t.Helper()
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPPort = 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs, opts.NoLog = true, os.Getenv("CB_TEST_LOG") == ""
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !opts.NoLog {
		ns.ConfigureLogger()
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// recorder keeps the asynchronous errors of one connection: permission
// violations arrive there, never as the result of the call that caused them.
type recorder struct {
	mu   sync.Mutex
	errs []string
}

func (r *recorder) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err.Error())
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// find returns the first recorded error containing every part.
func (r *recorder) find(parts ...string) (string, bool) {
	for _, e := range r.all() {
		low := strings.ToLower(e)
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(low, strings.ToLower(p))
		}
		if ok {
			return e, true
		}
	}
	return "", false
}

// waitViolation waits (polling, 5 s at most) for a permissions violation
// naming subject.
func (r *recorder) waitViolation(t testing.TB, kind, subject string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := r.find("permissions violation", kind, `"`+subject+`"`); ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no permissions violation for %s to %q; async errors: %q", kind, subject, r.all())
}

// conn is a connection logged in as one user with its private inbox prefix.
type conn struct {
	*nats.Conn
	rec *recorder
}

// dial logs in as user with inbox prefix _INBOX_<user>, as the processes
// do with --nats-user/--nats-password and --inbox-prefix.
func dial(url, user, password string, extra ...nats.Option) (*conn, error) {
	rec := &recorder{}
	opts := append([]nats.Option{
		nats.Name(user),
		nats.UserInfo(user, password),
		nats.CustomInboxPrefix("_INBOX_" + user),
		nats.ErrorHandler(rec.handler),
		nats.MaxReconnects(-1),
	}, extra...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: nc, rec: rec}, nil
}

// deniedRequest sends a request that permissions must stop: it gets no
// reply, and the violation arrives asynchronously.
func deniedRequest(t testing.TB, c *conn, subject string, data []byte) {
	t.Helper()
	_, err := c.Request(subject, data, 300*time.Millisecond)
	if !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request to %s: got %v, want a timeout", subject, err)
	}
	c.rec.waitViolation(t, "publish", subject)
}

// deniedPublish publishes where permissions must refuse it.
func deniedPublish(t testing.TB, c *conn, subject string) {
	t.Helper()
	if err := c.Publish(subject, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	c.rec.waitViolation(t, "publish", subject)
}

// deniedSubscribe subscribes (with queue group q when not empty) where
// permissions must refuse it, and checks nothing is delivered.
func deniedSubscribe(t testing.TB, c *conn, subject, q string) {
	t.Helper()
	sub, err := c.QueueSubscribeSync(subject, q)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	c.rec.waitViolation(t, "subscription", subject)
	if q != "" {
		if _, ok := c.rec.find("subscription", `"`+subject+`"`, `queue "`+q+`"`); !ok {
			t.Fatalf("violation does not name queue %q: %q", q, c.rec.all())
		}
	}
}

// noViolations fails if any connection recorded an asynchronous error.
func noViolations(t testing.TB, conns map[string]*conn) {
	t.Helper()
	for name, c := range conns {
		if errs := c.rec.all(); len(errs) > 0 {
			t.Errorf("%s: asynchronous errors on an allowed path: %q", name, errs)
		}
	}
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
