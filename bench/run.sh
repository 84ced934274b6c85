#!/usr/bin/env bash
# bench/run.sh: airlock's published figures, reproducible in one command.
#
#   bench/run.sh                     # print everything
#   RESULTS_DIR=/tmp/airlock-bench bench/run.sh   # also keep the output there
#
# It runs the in-process Go benchmarks (the guard alone, query_readonly
# through an in-process MCP client next to raw pgx, the handler without MCP,
# whole calls over stdio against the built binary), then the stdio load
# driver (bench/load), which starts its own PostgreSQL, seeds it (including a
# 5,000,000-row table), and measures latency, throughput, cold start and
# SELECT * with raw pgx figures from the same run beside each. BENCHMARKS.md
# explains every figure. It needs Go and the PostgreSQL server binaries
# (initdb, pg_ctl, postgres) on PATH or under /usr/lib/postgresql/*/bin; as
# root they run as the postgres OS user. About 2 minutes on 2 cores once the
# build cache is warm (pg_query's cgo build adds a minute the first time).
#
# When node and npm are on PATH, it first installs the peer MCP servers
# pinned in bench/peers (package-lock.json) with `npm ci`, and the load
# driver measures them side by side with airlock (BENCHMARKS.md, "Side by
# side"); without node the driver says how to install them and skips them.
#
# Extra arguments go to the load driver, e.g. `bench/run.sh -calls 500`.
set -euo pipefail

cd "$(dirname "$0")/.."

if command -v node >/dev/null && command -v npm >/dev/null; then
	echo "## npm ci --prefix bench/peers" >&2
	npm ci --prefix bench/peers --no-audit --no-fund >&2
else
	echo "run.sh: node and npm not found: the peer MCP servers are not measured" >&2
fi

if [ -n "${RESULTS_DIR:-}" ]; then
	mkdir -p "$RESULTS_DIR"
fi

cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
if awk -v l="$load" -v c="$cores" 'BEGIN { exit !(l > c / 2) }'; then
	echo "run.sh: warning: load average $load on $cores cores: other work will slow the figures down" >&2
fi

echo "## go test -bench" >&2
bench() {
	# -run '^$' runs no tests; each package starts its own throwaway cluster.
	go test -count 1 -run '^$' "$@"
}
{
	bench -bench 'CheckRead' -benchtime 2000x ./sqlguard/
	bench -bench 'QueryHandler' -benchtime 2000x ./tools/
	bench -bench 'QueryReadonly|RawPgx|ServeStdio' -benchtime 2000x ./server/
	bench -bench 'Stdio' -benchtime 2000x ./e2e/
	bench -bench 'Revert100k' -benchtime 2x -timeout 30m ./review/
} 2>&1 | if [ -n "${RESULTS_DIR:-}" ]; then tee "$RESULTS_DIR/go-bench.txt"; else cat; fi

echo "## bench/load" >&2
if [ -n "${RESULTS_DIR:-}" ]; then
	go run ./bench/load -out "$RESULTS_DIR/load.md" "$@"
else
	go run ./bench/load "$@"
fi
