// Package natscli builds natscli, the `nats` command operators use, and
// runs it against a test's server, so that tests check what natscli itself
// shows: the process tests back streams up and restore them with it, and
// the system tests compare the health fields with its view.
//
// A test binary builds it at most once (Path), from the Go module proxy:
// GOBIN=<a temporary directory> go install Module. The go command's build
// cache makes every build after the first a link. A test that cannot have
// it (offline, no module proxy) is skipped with the reason. TestMain calls
// Cleanup after the tests to remove the binary.
package natscli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Module is the natscli the README recommends.
const Module = "github.com/nats-io/natscli/nats@v0.5.0"

// buildTimeout bounds the first build (module downloads included).
const buildTimeout = 3 * time.Minute

var (
	once sync.Once
	dir  string // the temporary directory the binary is in
	path string
	err  error
)

// Path returns natscli's path, building it on the first call; it skips the
// test when natscli cannot be built.
func Path(t testing.TB) string {
	t.Helper()
	once.Do(build)
	if err != nil {
		t.Skipf("natscli could not be built (offline?): %v", err)
	}
	return path
}

func build() {
	if dir, err = os.MkdirTemp("", "cb-natscli-"); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", Module)
	cmd.Dir = dir // outside the workspace: an install of module@version ignores it anyway
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off")
	if out, e := cmd.CombinedOutput(); e != nil {
		err = fmt.Errorf("go install %s: %v\n%s", Module, e, out)
		return
	}
	path = filepath.Join(dir, "nats")
}

// Cleanup removes the binary built; TestMain calls it once the tests are
// done.
func Cleanup() {
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

// Run runs natscli with args against the server at url and returns its
// standard output and standard error (where --trace writes the API
// requests and replies); the test fails if natscli fails. natscli sees
// neither saved contexts nor NATS_* settings of the environment, so only
// url and args count.
func Run(t testing.TB, url string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Path(t), append([]string{"--server", url}, args...)...)
	cmd.Env = append(env(), "XDG_CONFIG_HOME="+t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("nats %s: %v\n%s%s", strings.Join(args, " "), err, out.Bytes(), errOut.Bytes())
	}
	return out.String(), errOut.String()
}

// env is the test's environment without natscli's settings.
func env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NATS_") {
			out = append(out, kv)
		}
	}
	return out
}
