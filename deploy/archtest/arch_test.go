// Package archtest enforces the architecture: which packages may import
// which. It reads the real import graph with `go list`.
package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const prefix = "github.com/cbnats/circuitbreaker/"

// deps returns each workspace package's transitive imports.
func deps(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, prefix+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	m := make(map[string][]string)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		m[f[0]] = f[1:]
	}
	if len(m) < 10 {
		t.Fatalf("only %d packages listed", len(m))
	}
	return m
}

// rule forbids packages under from to depend on packages under any of to.
type rule struct {
	from string
	to   []string
	why  string
}

func TestForbiddenImports(t *testing.T) {
	rules := []rule{
		{"shared/", []string{prefix + "services/", prefix + "edge", prefix + "deploy/"}, "shared is a leaf library"},
		{"services/workflow", []string{prefix + "services/token", prefix + "services/event", prefix + "edge"}, "services talk over NATS only"},
		{"services/token", []string{prefix + "services/workflow", prefix + "services/event", prefix + "edge"}, "services talk over NATS only"},
		{"services/event", []string{prefix + "services/workflow", prefix + "services/token", prefix + "edge"}, "services talk over NATS only"},
		{"edge", []string{prefix + "services/", prefix + "deploy/"}, "the edge talks to services over NATS only"},
		{"shared/flow", []string{"github.com/nats-io/", "net/http"}, "the domain model knows nothing of NATS or HTTP"},
		{"shared/rules", []string{"github.com/nats-io/", "net/http"}, "the domain model knows nothing of NATS or HTTP"},
		{"shared/mergepatch", []string{"github.com/nats-io/", "net/http"}, "the domain model knows nothing of NATS or HTTP"},
	}
	for pkg, ds := range deps(t) {
		for _, r := range rules {
			if !strings.HasPrefix(pkg, prefix+r.from) {
				continue
			}
			for _, d := range ds {
				for _, bad := range r.to {
					if strings.HasPrefix(d, bad) {
						t.Errorf("%s depends on %s: %s", pkg, d, r.why)
					}
				}
			}
		}
	}
}
