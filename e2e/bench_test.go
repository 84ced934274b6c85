package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// BenchmarkStdio measures whole tool calls over stdio against the built
// binary, next to the same SQL as a raw pgx round trip in the same run.
func BenchmarkStdio(b *testing.B) {
	url := pgtest.NewDatabase(b)
	c := startAirlock(b, url, "support.json")
	conn := pgtest.Connect(b, url)
	for name, sql := range map[string]string{
		"point":   "SELECT id, customer_id, status, total, created_at FROM orders WHERE id = 42",
		"100rows": "SELECT id, customer_id, status, total, created_at FROM orders ORDER BY id LIMIT 100",
	} {
		b.Run("query_readonly/"+name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				res := call(b, c, "query_readonly", map[string]any{"sql": sql})
				if res.IsError {
					b.Fatal(resultText(res))
				}
				lat = append(lat, time.Since(t0))
			}
			percentiles(b, lat)
		})
		b.Run("raw_pgx/"+name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				rows, _ := conn.Query(context.Background(), sql)
				for rows.Next() {
					rows.Values()
				}
				rows.Close()
				if rows.Err() != nil {
					b.Fatal(rows.Err())
				}
				lat = append(lat, time.Since(t0))
			}
			percentiles(b, lat)
		})
	}
}

// BenchmarkSelectStarBigTable runs SELECT * FROM a 5,000,000-row table
// through the binary: the cap must reach the database, so the call returns
// in milliseconds and the server's memory stays flat. It reports the
// server's peak RSS (VmHWM) and the bytes of the answer.
func BenchmarkSelectStarBigTable(b *testing.B) {
	url := pgtest.NewDatabase(b)
	conn := pgtest.Connect(b, url)
	t0 := time.Now()
	if _, err := conn.Exec(context.Background(), `
		CREATE TABLE public.big AS
		SELECT g AS id, md5(g::text) AS payload, g % 100 AS bucket, now() AS at
		FROM generate_series(1, 5000000) g;
		ANALYZE public.big`); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded 5,000,000 rows in %v", time.Since(t0))
	scope := filepath.Join(b.TempDir(), "big.json")
	os.WriteFile(scope, []byte(`{"name": "big", "read": {"tables": {"public.big": {}}, "max_rows": 500}}`), 0o600)
	c, cmd := startAirlockCmd(b, url, scope)
	var bytes int
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		res := call(b, c, "query_readonly", map[string]any{"sql": "SELECT * FROM big"})
		lat = append(lat, time.Since(t0))
		if res.IsError {
			b.Fatal(resultText(res))
		}
		bytes = len(resultText(res))
	}
	b.StopTimer()
	percentiles(b, lat)
	b.ReportMetric(float64(bytes), "answer-bytes")
	if rss, err := peakRSS(cmd.Process.Pid); err == nil {
		b.ReportMetric(float64(rss)/1024, "peak-rss-MiB")
	}
}

// peakRSS reads VmHWM (KiB) of a process from /proc.
func peakRSS(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmHWM")
}

func percentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
