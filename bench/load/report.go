package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// The published targets (issue 6).
const (
	targetRatio     = 1.5
	targetColdStart = 150 * time.Millisecond
	targetRSSKiB    = 64 << 10
)

type latencyFigure struct {
	name                 string
	airlock, raw, safeTx dist
}

type throughputFigure struct {
	name         string
	inflight     int
	airlock, raw float64 // calls per second
}

type coldFigure struct {
	toInit, toFirst, firstCall dist
	raw                        dist // pgx: connect, SET ROLE, the query
	execCheck                  dist // `airlock check`: exec to exit, no database
	rssKiB                     int64
}

type stepFigure struct {
	name, what string
	part       bool // one of the steps serve runs before its first answer
	d          time.Duration
}

type bigFigure struct {
	caps          string
	outcome       queryOutcome
	airlock       dist
	firstByte     dist  // request sent → first byte of the answer
	bytes         int64 // the answer's bytes on the server's stdout
	rssBeforeKiB  int64 // VmHWM after initialize, before the big query
	hwmKiB        int64 // VmHWM after the calls
	maxrssKiB     int64 // rusage maxrss at exit
	rawLimit      dist
	rawLimitBytes int64
}

// report gathers the figures and renders them as markdown.
type report struct {
	opt          options
	machine      machine
	latency      []latencyFigure
	throughput   throughputFigure
	cold         coldFigure
	startup      []stepFigure
	big          []bigFigure
	bigFull      dist
	bigFullBytes int64
	total        time.Duration
	loadStart    string
	peers        *peerReport // nil unless the peers were measured
}

// loadAverage is the 1-minute load average: figures measured on a busy
// machine are slower, and the report says so.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.machine
	w("## airlock load figures\n\n")
	w("Measured %s by `go run ./bench/load` (%s total). Machine: %s, %d cores, %s RAM; %s; %s; airlock binary %.1f MiB.\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), r.total.Round(time.Second), m.cpu, m.cores, m.memory, m.postgres, m.goVer,
		float64(m.binSize)/(1<<20))
	w("Load average (1 min) at the start and the end of the run: %s and %s; %d cores are shared by the client, airlock and PostgreSQL.\n",
		r.loadStart, loadAverage(), m.cores)
	w("Settings: %d measured calls after %d warm-up calls per figure, %d in flight for throughput, %d server starts, a %s-row table.\n\n",
		r.opt.calls, r.opt.warmup, r.opt.inflight, r.opt.starts, thousands(int64(r.opt.bigRows)))

	w("### Targets\n\n| target | airlock | reference in the same run | met |\n|---|---|---|---|\n")
	for _, l := range r.latency {
		ratio := ratioOf(l.airlock.p50(), l.raw.p50())
		w("| query_readonly p50 ≤ %.1f× raw pgx, %s | %s | raw pgx %s (%s) | %s |\n", targetRatio, l.name, ms(l.airlock.p50()),
			ms(l.raw.p50()), times(ratio), met(ratio <= targetRatio, fmt.Sprintf("%s the target", times(ratio/targetRatio))))
	}
	if cs := r.cold.toFirst.p50(); len(r.cold.toFirst) > 0 {
		w("| cold start to first result < %d ms | %s | raw pgx connect + query %s | %s |\n", targetColdStart.Milliseconds(), ms(cs),
			ms(r.cold.raw.p50()), met(cs < targetColdStart, "+"+ms(cs-targetColdStart)))
	}
	for _, bf := range r.big {
		w("| peak RSS < %d MiB, SELECT * on %s rows, %s caps (%s rows returned) | %s | — | %s |\n", targetRSSKiB>>10,
			thousands(int64(r.opt.bigRows)), bf.caps, thousands(int64(bf.outcome.RowCount)), mib(bf.hwmKiB),
			met(bf.hwmKiB < targetRSSKiB, "+"+mib(bf.hwmKiB-targetRSSKiB)))
	}

	if len(r.latency) > 0 {
		r.latencyTable(w)
	}
	if r.throughput.inflight > 0 {
		r.throughputTable(w)
	}
	if len(r.cold.toFirst) > 0 {
		r.coldTable(w)
	}
	if len(r.startup) > 0 {
		r.startupTable(w)
	}
	if len(r.big) > 0 {
		r.bigTable(w)
	}
	if r.peers != nil && len(r.peers.servers) > 0 {
		r.peerTables(w)
	}
	return b.String()
}

func (r *report) latencyTable(w func(string, ...any)) {
	w("\n### Latency over stdio (sequential calls, one session)\n\n")
	w("| query | airlock p50 | airlock p99 | raw pgx p50 | raw pgx p99 | airlock's transaction sent with pgx p50 | p99 | airlock / raw pgx (p50) |\n|---|---|---|---|---|---|---|---|\n")
	for _, l := range r.latency {
		w("| %s | %s | %s | %s | %s | %s | %s | %s |\n", l.name, ms(l.airlock.p50()), ms(l.airlock.p99()), ms(l.raw.p50()), ms(l.raw.p99()),
			ms(l.safeTx.p50()), ms(l.safeTx.p99()), times(ratioOf(l.airlock.p50(), l.raw.p50())))
	}

}

func (r *report) throughputTable(w func(string, ...any)) {
	t := r.throughput
	w("\n### Throughput (%s, %d requests in flight)\n\n", t.name, t.inflight)
	w("| airlock, one stdio session | raw pgx, pool of %d | airlock / raw pgx |\n|---|---|---|\n", t.inflight)
	w("| %.0f calls/s | %.0f calls/s | %.2f |\n", t.airlock, t.raw, t.airlock/t.raw)

}

func (r *report) coldTable(w func(string, ...any)) {
	c := r.cold
	w("\n### Cold start (median of %d starts; p90 in brackets)\n\n| from exec of `airlock serve` to | time |\n|---|---|\n", r.opt.starts)
	w("| the initialize answer (process start, connect, startup checks, catalog) | %s (%s) |\n", ms(c.toInit.p50()), ms(c.toInit.q(0.9)))
	w("| the first query_readonly result | **%s** (%s) |\n", ms(c.toFirst.p50()), ms(c.toFirst.q(0.9)))
	w("| of which the first call after initialize | %s (%s) |\n", ms(c.firstCall.p50()), ms(c.firstCall.q(0.9)))
	w("| reference: `airlock check --scope FILE`, exec to exit, no database | %s |\n", ms(c.execCheck.p50()))
	w("| reference: raw pgx, connect as the same login + SET ROLE + the query | %s |\n", ms(c.raw.p50()))
	w("| serve's peak RSS after one call | %s |\n", mib(c.rssKiB))

}

func (r *report) startupTable(w func(string, ...any)) {
	w("\n### Where serve's startup goes (each step timed in a fresh process, median of %d)\n\n| step | median | what it covers |\n|---|---|---|\n", r.opt.starts)
	var sum time.Duration
	for _, s := range r.startup {
		if s.part {
			sum += s.d
		}
		w("| %s | %s | %s |\n", s.name, ms(s.d), s.what)
	}
	compare := ""
	if len(r.cold.toFirst) > 0 {
		compare = "compare: exec of `airlock serve` → first result over stdio, " + ms(r.cold.toFirst.p50())
	}
	w("| **sum of the steps serve runs** | **%s** | %s |\n", ms(sum), compare)
}

func (r *report) bigTable(w func(string, ...any)) {
	w("\n### SELECT * FROM big (%s rows; median of %d calls, one fresh server per cap setting)\n\n", thousands(int64(r.opt.bigRows)), r.opt.bigRuns)
	w("| caps | rows returned | truncated | bytes over stdio | airlock time (first byte of the answer) | peak RSS (VmHWM) | RSS peak before the query | raw pgx, same rows (LIMIT n+1): time, bytes of values |\n|---|---|---|---|---|---|---|---|\n")
	for _, bf := range r.big {
		w("| %s | %s | %v | %s | %s (%s) | %s | %s | %s, %s |\n", capsText(bf.caps), thousands(int64(bf.outcome.RowCount)), bf.outcome.Truncated,
			thousands(bf.bytes), ms(bf.airlock.p50()), ms(bf.firstByte.p50()), mib(bf.hwmKiB), mib(bf.rssBeforeKiB), ms(bf.rawLimit.p50()), thousands(bf.rawLimitBytes))
	}
	w("\nRaw pgx fetching all %s rows (no cap): %s, %s bytes of values.\n", thousands(int64(r.opt.bigRows)), ms(r.bigFull.p50()), thousands(r.bigFullBytes))
	for _, bf := range r.big {
		if bf.outcome.TruncatedReason != "" {
			w("\n%s caps, what the agent is told: %q\n", capsText(bf.caps), bf.outcome.TruncatedReason)
		}
	}
}

func capsText(caps string) string {
	switch caps {
	case "default":
		return "default (max_rows 500, max_bytes 1 MiB)"
	case "max":
		return "largest allowed (max_rows 100,000, max_bytes 64 MiB)"
	}
	return caps
}

func met(ok bool, miss string) string {
	if ok {
		return "yes"
	}
	return "**no** (" + miss + ")"
}

func ratioOf(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func times(r float64) string { return fmt.Sprintf("%.1f×", r) }

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 1:
		return fmt.Sprintf("%.3f ms", v)
	case v < 100:
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// thousands formats n with commas: 25000 → "25,000".
func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
