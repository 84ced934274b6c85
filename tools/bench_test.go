package tools

import (
	"context"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
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
