package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// tsStep is what e2e/tsclient/client.mjs records for one tools/call.
type tsStep struct {
	IsError           bool            `json:"isError"`
	Text              string          `json:"text"`
	StructuredContent json.RawMessage `json:"structuredContent"`
	Meta              map[string]any  `json:"_meta"`
	Exception         *tsException    `json:"exception"`
}

// tsException is an error the SDK threw; Code is set for an McpError.
type tsException struct {
	Name    string `json:"name"`
	Message string `json:"message"`
	Code    *int   `json:"code"`
}

type tsReport struct {
	SDKVersion string `json:"sdk_version"`
	Tools      []struct {
		Name            string `json:"name"`
		HasOutputSchema bool   `json:"has_output_schema"`
	} `json:"tools"`
	Steps      map[string]*tsStep `json:"steps"`
	Fatal      *tsException       `json:"fatal"`
	CloseError *tsException       `json:"close_error"`
	Watchdog   string             `json:"watchdog"`
}

// tsSDKVersion is the version e2e/tsclient/package-lock.json pins.
const tsSDKVersion = "1.32.2"

// TestTypeScriptSDKClient drives the built binary with the official
// TypeScript SDK client. mcp-go's client (the other e2e tests) accepts
// any result shape; the TypeScript client validates structuredContent
// against each tool's outputSchema and turns a mismatch into an exception
// the agent never sees past, so this is what tells us real clients can
// read both airlock's answers and its refusals.
// TestTypeScriptSDKClient runs the SDK client twice: a default session,
// which takes query rows as text (query_readonly lists no output schema
// and sends no structuredContent), and one that asks for them structured.
func TestTypeScriptSDKClient(t *testing.T) {
	for _, rows := range []string{"", "structured"} {
		name := rows
		if name == "" {
			name = "text"
		}
		t.Run(name, func(t *testing.T) { testTypeScriptSDKClient(t, rows) })
	}
}

func testTypeScriptSDKClient(t *testing.T, rows string) {
	dir, err := filepath.Abs("tsclient")
	must(t, err, "tsclient dir")
	// A missing toolchain fails rather than skips: a skipped test would
	// let CI go green without ever running the strict client.
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH: install Node.js 20 or later (Debian: apt-get install nodejs npm; or https://nodejs.org), then run npm ci --prefix e2e/tsclient")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		t.Fatalf("the TypeScript SDK is not installed (%v): run npm ci --prefix e2e/tsclient", err)
	}

	url := pgtest.NewDatabase(t)
	// Its own scope name: the roles scope apply creates are cluster-wide.
	scope := applyScope(t, url, faultScope(t, `{"name": "tsclient",
		"database": {"url_env": "AIRLOCK_DATABASE_URL"},
		"read": {"tables": {"public.customers": {"columns": ["id", "name", "email", "plan"], "mask": ["email"]},
			"public.orders": {}, "public.invoices": {}, "public.products": {}}, "max_rows": 500},
		"write": {"mode": "replay", "tables": ["public.orders", "public.invoices"], "allow": ["update", "delete"],
			"ticket_pattern": "^[A-Z]+-[0-9]+$", "review_ttl": "30m"}}`))
	before := targetItems(pgtest.Fingerprint(t, url))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{filepath.Join(dir, "client.mjs"), binary, scope}
	if rows != "" {
		args = append(args, rows)
	}
	cmd := exec.CommandContext(ctx, node, args...)
	// The URL reaches node, and through it airlock, only in the
	// environment, as an MCP client config passes it.
	cmd.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL="+url)
	cmd.Stderr = stderrSink(t) // node's and, inherited, airlock's stderr
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run node: %v", err)
	}
	t.Logf("client.mjs output:\n%s", out)
	var rep tsReport
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		t.Fatalf("client.mjs (%v) printed no report: %v", err, jerr)
	}
	if err != nil || rep.Fatal != nil || rep.Watchdog != "" {
		t.Fatalf("client.mjs failed (%v): fatal=%+v watchdog=%q", err, rep.Fatal, rep.Watchdog)
	}
	if rep.CloseError != nil {
		t.Errorf("close: %+v", rep.CloseError)
	}
	if rep.SDKVersion != tsSDKVersion {
		t.Errorf("SDK %s installed, want %s: run npm ci --prefix e2e/tsclient", rep.SDKVersion, tsSDKVersion)
	}

	var names []string
	for _, tool := range rep.Tools {
		names = append(names, tool.Name)
		textRows := rows == "" && tool.Name == "query_readonly"
		if !tool.HasOutputSchema && !textRows {
			t.Errorf("%s has no outputSchema: the SDK checks nothing for it", tool.Name)
		}
		if tool.HasOutputSchema && textRows {
			t.Errorf("%s lists an outputSchema to a session that takes its rows as text", tool.Name)
		}
	}
	slices.Sort(names)
	want := []string{"apply_migration_with_ticket", "describe_table", "get_change_status", "list_tables", "migrate_dry_run", "query_readonly"}
	if !slices.Equal(names, want) {
		t.Fatalf("tools/list = %v, want %v", names, want)
	}

	step := func(name string) *tsStep {
		t.Helper()
		s := rep.Steps[name]
		if s == nil {
			t.Fatalf("step %s did not run", name)
		}
		return s
	}

	// Successes: the SDK accepted the structuredContent (it validated it
	// against the outputSchema), and it has the fields an agent reads.
	successes := map[string][]string{
		"query_readonly":              {"columns", "rows", "row_count", "truncated"},
		"list_tables":                 {"tables"},
		"describe_table":              {"table", "columns", "primary_key"},
		"migrate_dry_run":             {"statements", "risk"},
		"apply_migration_with_ticket": {"change_id", "status", "report"},
		"get_change_status":           {"change_id", "status", "ticket"},
	}
	fields := map[string]map[string]any{}
	for name, keys := range successes {
		s := step(name)
		if s.Exception != nil {
			t.Errorf("%s: the SDK rejected the result: %s: %s", name, s.Exception.Name, s.Exception.Message)
			continue
		}
		if rows == "" && name == "query_readonly" {
			if s.IsError || len(s.StructuredContent) != 0 || !strings.Contains(s.Text, "\n[\"status\",\"n\"]\n[") {
				t.Errorf("%s: isError=%v structuredContent=%s text=%q; want the rows in the text only", name, s.IsError, s.StructuredContent, s.Text)
			}
			continue
		}
		var sc map[string]any
		if s.IsError || json.Unmarshal(s.StructuredContent, &sc) != nil || sc == nil {
			t.Errorf("%s: isError=%v structuredContent=%s text=%q", name, s.IsError, s.StructuredContent, s.Text)
			continue
		}
		for _, k := range keys {
			if _, ok := sc[k]; !ok {
				t.Errorf("%s: structuredContent lacks %q: %s", name, k, s.StructuredContent)
			}
		}
		fields[name] = sc
	}
	if sc := fields["apply_migration_with_ticket"]; sc != nil && sc["status"] != "pending" {
		t.Errorf("apply: status %v, want pending", sc["status"])
	}
	if sc := fields["get_change_status"]; sc != nil {
		if sc["status"] != "pending" || sc["change_id"] != fields["apply_migration_with_ticket"]["change_id"] {
			t.Errorf("get_change_status: %v", sc)
		}
	}

	// Refusals: the SDK accepted them as results (no structuredContent to
	// validate), and the payload is in _meta.
	refusals := map[string]string{
		"refuse_query_readonly":              "statement_not_allowed",
		"refuse_list_tables":                 "bad_arguments",
		"refuse_describe_table":              "table_not_in_scope",
		"refuse_migrate_dry_run":             "table_not_writable",
		"refuse_apply_migration_with_ticket": "bad_ticket",
		"refuse_get_change_status":           "bad_change_id",
	}
	for name, code := range refusals {
		s := step(name)
		if s.Exception != nil {
			t.Errorf("%s: the SDK rejected the refusal: %s: %s", name, s.Exception.Name, s.Exception.Message)
			continue
		}
		if !s.IsError || !(strings.HasPrefix(s.Text, "Refused (") || strings.HasPrefix(s.Text, "Failed (")) {
			t.Errorf("%s: isError=%v text=%q", name, s.IsError, s.Text)
		}
		if len(s.StructuredContent) != 0 && string(s.StructuredContent) != "null" {
			t.Errorf("%s: a refusal carries structuredContent: %s", name, s.StructuredContent)
		}
		payload, _ := s.Meta["airlock/error"].(map[string]any)
		if payload == nil || payload["code"] != code || payload["reason"] == "" {
			t.Errorf("%s: _meta = %v, want airlock/error code %s", name, s.Meta, code)
		}
	}

	// An unknown tool is a JSON-RPC error, which the SDK raises as an
	// McpError carrying the code (-32602 Invalid params, per the spec's
	// "Unknown tool" example).
	if s := step("unknown_tool"); s.Exception == nil || s.Exception.Name != "McpError" || s.Exception.Code == nil || *s.Exception.Code != -32602 {
		t.Errorf("unknown tool: want McpError -32602, got exception=%+v result isError=%v text=%q", s.Exception, s.IsError, s.Text)
	}

	// The refusals wrote nothing, and a replay-mode apply holds its change
	// for review: the write target is as it was.
	if d := diffItems(before, targetItems(pgtest.Fingerprint(t, url))); d != "" {
		t.Errorf("the database changed:\n%s", d)
	}
}
