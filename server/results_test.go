package server_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/scopes"
)

// sessionWith opens another in-process MCP session on h's server whose
// client declares rows ("" declares nothing) as its airlock/results.
func (h *harness) sessionWith(rows string) *client.Client {
	h.t.Helper()
	ctx := context.Background()
	c, err := client.NewInProcessClient(h.srv.MCP())
	if err != nil {
		h.t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "airlock-results-test", Version: "1"}
	if rows != "" {
		init.Params.Capabilities.Experimental = map[string]any{"airlock/results": map[string]any{"rows": rows}}
	}
	if _, err := c.Initialize(ctx, init); err != nil {
		h.t.Fatal(err)
	}
	return c
}

// textParts splits a text answer into what is not rows (the header and
// the fence lines) and the row lines, checking the fence on the way.
func textParts(t *testing.T, s string) (fixed string, columns string, rows []string) {
	t.Helper()
	head, rest, ok := strings.Cut(s, "\n<rows-")
	if !ok {
		t.Fatalf("no rows fence in %q", s)
	}
	token, body, ok := strings.Cut(rest, ">\n")
	if !ok || len(token) != 12 || !strings.Contains(head, "rows-"+token) {
		t.Fatalf("bad fence %q in %q", token, s)
	}
	closing := "</rows-" + token + ">"
	body, ok = strings.CutSuffix(body, closing)
	if !ok {
		t.Fatalf("the fence is not closed at the end: %q", s)
	}
	columns, body, _ = strings.Cut(body, "\n")
	if body != "" {
		rows = strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	}
	return head + "\n<rows-" + token + ">\n" + closing, columns, rows
}

// TestResultsPerSession: rows travel once, where the session asked for
// them; the text content's fixed part stays under 200 bytes; a text row
// costs fewer bytes than PostgreSQL's own compact JSON of it.
func TestResultsPerSession(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	const sql = "SELECT id, customer_id, status, total, created_at FROM orders ORDER BY id"
	ctx := context.Background()
	for _, tc := range []struct {
		rows             string
		schema, text, sc bool // outputSchema listed, rows in text, rows in structuredContent
	}{
		{"", false, true, false},
		{"text", false, true, false},
		{"nonsense", false, true, false},
		{"structured", true, false, true},
		{"both", true, true, true},
	} {
		t.Run("rows="+tc.rows, func(t *testing.T) {
			c := h.sessionWith(tc.rows)
			list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, tool := range list.Tools {
				has := tool.OutputSchema.Type != "" || len(tool.RawOutputSchema) > 0
				want := tc.schema || tool.Name != scopes.ToolQueryReadonly
				if has != want {
					t.Errorf("%s lists an output schema: %v, want %v", tool.Name, has, want)
				}
			}
			req := mcp.CallToolRequest{}
			req.Params.Name = scopes.ToolQueryReadonly
			req.Params.Arguments = map[string]any{"sql": sql, "max_rows": 20}
			res, err := c.CallTool(ctx, req)
			if err != nil || res.IsError {
				t.Fatalf("%v %s", err, text(res))
			}
			if (res.StructuredContent != nil) != tc.sc {
				t.Fatalf("structuredContent present: %v, want %v", res.StructuredContent != nil, tc.sc)
			}
			if len(res.Content) != 1 {
				t.Fatalf("%d content items", len(res.Content))
			}
			body := res.Content[0].(mcp.TextContent).Text
			if !tc.text {
				if strings.Contains(body, "\n") || strings.Contains(body, "[") || len(body) > 200 {
					t.Fatalf("the summary carries more than a line: %q", body)
				}
				return
			}
			fixed, columns, rows := textParts(t, body)
			if columns != `["id","customer_id","status","total","created_at"]` || len(rows) != 20 {
				t.Fatalf("columns %s, %d rows", columns, len(rows))
			}
			if !strings.Contains(fixed, "Truncated: more than 20 rows") || len(fixed) > 200 {
				t.Errorf("fixed part of a truncated answer is %d bytes (limit 200): %q", len(fixed), fixed)
			}
			var compact int
			if err := pgtest.Connect(t, h.url).QueryRow(ctx, "SELECT sum(length(row_to_json(o)::text)) FROM (SELECT id, customer_id, status, total, created_at FROM orders ORDER BY id LIMIT 20) o").Scan(&compact); err != nil {
				t.Fatal(err)
			}
			if n := len(strings.Join(rows, "\n")) + 1; n > compact {
				t.Errorf("the rows cost %d bytes of text, row_to_json %d", n, compact)
			}
			if tc.sc {
				var out queryOut
				structured(t, res, &out)
				for i, r := range rows {
					var a, b []any
					raw, _ := json.Marshal(out.Rows[i])
					if json.Unmarshal([]byte(r), &a) != nil || json.Unmarshal(raw, &b) != nil || !reflect.DeepEqual(a, b) {
						t.Errorf("row %d: text %s, structured %s", i, r, raw)
					}
				}
			}
		})
	}
}
