package manifesttest

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerfile is what the checks need of deploy/container/Dockerfile.
type dockerfile struct {
	targets  []string // packages of the go build command, as ./dir
	binaries []string // the binaries that build makes (package directory names)
	copied   string   // the runtime stage's COPY --from=build ... /usr/local/bin/ instruction
}

// instructions joins continuation lines and drops comments.
func instructions(text string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	return out
}

var buildRE = regexp.MustCompile(`go build .* -o /out/\s+((?:\./\S+\s*)+)$`)

func parseDockerfile(t testing.TB) dockerfile {
	t.Helper()
	var d dockerfile
	for _, ins := range instructions(read(t, "deploy", "container", "Dockerfile")) {
		if m := buildRE.FindStringSubmatch(ins); m != nil {
			d.targets = strings.Fields(m[1])
		}
		if strings.HasPrefix(ins, "COPY --from=build /out/") && strings.HasSuffix(ins, "/usr/local/bin/") {
			d.copied = ins
		}
	}
	if len(d.targets) == 0 || d.copied == "" {
		t.Fatalf("Dockerfile: no `go build -o /out/ ./...` or no COPY of /out/* to /usr/local/bin/")
	}
	for _, p := range d.targets {
		d.binaries = append(d.binaries, filepath.Base(p))
	}
	return d
}

var useRE = regexp.MustCompile(`(?m)^\s+\./(\S+)$`)

// TestDockerfileCopiesEveryModule checks the module download layer has the
// go.mod of every module of the workspace.
func TestDockerfileCopiesEveryModule(t *testing.T) {
	text := read(t, "deploy", "container", "Dockerfile")
	uses := useRE.FindAllStringSubmatch(read(t, "go.work"), -1)
	if len(uses) == 0 {
		t.Fatal("no modules in go.work")
	}
	for _, m := range uses {
		if !strings.Contains(text, "COPY "+m[1]+"/go.mod") {
			t.Errorf("Dockerfile does not copy %s/go.mod before go mod download", m[1])
		}
	}
}

// TestDockerfileBuildsMainPackages checks that every go build target of the
// Dockerfile is a main package of the workspace, and that each binary is
// copied into the runtime image.
func TestDockerfileBuildsMainPackages(t *testing.T) {
	d := parseDockerfile(t)
	cmd := exec.Command("go", append([]string{"list", "-f", "{{.Name}} {{.Dir}}"}, d.targets...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", d.targets, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(d.targets) {
		t.Fatalf("go list: %q", lines)
	}
	for i, line := range lines {
		if !strings.HasPrefix(line, "main ") {
			t.Errorf("Dockerfile builds %s, which is not a main package: %s", d.targets[i], line)
		}
	}
	for _, bin := range d.binaries {
		if !strings.Contains(d.copied+" ", "/out/"+bin+" ") {
			t.Errorf("Dockerfile builds %s but does not copy it into the image: %s", bin, d.copied)
		}
	}
	for _, want := range []string{"circuit-breaker", "workflow-service", "token-service", "event-service", "edge", "cb-probe"} {
		if !slices.Contains(d.binaries, want) {
			t.Errorf("Dockerfile does not build %s (builds %v)", want, d.binaries)
		}
	}
	for _, ins := range instructions(read(t, "deploy", "container", "Dockerfile")) {
		if strings.HasPrefix(ins, "COPY ") && !strings.Contains(ins, "--from=") {
			for _, src := range strings.Fields(ins)[1 : len(strings.Fields(ins))-1] {
				if src == "." {
					continue
				}
				if _, err := filepath.Glob(path(src)); err != nil || !exists(path(src)) {
					t.Errorf("Dockerfile copies %s, which does not exist", src)
				}
			}
		}
		if strings.HasPrefix(ins, "USER ") && (strings.Contains(ins, "root") || strings.HasPrefix(ins, "USER 0")) {
			t.Errorf("runtime user is root: %s", ins)
		}
	}
}
