package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

const (
	tokenA = "tokenA-0123456789abcdef0123456789abcdef"
	tokenB = "tokenB-0123456789abcdef0123456789abcdef"
)

// startHTTP runs `airlock serve --http 127.0.0.1:0` with tokens and extra
// flags and returns the MCP endpoint's URL, read from the server's log.
func startHTTP(t *testing.T, url, scope, tokens string, extra ...string) string {
	t.Helper()
	return startHTTPOn(t, url, scope, tokens, "127.0.0.1:0", extra...)
}

// startHTTPOn is startHTTP listening on addr.
func startHTTPOn(t *testing.T, url, scope, tokens, addr string, extra ...string) string {
	t.Helper()
	return startHTTPEnv(t, url, scope, tokens, addr, nil, extra...)
}

// startHTTPEnv is startHTTPOn with more environment for serve.
func startHTTPEnv(t *testing.T, url, scope, tokens, addr string, moreEnv []string, extra ...string) string {
	t.Helper()
	if !filepath.IsAbs(scope) {
		scope = pgtest.Testdata("scopes", scope)
	}
	env := append(os.Environ(), "AIRLOCK_DATABASE_URL="+url, "AIRLOCK_HTTP_TOKEN="+tokens)
	apply := exec.Command(binary, "scope", "apply", "--scope", scope)
	apply.Env = env
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("scope apply: %v\n%s", err, out)
	}
	args := append([]string{"serve", "--scope", scope, "--allow-owner", "--http", addr}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(env, moreEnv...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve --http did not exit cleanly: %v", err)
			}
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Error("serve --http did not stop within 5 s of SIGINT")
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			t.Logf("airlock stderr: %s", line)
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if !sent && json.Unmarshal([]byte(line), &rec) == nil && rec.URL != "" {
				found <- rec.URL
				sent = true
			}
		}
		done <- cmd.Wait()
	}()
	select {
	case u := <-found:
		return u
	case err := <-done:
		t.Fatalf("serve --http exited before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve --http did not log its URL within 30 s")
	}
	return ""
}

// httpClient is an initialized MCP client on endpoint with token, on the
// revision with sessions (2025-11-25).
func httpClient(t *testing.T, endpoint, token string) *client.Client {
	return httpClientOn(t, endpoint, token, mcp.ProtocolVersion20251125)
}

// httpClientOn is httpClient on protocol revision version.
func httpClientOn(t *testing.T, endpoint, token, version string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(endpoint, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "e2e-http", Version: "1"}
	// Rows as text and as structuredContent, so that tests can compare them.
	init.Params.Capabilities.Experimental = map[string]any{"airlock/results": map[string]any{"rows": "both"}}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize over HTTP: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// post sends one raw JSON-RPC message and returns the status and body.
func post(t *testing.T, endpoint string, header map[string]string, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func auditRows(t *testing.T, url string) int {
	return count(t, url, "SELECT count(*) FROM airlock.audit_log")
}

// TestHTTPAuth: without the token, with a wrong one, or from a browser
// origin that is not allowed, nothing reaches a tool: the answer is 401
// (403 for the origin), the database is unchanged and nothing is audited.
func TestHTTPAuth(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	endpoint := startHTTP(t, url, "support.json", tokenA, "--allow-origin", "https://console.example.com")
	// Roles and databases are shared with the tests running in parallel.
	before := pgtest.Fingerprint(t, url).DatabaseOnly()
	audited := auditRows(t, url)

	const init = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	const callTool = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"apply_migration_with_ticket","arguments":{"sql":"DELETE FROM orders","ticket":"OPS-1","summary":"x"}}}`
	cases := []struct {
		name   string
		header map[string]string
		body   string
		status int
		want   string
	}{
		{"no token", nil, init, http.StatusUnauthorized, "bearer token"},
		{"no token, tool call", nil, callTool, http.StatusUnauthorized, "bearer token"},
		{"wrong token", map[string]string{"Authorization": "Bearer " + tokenB}, callTool, http.StatusUnauthorized, "bearer token"},
		{"token prefix", map[string]string{"Authorization": "Bearer " + tokenA[:len(tokenA)-1]}, init, http.StatusUnauthorized, "bearer token"},
		{"basic scheme", map[string]string{"Authorization": "Basic " + tokenA}, init, http.StatusUnauthorized, "bearer token"},
		{"origin not allowed", map[string]string{"Authorization": "Bearer " + tokenA, "Origin": "https://evil.example"}, init, http.StatusForbidden, "not allowed"},
		{"allowed origin", map[string]string{"Authorization": "Bearer " + tokenA, "Origin": "https://console.example.com"}, init, http.StatusOK, `"serverInfo"`},
		{"right token", map[string]string{"Authorization": "Bearer " + tokenA}, init, http.StatusOK, `"serverInfo"`},
		// Bad input with the right token: an error, and the server serves on.
		{"malformed json", map[string]string{"Authorization": "Bearer " + tokenA}, `{"jsonrpc":"2.0","id":5,"method":`, http.StatusBadRequest, "not valid json"},
		{"unknown session", map[string]string{"Authorization": "Bearer " + tokenA, "Mcp-Session-Id": "mcp-session-00000000-0000-0000-0000-000000000000", "Mcp-Protocol-Version": "2025-11-25"}, callTool, http.StatusNotFound, "session"},
		// The specification: a request without the session header is 400.
		{"no session id", map[string]string{"Authorization": "Bearer " + tokenA, "Mcp-Protocol-Version": "2025-11-25"}, callTool, http.StatusBadRequest, "Mcp-Session-Id"},
		// A sessionless (2026-07-28) request is served without a session.
		{"sessionless revision", map[string]string{"Authorization": "Bearer " + tokenA, "Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"},
			`{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`,
			http.StatusOK, `"query_readonly"`},
		{"sessionless, no token", map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"},
			`{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`,
			http.StatusUnauthorized, "bearer token"},
	}
	for _, tc := range cases {
		status, body, hdr := post(t, endpoint, tc.header, tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d containing %q", tc.name, status, body, tc.status, tc.want)
		}
		if status == http.StatusUnauthorized && hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
		if status >= 400 {
			var rpc struct {
				JSONRPC string `json:"jsonrpc"`
				Error   *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &rpc); err != nil || rpc.JSONRPC != "2.0" || rpc.Error == nil || rpc.Error.Message == "" ||
				!strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Errorf("%s: error body is not JSON-RPC (%s): %s", tc.name, hdr.Get("Content-Type"), body)
			}
		}
	}
	if diff := before.Diff(pgtest.Fingerprint(t, url).DatabaseOnly()); diff != "" {
		t.Fatalf("the database changed:\n%s", diff)
	}
	// Two initializes were let in; neither calls a tool, so the audit log
	// must not have grown by a single row.
	time.Sleep(300 * time.Millisecond) // the audit writer batches
	if n := auditRows(t, url); n != audited {
		t.Fatalf("audit log grew from %d to %d rows: a refused request reached a tool", audited, n)
	}
}

// TestHTTPSessionsIsolated: each MCP session over HTTP is its own airlock
// session. In branch mode one session's change is on its own branch, which
// the other session does not see; audit rows carry distinct session ids;
// another token can neither use nor end a session it did not open.
func TestHTTPSessionsIsolated(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	scope := branchScopeFile(t, "http-branchy")
	endpoint := startHTTP(t, url, scope, tokenA+","+tokenB)

	a := httpClient(t, endpoint, tokenA)
	b := httpClient(t, endpoint, tokenA)
	other := httpClient(t, endpoint, tokenB)

	const q = "SELECT count(*) AS n FROM orders WHERE status = 'cancelled' AND id <= 5"
	applyChange(t, a, "OPS-41", "UPDATE orders SET status = 'cancelled' WHERE id <= 5")
	if res := call(t, a, "query_readonly", map[string]any{"sql": q}); res.IsError || !strings.Contains(resultText(res), "[5]") {
		t.Fatalf("session A does not see its branch: %s", resultText(res))
	}
	for name, c := range map[string]*client.Client{"session B": b, "token B's session": other} {
		if res := call(t, c, "query_readonly", map[string]any{"sql": q}); res.IsError || strings.Contains(resultText(res), "[5]") {
			t.Fatalf("%s sees session A's branch: %s", name, resultText(res))
		}
	}
	if n := count(t, url, "SELECT count(*) FROM airlock.branches WHERE status = 'live'"); n != 1 {
		t.Fatalf("%d live branches, want 1 (session A's)", n)
	}

	time.Sleep(300 * time.Millisecond) // the audit writer batches
	if n := count(t, url, "SELECT count(DISTINCT session) FROM airlock.audit_log WHERE tool = 'query_readonly'"); n != 3 {
		t.Fatalf("query_readonly calls were audited under %d sessions, want 3", n)
	}
	// Each row names the token by a hash prefix, never by its value.
	if n := count(t, url, "SELECT count(DISTINCT actor) FROM airlock.audit_log WHERE tool = 'query_readonly' AND actor LIKE 'agent (token %)'"); n != 2 {
		t.Fatalf("audit rows name %d tokens, want 2", n)
	}
	if n := count(t, url, "SELECT count(*) FROM airlock.audit_log WHERE actor LIKE '%tokenA%' OR actor LIKE '%tokenB%'"); n != 0 {
		t.Fatal("a token's value reached the audit log")
	}

	// Token B presenting session A's id: refused as unknown, and it cannot
	// end the session either.
	sid := a.GetSessionId()
	if sid == "" {
		t.Fatal("session A has no session id")
	}
	hdr := map[string]string{"Authorization": "Bearer " + tokenB, "Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
	if status, body, _ := post(t, endpoint, hdr, `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"query_readonly","arguments":{"sql":"SELECT 1"}}}`); status != http.StatusNotFound {
		t.Fatalf("token B used session A: %d %s", status, body)
	}
	req, _ := http.NewRequest(http.MethodDelete, endpoint, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("token B ended session A")
	}
	if res := call(t, a, "query_readonly", map[string]any{"sql": q}); res.IsError || !strings.Contains(resultText(res), "[5]") {
		t.Fatalf("session A lost its branch: %s", resultText(res))
	}

	// The reviewer discards the branch: its database is dropped.
	var branchID string
	if err := pgtest.Connect(t, url).QueryRow(context.Background(), "SELECT id::text FROM airlock.branches WHERE status = 'live'").Scan(&branchID); err != nil {
		t.Fatal(err)
	}
	if out, code := reviewer(t, url, "discard", branchID, "--reviewer", "alice"); code != 0 {
		t.Fatalf("discard (%d):\n%s", code, out)
	}
}

// TestHTTPSameContract: the tools, their schemas and their answers are the
// same over HTTP as over stdio.
func TestHTTPSameContract(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	endpoint := startHTTP(t, url, "support.json", tokenA)
	overHTTP := httpClient(t, endpoint, tokenA)
	overStdio := startAirlock(t, url, "support.json")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lh, err := overHTTP.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := overStdio.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	jh, _ := json.Marshal(lh.Tools)
	js, _ := json.Marshal(ls.Tools)
	if !bytes.Equal(jh, js) {
		t.Fatalf("tools differ:\nhttp:  %s\nstdio: %s", jh, js)
	}
	calls := []struct {
		tool string
		args map[string]any
	}{
		{"list_tables", map[string]any{}},
		{"describe_table", map[string]any{"table": "orders"}},
		{"query_readonly", map[string]any{"sql": "SELECT id, status FROM orders WHERE id <= $1 ORDER BY id", "params": []any{3}}},
		{"query_readonly", map[string]any{"sql": "DROP TABLE orders"}},
		{"query_readonly", map[string]any{"sql": "SELECT 1; DELETE FROM orders"}},
	}
	for _, c := range calls {
		rh, rs := call(t, overHTTP, c.tool, c.args), call(t, overStdio, c.tool, c.args)
		if rh.IsError != rs.IsError || !reflect.DeepEqual(stripElapsed(rh.StructuredContent), stripElapsed(rs.StructuredContent)) {
			t.Errorf("%s %v differs:\nhttp:  %s\nstdio: %s", c.tool, c.args, resultText(rh), resultText(rs))
		}
	}
}

// stripElapsed drops timing fields, the only part of an answer that may
// differ between two runs.
func stripElapsed(v any) any {
	b, _ := json.Marshal(v)
	var m any
	json.Unmarshal(b, &m)
	if mm, ok := m.(map[string]any); ok {
		delete(mm, "elapsed_ms")
	}
	return m
}

// TestHTTPLimits: a token past its rate gets 429 with Retry-After and a
// message that says which limit; the server keeps serving.
func TestHTTPLimits(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	endpoint := startHTTP(t, url, "readonly.json", tokenA, "--http-rate", "1", "--http-burst", "3")
	hdr := map[string]string{"Authorization": "Bearer " + tokenA}
	const ping = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	var limited bool
	for i := 0; i < 6 && !limited; i++ {
		status, body, h := post(t, endpoint, hdr, ping)
		if status == http.StatusTooManyRequests {
			limited = true
			if h.Get("Retry-After") == "" || !strings.Contains(body, "rate limit exceeded") {
				t.Fatalf("429 without Retry-After or reason: %s", body)
			}
		}
	}
	if !limited {
		t.Fatal("6 requests in a burst of 3 at 1/s were all let through")
	}
	time.Sleep(2 * time.Second)
	if status, body, _ := post(t, endpoint, hdr, ping); status != http.StatusOK {
		t.Fatalf("after the limit refilled: %d %s", status, body)
	}
}

// TestHTTPRefusesWithoutToken: serve --http does not start without a
// token, or with a short one, and says how to make one.
func TestHTTPRefusesWithoutToken(t *testing.T) {
	t.Parallel()
	for _, tok := range []string{"", "short"} {
		cmd := exec.Command(binary, "serve", "--scope", pgtest.Testdata("scopes", "readonly.json"), "--http", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL=postgres://nobody@127.0.0.1:1/none", "AIRLOCK_HTTP_TOKEN="+tok)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "openssl rand -hex 32") {
			t.Fatalf("token %q: serve started or did not say how to make a token: %v\n%s", tok, err, out)
		}
	}
}

// branchScopeFile writes support.json as a branch-mode scope named name.
func branchScopeFile(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(pgtest.Testdata("scopes", "support.json"))
	if err != nil {
		t.Fatal(err)
	}
	var scope map[string]any
	json.Unmarshal(raw, &scope)
	scope["name"] = name
	w := scope["write"].(map[string]any)
	w["mode"] = "branch"
	w["branch"] = map[string]any{"strategy": "schema", "sample_rows": 50}
	b, _ := json.Marshal(scope)
	path := filepath.Join(t.TempDir(), "scope.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHTTPShutdownWithOpenStream: an open event stream (GET) does not hold
// up shutdown; startHTTP's cleanup asserts the exit status and time.
func TestHTTPShutdownWithOpenStream(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	endpoint := startHTTP(t, url, "readonly.json", tokenA)
	c := httpClient(t, endpoint, tokenA)
	req, _ := http.NewRequest(http.MethodGet, endpoint, nil)
	req.Header.Set("Authorization", "Bearer "+tokenA)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", c.GetSessionId())
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %d", resp.StatusCode)
	}
	// Keep reading so the stream stays open until the server ends it.
	go func() {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
}

// TestHTTPSessionless: on revision 2026-07-28, which has no MCP sessions,
// an airlock session (audit id, branch) belongs to the bearer token: two
// connections with one token share it, another token has its own, and a
// 2025-11-25 session of the same token is a session of its own.
func TestHTTPSessionless(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	scope := branchScopeFile(t, "http-sessionless")
	endpoint := startHTTP(t, url, scope, tokenA+","+tokenB)

	a1 := httpClientOn(t, endpoint, tokenA, mcp.ProtocolVersion20260728)
	a2 := httpClientOn(t, endpoint, tokenA, mcp.ProtocolVersion20260728)
	b := httpClientOn(t, endpoint, tokenB, mcp.ProtocolVersion20260728)
	legacy := httpClient(t, endpoint, tokenA)
	if a1.GetSessionId() != "" {
		t.Fatalf("a 2026-07-28 client got an MCP session id %q", a1.GetSessionId())
	}

	const q = "SELECT count(*) AS n FROM orders WHERE status = 'cancelled' AND id <= 5"
	applyChange(t, a1, "OPS-51", "UPDATE orders SET status = 'cancelled' WHERE id <= 5")
	for name, c := range map[string]*client.Client{"token A again": a2, "token A's first connection": a1} {
		if res := call(t, c, "query_readonly", map[string]any{"sql": q}); res.IsError || !strings.Contains(resultText(res), "[5]") {
			t.Fatalf("%s does not see the token's branch: %s", name, resultText(res))
		}
	}
	for name, c := range map[string]*client.Client{"token B": b, "token A's 2025-11-25 session": legacy} {
		if res := call(t, c, "query_readonly", map[string]any{"sql": q}); res.IsError || strings.Contains(resultText(res), "[5]") {
			t.Fatalf("%s sees token A's branch: %s", name, resultText(res))
		}
	}
	time.Sleep(300 * time.Millisecond) // the audit writer batches
	if n := count(t, url, "SELECT count(DISTINCT session) FROM airlock.audit_log WHERE tool = 'query_readonly'"); n != 3 {
		t.Fatalf("%d audit sessions for the reads, want 3 (token A's, token B's, the 2025-11-25 session)", n)
	}
}
