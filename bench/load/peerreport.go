package main

import (
	"fmt"
	"strings"
	"time"
)

// The side-by-side targets (issue 16).
const (
	targetCPUPerCall   = 150 * time.Microsecond
	targetP50VsPeer    = 0.6
	targetRateVsPeer   = 1.5
	targetSpawn        = 50 * time.Millisecond
	targetFixedPart    = 200
	notMeasured        = "—"
	sideBySideHeadline = "Side by side: airlock and peer MCP servers for PostgreSQL"
)

func (pr *peerReport) airlock() *sideFigures { return pr.servers[0] }

// peersOnly are the peer columns, without airlock and raw pgx.
func (pr *peerReport) peersOnly() []*sideFigures { return pr.servers[1 : len(pr.servers)-1] }

func (r *report) peerTables(w func(string, ...any)) {
	pr := r.peers
	w("\n### %s\n\n", sideBySideHeadline)
	w("Same run, same database, same literal SQL (the peers take no bind parameters). Point query `%s` with a different key every call; "+
		"sequential calls interleaved across the servers and raw pgx (call i goes to server i mod %d). The peers run under %s and log in as `%s` "+
		"(SELECT on the tables); airlock as `%s` with the driver's default scope (the largest caps scope for the 10,000-row and SELECT * figures). "+
		"All servers are driven by the same minimal JSON-RPC client over stdio.\n\n",
		fmt.Sprintf(peerPointSQL, 42), len(pr.servers), pr.node, peerLoginRole, loginRole)
	w("| figure |")
	for _, s := range pr.servers {
		w(" %s |", s.label)
	}
	w("\n|---|")
	for range pr.servers {
		w("---|")
	}
	w("\n")
	row := func(name string, cell func(*sideFigures) string) {
		w("| %s |", name)
		for _, s := range pr.servers {
			w(" %s |", cell(s))
		}
		w("\n")
	}
	isRaw := func(s *sideFigures) bool { return s.key == "raw" }
	row("point query p50", func(s *sideFigures) string { return ms(s.lat.p50()) })
	row("point query p99", func(s *sideFigures) string { return ms(s.lat.p99()) })
	row(fmt.Sprintf("server CPU per point call (utime+stime, %d calls)", pr.cpuCalls), func(s *sideFigures) string {
		if s.cpuPerCall < 0 {
			return notMeasured
		}
		return us(s.cpuPerCall)
	})
	row(fmt.Sprintf("calls/s, %d in flight on one session (raw pgx: pool of %d)", r.opt.inflight, r.opt.inflight), func(s *sideFigures) string {
		return fmt.Sprintf("%.0f", s.callsPerS)
	})
	row(fmt.Sprintf("spawn → first result (median of %d; raw pgx: connect + query)", r.opt.starts), func(s *sideFigures) string {
		return ms(s.spawn.p50())
	})
	row("one-row answer: bytes of the JSON-RPC line (text content)", func(s *sideFigures) string {
		if isRaw(s) {
			return notMeasured
		}
		return fmt.Sprintf("%s (%s)", thousands(s.oneRow), thousands(int64(s.oneRowText)))
	})
	row(fmt.Sprintf("10,000 × 13 columns: answer line bytes / row (row_to_json: %.0f)", pr.rowToJSON), func(s *sideFigures) string {
		if isRaw(s) || s.mixedRows == 0 {
			return notMeasured
		}
		return fmt.Sprintf("%.0f", float64(s.mixedLine)/float64(s.mixedRows))
	})
	row("10,000 × 13 columns: text content bytes / row", func(s *sideFigures) string {
		if isRaw(s) || s.mixedRows == 0 {
			return notMeasured
		}
		return fmt.Sprintf("%.0f", float64(s.mixedText)/float64(s.mixedRows))
	})
	row("fixed part of the text (text − the column line − rows' lines): one row; 10,000 rows", func(s *sideFigures) string {
		if s.key != "airlock" {
			return notMeasured
		}
		return fmt.Sprintf("%d; %d", s.fixedOne, s.fixedMixed)
	})
	row(fmt.Sprintf("SELECT * FROM big (%s rows): rows returned", thousands(int64(r.opt.bigRows))), func(s *sideFigures) string {
		return bigCell(s.big, func(b bigSide) string {
			if b.rows == "" {
				return "all (no cap)"
			}
			return b.rows
		})
	})
	row("SELECT * FROM big: time", func(s *sideFigures) string { return bigCell(s.big, func(b bigSide) string { return ms(b.d) }) })
	row("SELECT * FROM big: answer bytes (raw pgx: bytes of values)", func(s *sideFigures) string {
		return bigCell(s.big, func(b bigSide) string { return thousands(b.bytes) })
	})
	row("SELECT * FROM big: server peak RSS (VmHWM)", func(s *sideFigures) string {
		if isRaw(s) {
			return notMeasured
		}
		return bigCell(s.big, func(b bigSide) string { return mib(b.hwmKiB) })
	})
	if b := pr.airlockBigDefault; b.measured {
		if b.fail != "" {
			w("\nairlock's SELECT * FROM big under the default caps fails: %s\n", b.fail)
		} else {
			w("\nairlock's column for SELECT * is the largest caps a scope allows; under the default caps (a scope that says nothing about limits) "+
				"it returns %s rows in %s, %s bytes, peak RSS %s.\n", b.rows, ms(b.d), thousands(b.bytes), mib(b.hwmKiB))
		}
	}
	for _, s := range pr.servers {
		if s.big.fail != "" {
			w("\n%s, SELECT * FROM big fails: %s\n", s.label, strings.ReplaceAll(s.big.fail, "|", "\\|"))
		}
	}
	r.peerRatios(w)
}

func bigCell(b bigSide, ok func(bigSide) string) string {
	switch {
	case !b.measured:
		return notMeasured
	case b.fail != "":
		return fmt.Sprintf("**fails** (after %s)", ms(b.d))
	}
	return ok(b)
}

func (r *report) peerRatios(w func(string, ...any)) {
	pr := r.peers
	a := pr.airlock()
	peers := pr.peersOnly()
	w("\n#### Ratios: airlock / peer (below 1 is airlock lower)\n\n| figure |")
	for _, p := range peers {
		w(" %s |", p.label)
	}
	w("\n|---|")
	for range peers {
		w("---|")
	}
	w("\n")
	ratioRow := func(name string, f func(*sideFigures) float64) {
		w("| %s |", name)
		for _, p := range peers {
			if d := f(p); d > 0 {
				w(" %.2f |", f(a)/d)
			} else {
				w(" %s |", notMeasured)
			}
		}
		w("\n")
	}
	ratioRow("point query p50", func(s *sideFigures) float64 { return float64(s.lat.p50()) })
	ratioRow("point query p99", func(s *sideFigures) float64 { return float64(s.lat.p99()) })
	ratioRow("server CPU per call", func(s *sideFigures) float64 { return float64(s.cpuPerCall) })
	ratioRow("calls/s (above 1 is airlock faster)", func(s *sideFigures) float64 { return s.callsPerS })
	ratioRow("spawn → first result", func(s *sideFigures) float64 { return float64(s.spawn.p50()) })
	ratioRow("one-row answer bytes", func(s *sideFigures) float64 { return float64(s.oneRow) })
	ratioRow("10,000-row answer bytes", func(s *sideFigures) float64 { return float64(s.mixedLine) })

	// The fastest peer on each figure.
	var fastP50 *sideFigures
	var fastRate *sideFigures
	for _, p := range peers {
		if fastP50 == nil || p.lat.p50() < fastP50.lat.p50() {
			fastP50 = p
		}
		if fastRate == nil || p.callsPerS > fastRate.callsPerS {
			fastRate = p
		}
	}
	w("\n#### Targets (issue 16)\n\n| target | airlock | reference | met |\n|---|---|---|---|\n")
	if a.cpuPerCall >= 0 {
		w("| server CPU per point call ≤ %s | %s | — | %s |\n", us(targetCPUPerCall), us(a.cpuPerCall),
			met(a.cpuPerCall <= targetCPUPerCall, "+"+us(a.cpuPerCall-targetCPUPerCall)))
	}
	if fastP50 != nil {
		ratio := ratioOf(a.lat.p50(), fastP50.lat.p50())
		w("| point p50 ≤ %.1f× the fastest peer | %s | %s %s (%.2f×) | %s |\n", targetP50VsPeer, ms(a.lat.p50()), fastP50.label,
			ms(fastP50.lat.p50()), ratio, met(ratio <= targetP50VsPeer, fmt.Sprintf("%.2f×", ratio)))
	}
	if fastRate != nil && fastRate.callsPerS > 0 {
		ratio := a.callsPerS / fastRate.callsPerS
		w("| calls/s ≥ %.1f× the fastest peer | %.0f | %s %.0f (%.2f×) | %s |\n", targetRateVsPeer, a.callsPerS, fastRate.label,
			fastRate.callsPerS, ratio, met(ratio >= targetRateVsPeer, fmt.Sprintf("%.2f×", ratio)))
	}
	sp := a.spawn.p50()
	w("| spawn → first result ≤ %d ms | %s | — | %s |\n", targetSpawn.Milliseconds(), ms(sp), met(sp <= targetSpawn, "+"+ms(sp-targetSpawn)))
	if a.mixedRows > 0 {
		per := float64(a.mixedRowBytes) / float64(a.mixedRows)
		w("| text bytes / row ≤ row_to_json bytes / row (10,000 × 13 columns) | %.1f | row_to_json %.1f | %s |\n", per, pr.rowToJSON,
			met(per <= pr.rowToJSON, fmt.Sprintf("+%.1f", per-pr.rowToJSON)))
		worst := max(a.fixedOne, a.fixedMixed)
		w("| fixed part of the text ≤ %d bytes (one-row answer; 10,000-row answer) | %d; %d | — | %s |\n", targetFixedPart, a.fixedOne,
			a.fixedMixed, met(worst <= targetFixedPart, fmt.Sprintf("+%d", worst-targetFixedPart)))
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }
