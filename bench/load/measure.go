package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// dist is a sorted sample of durations.
type dist []time.Duration

func newDist(d []time.Duration) dist {
	d = slices.Clone(d)
	slices.Sort(d)
	return d
}

// q is the p-th quantile (0..1), nearest rank.
func (d dist) q(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(p*float64(len(d)) + 0.5)
	return d[min(max(i-1, 0), len(d)-1)]
}

func (d dist) p50() time.Duration { return d.q(0.50) }
func (d dist) p99() time.Duration { return d.q(0.99) }

// sample runs fn warmup times, then n times, timing each.
func sample(ctx context.Context, warmup, n int, fn func(context.Context, int) error) (dist, error) {
	for i := 0; i < warmup; i++ {
		if err := fn(ctx, i); err != nil {
			return nil, err
		}
	}
	lat := make([]time.Duration, n)
	for i := range lat {
		t0 := time.Now()
		if err := fn(ctx, i); err != nil {
			return nil, err
		}
		lat[i] = time.Since(t0)
	}
	return newDist(lat), nil
}

// pointID and customerID pick the keys: a different row every call, so
// that a cache of the answer could not flatter anyone.
func pointID(i int) int64    { return 1 + int64(i*7919)%customers }
func customerID(i int) int64 { return 1 + int64(i*31)%orderCustomers }

// queryCase is one measured query with the keys it is called with.
type queryCase struct {
	name  string
	sql   string
	param func(int) int64
	rows  int
}

var latencyCases = []queryCase{
	{"point query (1 row by primary key)", pointSQL, pointID, 1},
	{"100-row query (index range, 6 columns)", hundredSQL, customerID, ordersPerCustomer},
}

// measureLatency times sequential calls over one stdio session, next to
// raw pgx (a pgxpool, its default statement cache) and to the same safe
// transaction airlock sends, sent with pgconn alone.
func measureLatency(ctx context.Context, e *benchEnv, r *report) error {
	p, err := startServe(ctx, e, e.scopes["default"])
	if err != nil {
		return err
	}
	defer p.close()
	for _, qc := range latencyCases {
		air, err := sample(ctx, e.opt.warmup, e.opt.calls, func(ctx context.Context, i int) error {
			res, err := p.query(ctx, qc.sql, qc.param(i))
			if err != nil {
				return err
			}
			if o, err := outcome(res); err != nil || o.RowCount != qc.rows {
				return fmt.Errorf("%s: want %d rows, got %+v (%v)", qc.name, qc.rows, o, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		raw, err := sample(ctx, e.opt.warmup, e.opt.calls, func(ctx context.Context, i int) error {
			return rawQuery(ctx, e, qc, i)
		})
		if err != nil {
			return err
		}
		safe, err := sample(ctx, e.opt.warmup, e.opt.calls, func(ctx context.Context, i int) error {
			return safeTxQuery(ctx, e, qc, i)
		})
		if err != nil {
			return err
		}
		r.latency = append(r.latency, latencyFigure{name: qc.name, airlock: air, raw: raw, safeTx: safe})
	}
	return nil
}

// rawQuery is the reference: what an application does with pgx.
func rawQuery(ctx context.Context, e *benchEnv, qc queryCase, i int) error {
	n, err := rawRows(ctx, e, qc.sql, qc.param(i))
	if err != nil {
		return err
	}
	if n != qc.rows {
		return fmt.Errorf("raw pgx %s: want %d rows, got %d", qc.name, qc.rows, n)
	}
	return nil
}

// rawRows runs sql with args on the raw pool and counts the rows, each
// decoded as an application would.
func rawRows(ctx context.Context, e *benchEnv, sql string, args ...any) (int, error) {
	rows, err := e.raw.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		if _, err := rows.Values(); err != nil {
			rows.Close()
			return 0, err
		}
		n++
	}
	return n, rows.Err()
}

// safeTxQuery sends the transaction query_readonly sends, as one pipelined
// batch over the extended protocol, with no parsing, policy or MCP: the
// floor under airlock's figure. The table is schema-qualified, as the
// guard's rewrite makes it under search_path pg_catalog.
func safeTxQuery(ctx context.Context, e *benchEnv, qc queryCase, i int) error {
	conn, err := e.raw.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	b := &pgconn.Batch{}
	for _, s := range e.txSetup {
		b.ExecParams(s, nil, nil, nil, nil)
	}
	b.ExecParams(qualified(qc.sql), [][]byte{fmt.Appendf(nil, "%d", qc.param(i))}, nil, nil, nil)
	b.ExecParams("ROLLBACK", nil, nil, nil, nil)
	results, err := conn.Conn().PgConn().ExecBatch(ctx, b).ReadAll()
	if err != nil {
		return err
	}
	if got := len(results[len(e.txSetup)].Rows); got != qc.rows {
		return fmt.Errorf("safe transaction %s: want %d rows, got %d", qc.name, qc.rows, got)
	}
	return nil
}

func qualified(sql string) string {
	switch sql {
	case pointSQL:
		return "SELECT id, name, email, plan, balance, signed_up_at FROM public.customers WHERE id = $1"
	case hundredSQL:
		return "SELECT id, customer_id, status, total, paid, created_at FROM public.orders WHERE customer_id = $1 ORDER BY id"
	}
	return sql
}

// measureThroughput runs calls spread over inflight goroutines on one
// stdio session, and the same over a pgxpool of inflight connections.
func measureThroughput(ctx context.Context, e *benchEnv, r *report) error {
	p, err := startServe(ctx, e, e.scopes["default"])
	if err != nil {
		return err
	}
	defer p.close()
	qc := latencyCases[0]
	air, err := concurrently(ctx, e.opt.inflight, e.opt.warmup, e.opt.calls, func(ctx context.Context, i int) error {
		_, err := p.query(ctx, qc.sql, qc.param(i))
		return err
	})
	if err != nil {
		return err
	}
	raw, err := concurrently(ctx, e.opt.inflight, e.opt.warmup, e.opt.calls, func(ctx context.Context, i int) error {
		return rawQuery(ctx, e, qc, i)
	})
	if err != nil {
		return err
	}
	r.throughput = throughputFigure{name: qc.name, inflight: e.opt.inflight, airlock: air, raw: raw}
	return nil
}

// concurrently runs warmup then n calls of fn with inflight of them in
// flight at any time, and returns the calls per second of the n.
func concurrently(ctx context.Context, inflight, warmup, n int, fn func(context.Context, int) error) (float64, error) {
	run := func(n int) (time.Duration, error) {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, inflight)
		t0 := time.Now()
		for w := 0; w < inflight; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					if err := fn(ctx, i); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		d := time.Since(t0)
		close(errs)
		return d, <-errs
	}
	if _, err := run(warmup); err != nil {
		return 0, err
	}
	d, err := run(n)
	if err != nil {
		return 0, err
	}
	return float64(n) / d.Seconds(), nil
}

// measureColdStart starts the server again and again: exec to the
// initialize answer, and exec to the first query_readonly result. The
// reference is a fresh pgx connection and the same query.
func measureColdStart(ctx context.Context, e *benchEnv, r *report) error {
	qc := latencyCases[0]
	var toInit, toFirst, firstCall []time.Duration
	var rss []int64
	for i := 0; i < e.opt.starts; i++ {
		p, err := startServe(ctx, e, e.scopes["default"])
		if err != nil {
			return err
		}
		if _, err := p.query(ctx, qc.sql, qc.param(i)); err != nil {
			p.close()
			return err
		}
		now := time.Now()
		toInit = append(toInit, p.initialized.Sub(p.started))
		toFirst = append(toFirst, now.Sub(p.started))
		firstCall = append(firstCall, now.Sub(p.initialized))
		rss = append(rss, p.close())
	}
	var raw []time.Duration
	for i := 0; i < e.opt.starts; i++ {
		t0 := time.Now()
		conn, err := pgx.Connect(ctx, e.agentURL)
		if err != nil {
			return err
		}
		// Our own statement, not agent SQL: the simple protocol is fine.
		_, err = conn.Exec(ctx, "SET ROLE airlock_bench_read")
		if err == nil {
			var rows pgx.Rows
			if rows, err = conn.Query(ctx, qc.sql, qc.param(i)); err == nil {
				for rows.Next() {
				}
				rows.Close()
				err = rows.Err()
			}
		}
		raw = append(raw, time.Since(t0))
		conn.Close(ctx)
		if err != nil {
			return fmt.Errorf("raw pgx cold start: %w", err)
		}
	}
	execOnly, err := timeExec(ctx, e, e.opt.starts)
	if err != nil {
		return err
	}
	slices.Sort(rss)
	r.cold = coldFigure{
		toInit: newDist(toInit), toFirst: newDist(toFirst), firstCall: newDist(firstCall),
		raw: newDist(raw), execCheck: execOnly, rssKiB: rss[len(rss)/2],
	}
	return nil
}

// timeExec times `airlock check --scope FILE` from exec to exit: the
// process, the Go runtime and every package's init, and loading the scope
// (JSON Schema validation), with no database.
func timeExec(ctx context.Context, e *benchEnv, n int) (dist, error) {
	var d []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := e.airlock(ctx, "", "check", "--scope", e.scopes["default"]); err != nil {
			return nil, err
		}
		d = append(d, time.Since(t0))
	}
	return newDist(d), nil
}

// measureBigTable runs SELECT * on the big table through a fresh server
// for each cap setting, and reads the server's peak RSS after the calls.
func measureBigTable(ctx context.Context, e *benchEnv, r *report) error {
	for _, caps := range []string{"default", "max"} {
		p, err := startServe(ctx, e, e.scopes[caps])
		if err != nil {
			return err
		}
		before, _ := p.peakRSS()
		var lat, ttfb []time.Duration
		var o queryOutcome
		var bytes int64
		for i := 0; i < e.opt.bigRuns; i++ {
			n0 := p.out.mark()
			t0 := time.Now()
			res, err := p.query(ctx, bigSQL)
			if err != nil {
				p.close()
				return err
			}
			lat = append(lat, time.Since(t0))
			ttfb = append(ttfb, p.out.firstByte().Sub(t0))
			bytes = p.out.n.Load() - n0
			progress("  %s caps, call %d: %v (first byte of the answer after %v), %d bytes", caps, i+1,
				lat[i].Round(time.Microsecond), ttfb[i].Round(time.Microsecond), bytes)
			if o, err = outcome(res); err != nil {
				p.close()
				return err
			}
		}
		hwm, _ := p.peakRSS()
		maxrss := p.close()
		// The same rows fetched with raw pgx: LIMIT is what the guard's
		// rewrite sends (one row more than the cap, to know it was cut).
		raw, rawBytes, err := rawFetch(ctx, e, fmt.Sprintf("SELECT * FROM big LIMIT %d", o.RowCount+1), e.opt.bigRuns)
		if err != nil {
			return err
		}
		r.big = append(r.big, bigFigure{caps: caps, outcome: o, airlock: newDist(lat), firstByte: newDist(ttfb), bytes: bytes,
			rssBeforeKiB: before, hwmKiB: hwm, maxrssKiB: maxrss, rawLimit: raw, rawLimitBytes: rawBytes})
	}
	full, fullBytes, err := rawFetch(ctx, e, bigSQL, 1)
	if err != nil {
		return err
	}
	r.bigFull, r.bigFullBytes = full, fullBytes
	return nil
}

// rawFetch runs sql n times with pgx, reading every value as raw bytes,
// and returns the times and the bytes of values of the last run.
func rawFetch(ctx context.Context, e *benchEnv, sql string, n int) (dist, int64, error) {
	var lat []time.Duration
	var bytes int64
	for i := 0; i < n; i++ {
		bytes = 0
		t0 := time.Now()
		rows, err := e.raw.Query(ctx, sql)
		if err != nil {
			return nil, 0, err
		}
		for rows.Next() {
			for _, v := range rows.RawValues() {
				bytes += int64(len(v))
			}
		}
		if err := rows.Err(); err != nil {
			return nil, 0, err
		}
		lat = append(lat, time.Since(t0))
	}
	return newDist(lat), bytes, nil
}
