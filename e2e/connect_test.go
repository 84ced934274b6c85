package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// startConnect runs `airlock connect endpoint` as a stdio MCP server, with
// only the token in its environment, and initializes a client on it.
func startConnect(t *testing.T, endpoint, token string) (*client.Client, error) {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH"), "AIRLOCK_TOKEN=" + token}
	tr := transport.NewStdioWithOptions(binary, env, []string{"connect", endpoint}, transport.WithCommandStderrWriter(stderrSink(t)))
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	init.Params.ClientInfo = mcp.Implementation{Name: "e2e-connect", Version: "1"}
	// Rows as text and as structuredContent, so that tests can compare them.
	init.Params.Capabilities.Experimental = map[string]any{"airlock/results": map[string]any{"rows": "both"}}
	_, err := c.Initialize(ctx, init)
	return c, err
}

// TestConnectBridge: a stdio client (as Claude Desktop starts one) reaches
// the airlock service through `airlock connect`, which holds the bearer
// token and nothing else: the same tools, answers and refusals as over
// HTTP, a held change, and a clear error for a wrong token. Over a Unix
// socket too.
func TestConnectBridge(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	endpoint := startHTTP(t, url, "support.json", tokenA)

	c, err := startConnect(t, endpoint, tokenA)
	if err != nil {
		t.Fatalf("initialize through airlock connect: %v", err)
	}
	tools, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	want := []string{"apply_migration_with_ticket", "describe_table", "get_change_status", "list_tables", "migrate_dry_run", "query_readonly"}
	if !slices.Equal(names, want) {
		t.Fatalf("tools through the bridge %v, want %v", names, want)
	}
	if res := call(t, c, "query_readonly", map[string]any{"sql": "SELECT count(*) AS n FROM orders"}); res.IsError || res.StructuredContent == nil {
		t.Fatalf("query through the bridge: %s", resultText(res))
	}
	if res := call(t, c, "query_readonly", map[string]any{"sql": "DELETE FROM orders"}); !res.IsError || !strings.Contains(resultText(res), "statement_not_allowed") {
		t.Fatalf("refusal through the bridge: %s", resultText(res))
	}
	id := applyChange(t, c, "OPS-61", "UPDATE orders SET notes = 'held-by-bridge' WHERE id = 1")
	if st := changeStatus(t, c, id); st != "pending" {
		t.Fatalf("status %q", st)
	}
	if n := count(t, url, "SELECT count(*) FROM orders WHERE notes = 'held-by-bridge'"); n != 0 {
		t.Fatal("the held change is already in the database")
	}

	// A wrong token: initialize fails with the reason, the bridge serves on.
	if _, err := startConnect(t, endpoint, tokenB); err == nil || !strings.Contains(err.Error(), "refused the bearer token") {
		t.Fatalf("wrong token: %v", err)
	}
}

// TestConnectUnixSocket: the service on a Unix socket, reached through the
// bridge.
func TestConnectUnixSocket(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	dir, err := os.MkdirTemp("", "al-sock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "mcp.sock")
	startHTTPOn(t, url, "readonly.json", tokenA, "unix:"+sock)
	c, err := startConnect(t, "unix:"+sock, tokenA)
	if err != nil {
		t.Fatalf("initialize over the socket: %v", err)
	}
	if res := call(t, c, "list_tables", nil); res.IsError || !strings.Contains(resultText(res), "public.orders") {
		t.Fatalf("list_tables over the socket: %s", resultText(res))
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, %v; want 0660", fi.Mode(), err)
	}
}
