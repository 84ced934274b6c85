package tools

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/scopes"
)

// BenchmarkQueryHandler is query_readonly without MCP: the handler alone
// (guard via the plan cache, the pipelined transaction, conversion,
// rendering, audit), to separate airlock's cost from JSON-RPC's.
func BenchmarkQueryHandler(b *testing.B) {
	url := newBenchDB(b)
	env := benchEnv(b, url)
	q := NewQueryReadonly(env)
	env.Catalog = NewCatalog(env.Pool, env.Scope, env.Log)
	req := mcp.CallToolRequest{}
	req.Params.Arguments = map[string]any{"sql": "SELECT id, customer_id, status, total, created_at FROM orders WHERE id = 42"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := q.Handle(context.Background(), req)
		if err != nil || res.IsError {
			b.Fatal(err, res)
		}
	}
}

// BenchmarkQueryWide is the handler on 1,000 rows of SELECT * over
// testdata/wide.sql, a column of every common type: the conversion of each
// type (escaped text, jsonb up to 10 KB, bytea to base64, timestamps)
// dominates, where the point query above measures the fixed cost.
func BenchmarkQueryWide(b *testing.B) {
	url := newBenchDB(b)
	sql, err := os.ReadFile(pgtest.Testdata("wide.sql"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pgtest.Connect(b, url).Exec(context.Background(), string(sql)); err != nil {
		b.Fatal(err)
	}
	env := benchEnv(b, url)
	// The byte cap is raised so that the row cap is what ends the answer.
	env.Scope, err = scopes.Parse([]byte(`{"name": "wide", "read": {"tables": {"public.wide": {}}, "max_rows": 1000, "max_bytes": 67108864}}`))
	if err != nil {
		b.Fatal(err)
	}
	q := NewQueryReadonly(env)
	env.Catalog = NewCatalog(env.Pool, env.Scope, env.Log)
	req := mcp.CallToolRequest{}
	req.Params.Arguments = map[string]any{"sql": "SELECT * FROM wide ORDER BY id"}
	var size int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := q.Handle(context.Background(), req)
		if err != nil || res.IsError {
			b.Fatal(err, res)
		}
		raw, _ := res.StructuredContent.(json.RawMessage)
		size = len(raw)
		if i == 0 {
			var out struct {
				RowCount int `json:"row_count"`
			}
			if err := json.Unmarshal(raw, &out); err != nil || out.RowCount != 1000 {
				b.Fatalf("row_count %d (%v), want 1000", out.RowCount, err)
			}
		}
	}
	b.ReportMetric(float64(size), "structured-bytes")
}
