package systemtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"github.com/cbnats/circuitbreaker/edge/auth"
	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/quota"
	"github.com/cbnats/circuitbreaker/shared/tenant"
	"github.com/cbnats/circuitbreaker/shared/transfer"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// httpDo sends a request to the edge of s (path relative to its root)
// with a bearer credential ("" for none) and returns the status, the
// content type and the body.
func httpDo(t *testing.T, s *system, method, path, bearer string, body io.Reader) (int, string, []byte) {
	t.Helper()
	base := strings.TrimSuffix(s.stack.GraphQL, "/graphql")
	req := testkit.Must(http.NewRequestWithContext(ctx(t), method, base+path, body))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp := testkit.Must(http.DefaultClient.Do(req))
	defer resp.Body.Close()
	b := testkit.Must(io.ReadAll(resp.Body))
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// transferAuth is an auth file with admins of every tenant and of acme,
// the lesser roles, and /metrics open (which must not open export and
// import).
func transferAuth(t *testing.T) *auth.Authenticator {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.yaml")
	content := `apiKeys:
  - {name: ops, key: ops-key, tenant: "*", role: admin}
  - {name: the-operator, key: operator-key, tenant: "*", role: operator}
  - {name: the-viewer, key: viewer-key, tenant: "*", role: viewer}
  - {name: acme-admin, key: acme-admin-key, tenant: acme, role: admin}
  - {name: acme-viewer, key: acme-viewer-key, tenant: acme, role: viewer}
metricsOpen: true
`
	testkit.Must(0, os.WriteFile(path, []byte(content), 0o600))
	a, _, err := auth.Load(path, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestTransferOverHTTP: GET /export/workflows/{id} streams the NDJSON
// file and POST /import reads one larger than --max-body as it arrives;
// with authentication both are for admins only (401 without a
// credential, 403 for operators and viewers, even with /metrics open),
// in the caller's tenant scope.
func TestTransferOverHTTP(t *testing.T) {
	a := start(t, "") // open edge
	ids := transferData(t, a, "web", 40)
	status, ctype, file := httpDo(t, a, http.MethodGet, "/export/workflows/web?events=true", "", nil)
	if status != http.StatusOK || ctype != transfer.ContentType || !bytes.HasSuffix(file, []byte("\n")) {
		t.Fatalf("open export: %d %s %.200s", status, ctype, file)
	}
	if status, _, body := httpDo(t, a, http.MethodGet, "/export/workflows/nope", "", nil); status != http.StatusNotFound || !strings.Contains(string(body), "NOT_FOUND") {
		t.Fatalf("export of a missing workflow: %d %s", status, body)
	}
	if status, _, body := httpDo(t, a, http.MethodGet, "/export/workflows/web?events=maybe", "", nil); status != http.StatusBadRequest {
		t.Fatalf("export with a bad parameter: %d %s", status, body)
	}

	b := startAuthed(t, "", 1, nil, func(h *config.HTTP) { h.MaxBodyBytes = 16 << 10 }, transferAuth(t), "ops-key")
	if len(file) < 4*(16<<10) {
		t.Fatalf("the file (%d bytes) should be well over --max-body", len(file))
	}
	for _, tc := range []struct {
		bearer string
		want   int
	}{{"", 401}, {"wrong", 401}, {"viewer-key", 403}, {"operator-key", 403}, {"acme-viewer-key", 403}} {
		if status, _, body := httpDo(t, b, http.MethodPost, "/import", tc.bearer, bytes.NewReader(file)); status != tc.want {
			t.Fatalf("import as %q: %d %s, want %d", tc.bearer, status, body, tc.want)
		}
		if status, _, body := httpDo(t, b, http.MethodGet, "/export/workflows/web", tc.bearer, nil); status != tc.want {
			t.Fatalf("export as %q: %d %s, want %d", tc.bearer, status, body, tc.want)
		}
	}
	if _, err := b.c.GetWorkflow(ctx(t), "web"); !errors.Is(err, fail.ErrNotFound) {
		t.Fatalf("a refused import left the workflow: %v", err)
	}

	status, _, body := httpDo(t, b, http.MethodPost, "/import", "ops-key", bytes.NewReader(file))
	var sum transfer.Summary
	if err := json.Unmarshal(body, &sum); err != nil || status != http.StatusOK || !sum.Complete || sum.Imported != len(ids) {
		t.Fatalf("import as admin: %d %s", status, body)
	}
	sameWorkflow(t, a, b, "web", ids)
	by := ""
	for _, e := range events(t, b, "web") {
		if e.EventType == wire.EventTokenImported && e.TriggeredBy != nil {
			by = *e.TriggeredBy
		}
	}
	if by != "ops" {
		t.Fatalf("token_imported triggered_by %q, want the admin's name", by)
	}
	status, _, body = httpDo(t, b, http.MethodPost, "/import", "ops-key", bytes.NewReader(file))
	if json.Unmarshal(body, &sum) != nil || status != http.StatusOK || sum.Unchanged != len(ids) || sum.Imported != 0 {
		t.Fatalf("import again: %d %s", status, body)
	}
	cut := file[:len(file)/2]
	cut = cut[:bytes.LastIndexByte(cut, '\n')+1]
	status, _, body = httpDo(t, b, http.MethodPost, "/import", "ops-key", bytes.NewReader(cut))
	if status != http.StatusBadRequest || !strings.Contains(string(body), "truncated") {
		t.Fatalf("truncated import: %d %s", status, body)
	}
	// Export from the authenticated edge, then it imports as it is.
	status, _, again := httpDo(t, b, http.MethodGet, "/export/workflows/web", "ops-key", nil)
	if status != http.StatusOK || bytes.Count(again, []byte(`"kind":"token"`)) != len(ids) {
		t.Fatalf("admin export: %d %.300s", status, again)
	}

	// A tenant's admin exports and imports in its own scope: a file of a
	// workflow without a tenant lands in the tenant's; another tenant's
	// workflow does not exist for it.
	small := start(t, "")
	testkit.Must(small.c.CreateWorkflow(ctx(t), &wire.CreateWorkflowRequest{ID: "shop", Name: "shop", Places: []string{"open"}, InitialPlace: "open"}))
	for range 2 {
		testkit.Must(small.c.CreateToken(ctx(t), &wire.CreateTokenRequest{WorkflowID: "shop"}))
	}
	_, _, shop := httpDo(t, small, http.MethodGet, "/export/workflows/shop", "", nil)
	status, _, body = httpDo(t, b, http.MethodPost, "/import", "acme-admin-key", bytes.NewReader(shop))
	if json.Unmarshal(body, &sum) != nil || status != http.StatusOK || sum.WorkflowID != "acme::shop" || sum.Imported != 2 {
		t.Fatalf("tenant import: %d %s", status, body)
	}
	if n := len(testkit.Must(b.c.As(tenant.Scope("acme")).ListTokens(ctx(t), "shop", wire.Page{})).Items); n != 2 {
		t.Fatalf("acme sees %d imported tokens", n)
	}
	usage := testkit.Must(quota.OpenUsage(ctx(t), b.stackJS(), 1))
	testkit.Poll(t, 10*time.Second, "acme's live tokens counted", func() bool { return testkit.Must(usage.LiveTokens(ctx(t), "acme")) == 2 })
	status, _, body = httpDo(t, b, http.MethodGet, "/export/workflows/shop", "acme-admin-key", nil)
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"workflowId":"acme::shop"`)) {
		t.Fatalf("tenant export: %d %.300s", status, body)
	}
	if status, _, body := httpDo(t, b, http.MethodGet, "/export/workflows/web", "acme-admin-key", nil); status != http.StatusNotFound {
		t.Fatalf("a tenant exports a workflow of no tenant: %d %.200s", status, body)
	}
	beta := bytes.Replace(shop, []byte(`"workflowId":"shop"`), []byte(`"workflowId":"beta::shop"`), 1)
	if status, _, body := httpDo(t, b, http.MethodPost, "/import", "acme-admin-key", bytes.NewReader(beta)); status != http.StatusNotFound {
		t.Fatalf("a tenant imports into another tenant's workflow: %d %s", status, body)
	}
}

// TestImportStreamsOverHTTP: POST /import works on the body as it
// arrives (the workflow exists while the client is still sending), and a
// client that stops sending for the body timeout gets 408, with what it
// sent before imported.
func TestImportStreamsOverHTTP(t *testing.T) {
	a := start(t, "")
	ids := transferData(t, a, "slow", 2)
	file := exportFile(t, a, "slow", false)
	b := startHTTP(t, "", 1, nil, func(h *config.HTTP) { h.BodyTimeout = time.Second })
	first := file[:bytes.Index(file, []byte(`"kind":"token"`))]
	first = first[:bytes.LastIndexByte(first[:len(first)-1], '\n')+1] // header and versions
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		status, _, _ := httpDo(t, b, http.MethodPost, "/import", "", pr)
		done <- status
	}()
	testkit.Must(pw.Write(first))
	// The first token line ends the versions: the workflow is imported then.
	rest := file[len(first):]
	line := rest[:bytes.IndexByte(rest, '\n')+1]
	testkit.Must(pw.Write(line))
	testkit.Poll(t, 10*time.Second, "the workflow imported while the body is still coming", func() bool {
		_, err := b.c.GetWorkflow(ctx(t), "slow")
		return err == nil
	})
	select { // the client now stalls
	case status := <-done:
		if status != http.StatusRequestTimeout {
			t.Fatalf("a stalled import: %d, want 408", status)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a stalled import was not ended by the body timeout")
	}
	pw.Close()
	if _, err := b.c.GetToken(ctx(t), ids[0]); !errors.Is(err, fail.ErrNotFound) {
		t.Fatalf("the token whose line came last is visible: %v", err)
	}
}
