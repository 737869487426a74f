package processtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/natscli"
)

// binDir holds the binaries built once for the whole package run.
var binDir string

const (
	pkgCircuitBreaker = "github.com/cbnats/circuitbreaker/deploy/cmd/circuit-breaker"
	pkgTokenService   = "github.com/cbnats/circuitbreaker/services/token/cmd/token-service"
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cb-processtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	defer natscli.Cleanup()
	binDir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator), pkgCircuitBreaker, pkgTokenService)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "processtest: go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func bin(name string) string { return filepath.Join(binDir, name) }

// childEnv is the test's environment without the settings our commands
// read (CB_*, NATS_*, LOG_LEVEL), so only the flags a test passes count.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CB_") || strings.HasPrefix(kv, "NATS_") || strings.HasPrefix(kv, "LOG_LEVEL=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// lines collects a child's output and lets a test wait for a line.
type lines struct {
	mu      sync.Mutex
	partial []byte
	all     []string
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.all = append(l.all, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

// find returns the first line containing substr.
func (l *lines) find(substr string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.all {
		if strings.Contains(s, substr) {
			return s, true
		}
	}
	return "", false
}

func (l *lines) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all[max(0, len(l.all)-n):], "\n")
}

// proc is a child process of the test.
type proc struct {
	name     string
	cmd      *exec.Cmd
	out      *lines // stdout and stderr, interleaved
	started  time.Time
	done     chan struct{}
	waitErr  error
	exitCode int
}

// startProc starts a binary; the test's cleanup kills it if it still runs
// and, when the test failed, logs the end of its output.
func startProc(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &lines{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin(name), args...)
	p.cmd.Env = childEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		p.exitCode = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill9(t)
		if t.Failed() {
			t.Logf("%s (pid %d) output, last lines:\n%s", name, p.cmd.Process.Pid, p.out.tail(40))
		}
	})
	return p
}

// waitLine waits until the child printed a line containing substr.
func (p *proc) waitLine(t testing.TB, substr string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if s, ok := p.out.find(substr); ok {
			return s
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before printing %q:\n%s", p.name, p.waitErr, substr, p.out.tail(40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %v:\n%s", p.name, substr, d, p.out.tail(40))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill9 sends SIGKILL (to this child's pid only) and waits until it is reaped.
func (p *proc) kill9(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t, 10*time.Second)
}

// terminate sends SIGTERM and waits for a clean exit.
func (p *proc) terminate(t testing.TB, d time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t, d)
	if p.exitCode != 0 {
		t.Errorf("%s exited with code %d after SIGTERM: %v\n%s", p.name, p.exitCode, p.waitErr, p.out.tail(20))
	}
}

func (p *proc) wait(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s (pid %d) still running %v after a signal", p.name, p.cmd.Process.Pid, d)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// circuitBreaker runs the one-process command on dir and port and waits
// until it says it is running; it returns the NATS URL.
func circuitBreaker(t testing.TB, dir string, port int, extra ...string) (*proc, string) {
	t.Helper()
	args := append([]string{"--data-dir", dir, "--nats-port", strconv.Itoa(port), "--http", "127.0.0.1:0",
		"--log-level", "warn"}, extra...)
	p := startProc(t, "circuit-breaker", args...)
	p.waitLine(t, "Circuit Breaker is running.", 60*time.Second)
	return p, fmt.Sprintf("nats://127.0.0.1:%d", port)
}

// tokenService runs one token-service process against url and waits until
// it serves.
func tokenService(t testing.TB, url string) *proc {
	t.Helper()
	p := startProc(t, "token-service", "--nats", url, "--log-level", "info")
	p.waitLine(t, `"serving"`, 30*time.Second)
	return p
}

// ctxFor returns a context that ends after d or with the test.
func ctxFor(t testing.TB, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}
