package server_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mark3labs/mcp-go/mcp"
)

// The query_readonly benchmarks run the same SQL through the tool (an
// in-process MCP client: JSON-RPC, guard, pipeline, conversion) and as a
// plain pgx query on the same pool, so that the overhead can be read as a
// ratio. Each reports p50 and p99 latencies besides ns/op.

var benchQueries = map[string]string{
	"point":   "SELECT id, customer_id, status, total, created_at FROM orders WHERE id = 42",
	"100rows": "SELECT id, customer_id, status, total, created_at FROM orders ORDER BY id LIMIT 100",
}

func BenchmarkQueryReadonly(b *testing.B) {
	h := newHarness(b, "support.json", nil)
	for name, sql := range benchQueries {
		b.Run(name, func(b *testing.B) {
			req := mcp.CallToolRequest{}
			req.Params.Name = "query_readonly"
			req.Params.Arguments = map[string]any{"sql": sql}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				res, err := h.client.CallTool(context.Background(), req)
				if err != nil || res.IsError {
					b.Fatalf("%v %v", err, res)
				}
				lat = append(lat, time.Since(t0))
			}
			reportPercentiles(b, lat)
		})
	}
}

func BenchmarkRawPgx(b *testing.B) {
	h := newHarness(b, "support.json", nil)
	for name, sql := range benchQueries {
		b.Run(name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				rows, err := h.pool.Query(context.Background(), sql)
				if err != nil {
					b.Fatal(err)
				}
				for rows.Next() {
					if _, err := rows.Values(); err != nil {
						b.Fatal(err)
					}
				}
				rows.Close()
				if rows.Err() != nil {
					b.Fatal(rows.Err())
				}
				lat = append(lat, time.Since(t0))
			}
			reportPercentiles(b, lat)
		})
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkRawPgxSameTransaction is the database-side floor of a
// query_readonly call: the same pipeline (BEGIN READ ONLY, the limits, the
// query, ROLLBACK) sent with raw pgx, without airlock's guard, conversion,
// masking, audit or MCP.
func BenchmarkRawPgxSameTransaction(b *testing.B) {
	h := newHarness(b, "support.json", nil)
	for name, sql := range benchQueries {
		b.Run(name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				batch := &pgx.Batch{}
				batch.Queue("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
				batch.Queue("SELECT set_config('statement_timeout', '5000', true), set_config('lock_timeout', '1000', true), set_config('search_path', 'pg_catalog, pg_temp', true)")
				batch.Queue(strings.Replace(sql, "FROM orders", "FROM public.orders", 1))
				batch.Queue("ROLLBACK")
				if err := h.pool.SendBatch(context.Background(), batch).Close(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			reportPercentiles(b, lat)
		})
	}
}
