package flow

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the domain packages pure: standard library, the shared
// error type, each other, expr-lang and uuid only (no NATS, no HTTP).
func TestImports(t *testing.T) {
	allowed := []string{
		"github.com/cbnats/circuitbreaker/shared/fail",
		"github.com/cbnats/circuitbreaker/shared/rules",
		"github.com/cbnats/circuitbreaker/shared/mergepatch",
		"github.com/expr-lang/expr",
		"github.com/google/uuid",
	}
	forbidden := []string{"net", "net/http", "net/rpc"}
	for _, dir := range []string{".", "../rules", "../mergepatch"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			for _, imp := range imports(t, file) {
				stdlib := !strings.Contains(strings.Split(imp, "/")[0], ".")
				ok := stdlib && !slices.Contains(forbidden, imp) || hasPrefix(imp, allowed)
				if !ok {
					t.Errorf("%s imports %q", file, imp)
				}
			}
		}
	}
}

// imports lists the import paths of a Go file.
func imports(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range f.Imports {
		p, _ := strconv.Unquote(s.Path.Value)
		out = append(out, p)
	}
	return out
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if s == p || strings.HasPrefix(s, p+"/") {
			return true
		}
	}
	return false
}
