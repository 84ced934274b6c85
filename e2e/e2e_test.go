// Package e2e drives the built airlock binary over stdio with an MCP
// client, the way Claude or Cursor would.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
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

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "airlock-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "airlock")
	build := exec.Command("go", "build", "-o", binary, "./cmd/airlock")
	build.Dir = filepath.Dir(pgtest.Testdata())
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build airlock:", err)
		os.Exit(1)
	}
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// startAirlock runs `airlock serve --scope FILE` with the database URL in
// the environment and returns an initialized MCP client.
func startAirlock(t testing.TB, url, scope string) *client.Client {
	c, _ := startAirlockCmd(t, url, scope)
	return c
}

// startAirlockCmd is startAirlock that also returns the server process.
// scope is a file in testdata/scopes or an absolute path.
func startAirlockCmd(t testing.TB, url, scope string) (*client.Client, *exec.Cmd) {
	t.Helper()
	return startAirlockWith(t, url, scope, "--allow-owner", "--local-writes")
}

// startAirlockWith is startAirlockCmd with serve's flags given.
func startAirlockWith(t testing.TB, url, scope string, flags ...string) (*client.Client, *exec.Cmd) {
	t.Helper()
	if !filepath.IsAbs(scope) {
		scope = pgtest.Testdata("scopes", scope)
	}
	env := append(os.Environ(), "AIRLOCK_DATABASE_URL="+url)
	// The admin compiles the scope to its database roles first, as in the
	// README; the tests connect as a superuser, hence --allow-owner.
	apply := exec.Command(binary, "scope", "apply", "--scope", scope)
	apply.Env = env
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("scope apply: %v\n%s", err, out)
	}
	var cmd *exec.Cmd
	tr := transport.NewStdioWithOptions(binary, env, append([]string{"serve", "--scope", scope}, flags...),
		transport.WithCommandStderrWriter(stderrSink(t)),
		transport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
			cmd = exec.CommandContext(ctx, command, args...)
			cmd.Env = env
			return cmd, nil
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Start(context.Background()); err != nil { // the process lives as long as ctx: not the init timeout
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	t.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "airlock-e2e", Version: "1"}
	// Rows as text and as structuredContent, so that tests can compare them.
	init.Params.Capabilities.Experimental = map[string]any{"airlock/results": map[string]any{"rows": "both"}}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c, cmd
}

func call(t testing.TB, c *client.Client, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return res
}

func resultText(res *mcp.CallToolResult) string {
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			sb.WriteString(tc.Text)
		}
	}
	b, _ := json.Marshal(res.StructuredContent)
	m, _ := json.Marshal(res.Meta)
	return sb.String() + string(b) + string(m)
}

func TestServeOverStdio(t *testing.T) {
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, "readonly.json")
	ctx := context.Background()

	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if want := []string{"describe_table", "list_tables", "query_readonly"}; !slices.Equal(names, want) {
		t.Fatalf("tools = %v, want %v", names, want)
	}

	res := call(t, c, "list_tables", nil)
	if res.IsError || !strings.Contains(resultText(res), "public.orders") {
		t.Fatalf("list_tables: %s", resultText(res))
	}
	res = call(t, c, "describe_table", map[string]any{"table": "orders"})
	if res.IsError || !strings.Contains(resultText(res), "customer_id") {
		t.Fatalf("describe_table: %s", resultText(res))
	}
	res = call(t, c, "query_readonly", map[string]any{"sql": "SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status"})
	if res.IsError || res.StructuredContent == nil {
		t.Fatalf("query_readonly: %s", resultText(res))
	}
	res = call(t, c, "query_readonly", map[string]any{"sql": "COMMIT; DROP TABLE orders"})
	if !res.IsError || !strings.Contains(resultText(res), "Refused") {
		t.Fatalf("refusal not an isError result: %s", resultText(res))
	}
	// Unknown tool: an error, and the server keeps serving.
	req := mcp.CallToolRequest{}
	req.Params.Name = "execute_sql"
	req.Params.Arguments = map[string]any{"sql": "DROP TABLE orders"}
	if res, err := c.CallTool(ctx, req); err == nil && !res.IsError {
		t.Fatalf("unknown tool answered: %s", resultText(res))
	}
	res = call(t, c, "query_readonly", map[string]any{"sql": 123})
	if !res.IsError {
		t.Fatalf("wrong argument type accepted: %s", resultText(res))
	}
	res = call(t, c, "query_readonly", map[string]any{"sql": "SELECT count(*) FROM orders"})
	if res.IsError {
		t.Fatalf("server stopped serving: %s", resultText(res))
	}
}

// TestRawWire writes JSON-RPC lines by hand: malformed JSON, invalid
// UTF-8, an unknown method. Each gets an error and the server keeps
// serving.
func TestRawWire(t *testing.T) {
	url := pgtest.NewDatabase(t)
	scope := pgtest.Testdata("scopes", "readonly.json")
	apply := exec.Command(binary, "scope", "apply", "--scope", scope)
	apply.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL="+url)
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("scope apply: %v\n%s", err, out)
	}
	cmd := exec.Command(binary, "serve", "--scope", scope, "--allow-owner", "--local-writes")
	cmd.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL="+url)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 8<<20)
	send := func(s string) map[string]any {
		t.Helper()
		if _, err := io.WriteString(stdin, s+"\n"); err != nil {
			t.Fatal(err)
		}
		done := make(chan map[string]any, 1)
		go func() {
			if !lines.Scan() {
				done <- nil
				return
			}
			var m map[string]any
			json.Unmarshal(lines.Bytes(), &m)
			done <- m
		}()
		select {
		case m := <-done:
			if m == nil {
				t.Fatalf("no answer to %q", s)
			}
			return m
		case <-time.After(20 * time.Second):
			t.Fatalf("no answer to %q", s)
		}
		return nil
	}
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	if m := send(init); m["result"] == nil {
		t.Fatalf("initialize: %v", m)
	}
	io.WriteString(stdin, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")

	if m := send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{`); m["error"] == nil {
		t.Fatalf("malformed JSON: %v", m)
	}
	if m := send(`{"jsonrpc":"2.0","id":3,"method":"no/such/method"}`); m["error"] == nil {
		t.Fatalf("unknown method: %v", m)
	}
	bad := "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"query_readonly\",\"arguments\":{\"sql\":\"SELECT '\xff\xfe'\"}}}"
	if m := send(bad); m["error"] == nil && m["result"] == nil {
		t.Fatalf("invalid UTF-8: %v", m)
	}
	m := send(`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"query_readonly","arguments":{"sql":"SELECT 1 AS one"}}}`)
	res, _ := m["result"].(map[string]any)
	if res == nil || res["isError"] == true {
		t.Fatalf("server stopped serving: %v", m)
	}
}

func TestCheckCommand(t *testing.T) {
	out, err := exec.Command(binary, "check", "--scope", pgtest.Testdata("scopes", "support.json")).CombinedOutput()
	if err != nil {
		t.Fatalf("check valid scope: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"name": "x", "read": {"tables": {"public.orders": {"colums": ["id"]}}}, "extra": 1}`), 0o600)
	cmd := exec.Command(binary, "check", "--scope", bad)
	out, err = cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("invalid scope accepted: %s", out)
	}
	for _, want := range []string{"extra", "colums"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	// serve refuses to start on the same file, with the same messages.
	serve := exec.Command(binary, "serve", "--scope", bad)
	serve.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL=postgres://nobody@127.0.0.1:1/x")
	sout, err := serve.CombinedOutput()
	if err == nil || !strings.Contains(string(sout), "colums") {
		t.Fatalf("serve started on an invalid scope: %s", sout)
	}
}

// stderrSink keeps the server's stderr (its slog JSON lines) for the
// test log, shown only when a test fails or runs verbose.
func stderrSink(t testing.TB) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		t.Logf("airlock stderr: %s", strings.TrimSpace(string(p)))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestServeRefusesUnsafeSetup: without the scope's roles, or as a
// superuser without --allow-owner, serve does not start and says why.
func TestServeRefusesUnsafeSetup(t *testing.T) {
	url := pgtest.NewDatabase(t)
	scope := pgtest.Testdata("scopes", "minimal.json")
	serve := func(args ...string) string {
		cmd := exec.Command(binary, append([]string{"serve", "--scope", scope}, args...)...)
		cmd.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL="+url)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("serve %v started:\n%s", args, out)
		}
		if strings.Contains(string(out), url) {
			t.Fatalf("the database URL is printed:\n%s", out)
		}
		return string(out)
	}
	if out := serve("--allow-owner"); !strings.Contains(out, "scope apply") {
		t.Fatalf("missing roles not explained:\n%s", out)
	}
	apply := exec.Command(binary, "scope", "apply", "--scope", scope)
	apply.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL="+url)
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("scope apply: %v\n%s", err, out)
	}
	if out := serve(); !strings.Contains(out, "superuser") {
		t.Fatalf("superuser login not refused:\n%s", out)
	}
}

// TestAgentSideServeIsReadOnly: serve over stdio holds a credential the
// agent can read, so without --local-writes it lists the read tools only,
// whatever the scope's write section, and says where writes go.
func TestAgentSideServeIsReadOnly(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	c, _ := startAirlockWith(t, url, "support.json", "--allow-owner")
	tools, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if want := []string{"describe_table", "list_tables", "query_readonly"}; !slices.Equal(names, want) {
		t.Fatalf("agent-side tools %v, want %v", names, want)
	}
	res := call(t, c, "query_readonly", map[string]any{"sql": "DELETE FROM orders"})
	if !res.IsError || !strings.Contains(resultText(res), "served by the airlock service") {
		t.Fatalf("a write sent to the read tool: %s", resultText(res))
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "apply_migration_with_ticket"
	req.Params.Arguments = map[string]any{"ticket": "OPS-1", "summary": "x", "sql": "DELETE FROM orders"}
	if _, err := c.CallTool(context.Background(), req); err == nil {
		t.Fatal("an unlisted write tool answered")
	}
	if n := count(t, url, "SELECT count(*) FROM airlock.changes"); n != 0 {
		t.Fatalf("%d changes recorded by an agent-side server", n)
	}
}
