package systemtest

import (
	"os"
	"testing"

	"github.com/cbnats/circuitbreaker/deploy/internal/natscli"
)

// TestMain removes the natscli the tests built (deploy/internal/natscli)
// once they are done.
func TestMain(m *testing.M) {
	code := m.Run()
	natscli.Cleanup()
	os.Exit(code)
}
