package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/roles"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/server"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// harness is one airlock server on a fresh seeded database, driven by an
// in-process MCP client.
type harness struct {
	t      testing.TB
	url    string
	pool   *pgxpool.Pool
	srv    *server.Server
	client *client.Client
}

func loadScope(t testing.TB, name string) *scopes.Scope {
	t.Helper()
	s, err := scopes.Load(pgtest.Testdata("scopes", name))
	if err != nil {
		t.Fatalf("load scope %s: %v", name, err)
	}
	return s
}

func newHarness(t testing.TB, scopeFile string, mutate func(*scopes.Scope)) *harness {
	t.Helper()
	url := pgtest.NewDatabase(t)
	return newHarnessOn(t, url, scopeFile, mutate)
}

// newHarnessOn starts a server for scopeFile on the database at url (a
// superuser's), after compiling the scope to its database roles as
// `airlock scope apply` would.
func newHarnessOn(t testing.TB, url, scopeFile string, mutate func(*scopes.Scope)) *harness {
	t.Helper()
	scope := loadScope(t, scopeFile)
	if mutate != nil {
		mutate(scope)
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := roles.Apply(ctx, pool, scope, roles.Options{}); err != nil {
		t.Fatalf("roles.Apply: %v", err)
	}
	return startHarness(t, url, pool, scope, true)
}

// startHarness starts a server for scope on pool, whose roles must exist.
func startHarness(t testing.TB, url string, pool *pgxpool.Pool, scope *scopes.Scope, allowOwner bool) *harness {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	srv, err := server.New(ctx, server.Config{Scope: scope, Pool: pool, Logger: logger, ValidateOutput: !benchmarking(t), ReapInterval: 200 * time.Millisecond, AllowOwner: allowOwner})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	t.Cleanup(srv.Close)
	c, err := client.NewInProcessClient(srv.MCP())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "airlock-test", Version: "1"}
	// Rows as text and as structuredContent, so that tests can compare them.
	init.Params.Capabilities.Experimental = map[string]any{"airlock/results": map[string]any{"rows": "both"}}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &harness{t: t, url: url, pool: pool, srv: srv, client: c}
}

func (h *harness) call(tool string, args map[string]any) *mcp.CallToolResult {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := h.client.CallTool(ctx, req)
	if err != nil {
		h.t.Fatalf("%s: protocol error: %v", tool, err)
	}
	return res
}

func (h *harness) query(sql string, params ...any) *mcp.CallToolResult {
	h.t.Helper()
	args := map[string]any{"sql": sql}
	if len(params) > 0 {
		args["params"] = params
	}
	return h.call(scopes.ToolQueryReadonly, args)
}

// text is everything a client sees of a result: text content and the
// structured content, as one string to search for leaks.
func text(res *mcp.CallToolResult) string {
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			sb.WriteString(tc.Text)
			sb.WriteString("\n")
		}
	}
	b, _ := json.Marshal(res.StructuredContent)
	sb.Write(b)
	if res.Meta != nil {
		b, _ = json.Marshal(res.Meta)
		sb.Write(b)
	}
	return sb.String()
}

// structured decodes a result's structured content into v.
func structured(t testing.TB, res *mcp.CallToolResult, v any) {
	t.Helper()
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode structured content %s: %v", b, err)
	}
}

// secrets are values out of every test scope: none may ever appear in a
// response.
var secrets = []string{
	"SENTINEL-SECRET-7f3a", "SENTINEL-APIKEY-91c2", // out-of-scope tables
	"900-00-",      // customers.ssn (denied column)
	"@example.com", // customers.email (masked column)
	"postgres://",  // the database URL
}

func assertNoLeak(t testing.TB, res *mcp.CallToolResult) {
	t.Helper()
	out := text(res)
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("response leaks %q:\n%s", s, out)
		}
	}
}

// benchmarking is true in benchmarks, which measure what serve runs.
func benchmarking(t testing.TB) bool {
	_, ok := t.(*testing.B)
	return ok
}

func discardLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }
