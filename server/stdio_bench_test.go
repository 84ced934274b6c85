package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

// BenchmarkServeStdio is query_readonly's point query through ServeStdio
// with pre-encoded request lines and undecoded answers: what is measured
// is the server's side of a stdio call (JSON-RPC, the tool, the database
// round trip), without an MCP client's own cost. cpu-us/call is the
// process's user+system CPU per call, nearly all of it the server's.
func BenchmarkServeStdio(b *testing.B) {
	h := newHarness(b, "support.json", nil)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.srv.ServeStdio(ctx, inR, outW) }()
	defer func() {
		cancel()
		inW.Close()
		outR.Close()
		<-done
	}()
	lines := bufio.NewReaderSize(outR, 1<<20)
	send := func(s string) []byte {
		if _, err := io.WriteString(inW, s+"\n"); err != nil {
			b.Fatal(err)
		}
		line, err := lines.ReadBytes('\n')
		if err != nil {
			b.Fatal(err)
		}
		return line
	}
	send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`)
	if _, err := io.WriteString(inW, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"); err != nil {
		b.Fatal(err)
	}
	// With params the guard's plan cache answers after the first call;
	// with the key in the SQL text every call is a new text to check.
	req := func(i int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"query_readonly","arguments":{"sql":"SELECT * FROM orders WHERE id = $1","params":[%d]}}}`, i+1, i%100+1)
	}
	if os.Getenv("AIRLOCK_BENCH_LITERAL") != "" {
		req = func(i int) string {
			return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"query_readonly","arguments":{"sql":"SELECT * FROM orders WHERE id = %d"}}}`, i+1, i%100000+1)
		}
	}
	for i := 0; i < 200; i++ {
		send(req(i))
	}
	var size int
	lat := make([]time.Duration, 0, b.N)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		size = len(send(req(i)))
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/call")
	b.ReportMetric(float64(size), "answer-bytes")
	reportPercentiles(b, lat)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
