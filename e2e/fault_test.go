package e2e

// Faults the server must survive: the database restarting under an open
// session, SIGTERM and SIGKILL mid-call, a burst of concurrent calls,
// statements that would run forever or return billions of rows, and
// garbage on the wire. Each test checks the database afterwards, not only
// the answers.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/internal/pgcluster"
	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/tools"
)

// faultScope writes a scope file for one test. Each test uses its own
// scope name, so the roles `scope apply` creates (which are cluster-wide)
// are not raced for by tests running in parallel.
func faultScope(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scope.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// seedCluster creates database name holding testdata/seed.sql on c and
// returns its URL.
func seedCluster(t *testing.T, c *pgcluster.Cluster, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, c.URL("postgres"))
	must(t, err, "connect")
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	admin.Close(ctx)
	must(t, err, "create database")
	seed, err := os.ReadFile(pgtest.Testdata("seed.sql"))
	must(t, err, "read seed")
	url := c.URL(name)
	conn, err := pgx.Connect(ctx, url)
	must(t, err, "connect")
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, string(seed)) // simple protocol: the whole script
	must(t, err, "seed")
	return url
}

// callWithin calls a tool with a deadline: a hung server fails the test
// instead of hanging it.
func callWithin(t *testing.T, c *client.Client, d time.Duration, tool string, args map[string]any) (*mcp.CallToolResult, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	t0 := time.Now()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: no answer within %v: %v", tool, d, err)
	}
	return res, time.Since(t0)
}

func resultCode(res *mcp.CallToolResult) string {
	if !res.IsError {
		return ""
	}
	if p := tools.ErrorOf(res); p != nil {
		return p.Code
	}
	return "?"
}

// TestFaultPostgresRestart: PostgreSQL restarts while agent sessions hold
// pending changes (replay, and prepared when the server allows it). The
// next call fails cleanly or reconnects, never hangs; later calls work; the
// pending changes are still listed and commit. It runs on its own cluster,
// since the package's shared one serves the other tests.
func TestFaultPostgresRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{MaxPreparedTransactions: 10})
	must(t, err, "start cluster")
	t.Cleanup(func() {
		if err := cluster.Stop(); err != nil {
			t.Error(err)
		}
	})
	var mpt int
	must(t, pgtest.Connect(t, cluster.URL("postgres")).QueryRow(ctx, "SELECT current_setting('max_prepared_transactions')::int").Scan(&mpt), "show")

	modes := []string{"support.json"}
	if mpt > 0 {
		modes = append(modes, "prepared.json")
	} else {
		t.Log("max_prepared_transactions = 0: prepared mode not exercised")
	}
	// One session per write mode, each on its own database (both scopes
	// take ownership of the tables they write) holding a pending change.
	type session struct {
		scope, url string
		c          *client.Client
		lo, hi     int
		id         string
	}
	var sessions []*session
	for i, scope := range modes {
		url := seedCluster(t, cluster, fmt.Sprintf("fault_%d", i))
		s := &session{scope: scope, url: url, c: startAirlock(t, url, scope), lo: 100*(i+1) + 1, hi: 100*(i+1) + 10}
		s.id = applyChange(t, s.c, "OPS-71", fmt.Sprintf("UPDATE orders SET status = 'refunded' WHERE id BETWEEN %d AND %d", s.lo, s.hi))
		sessions = append(sessions, s)
	}
	refunded := func(s *session) int {
		return count(t, s.url, fmt.Sprintf("SELECT count(*) FROM orders WHERE status = 'refunded' AND id BETWEEN %d AND %d", s.lo, s.hi))
	}
	for _, s := range sessions {
		if n := refunded(s); n != 0 {
			t.Fatalf("%s: visible before review: %d", s.scope, n)
		}
	}

	t0 := time.Now()
	must(t, cluster.Restart(ctx), "restart")
	t.Logf("restarted PostgreSQL in %v", time.Since(t0))

	for _, s := range sessions {
		// The first call after the restart meets dead pooled connections:
		// it may fail, but only cleanly and promptly.
		res, took := callWithin(t, s.c, 20*time.Second, "query_readonly", map[string]any{"sql": "SELECT count(*) AS n FROM orders"})
		text := resultText(res)
		switch code := resultCode(res); code {
		case "":
			t.Logf("%s: first call after restart reconnected (%v)", s.scope, took)
		case "database_unavailable":
			t.Logf("%s: first call after restart failed cleanly (%v): %s", s.scope, took, text)
		default:
			t.Errorf("%s: first call after restart: code %q, want success or database_unavailable: %s", s.scope, code, text)
		}
		if strings.Contains(text, "127.0.0.1:"+strconv.Itoa(cluster.Port())) || strings.Contains(text, "postgres://") {
			t.Errorf("%s: the error shows connection details: %s", s.scope, text)
		}
		// Every later call works.
		for _, c := range []struct {
			tool string
			args map[string]any
		}{
			{"query_readonly", map[string]any{"sql": "SELECT count(*) AS n FROM orders"}},
			{"list_tables", nil},
			{"describe_table", map[string]any{"table": "orders"}},
			{"migrate_dry_run", map[string]any{"sql": "UPDATE invoices SET paid = true WHERE id = 1"}},
		} {
			if res, took := callWithin(t, s.c, 20*time.Second, c.tool, c.args); res.IsError {
				t.Errorf("%s: %s after restart (%v): %s", s.scope, c.tool, took, resultText(res))
			}
		}
		if st := changeStatus(t, s.c, s.id); st != "pending" {
			t.Errorf("%s: change %s is %q after the restart, want pending", s.scope, s.id, st)
		}
	}
	// A change made after the restart is held like any other.
	first := sessions[0]
	after := applyChange(t, first.c, "OPS-72", "UPDATE invoices SET paid = true WHERE id BETWEEN 1 AND 5")

	for _, s := range sessions {
		want := []string{s.id}
		if s == first {
			want = append(want, after)
		}
		out, code := reviewer(t, s.url, "pending")
		for _, id := range want {
			if code != 0 || !strings.Contains(out, id) {
				t.Fatalf("%s: pending after restart (%d) lacks %s:\n%s", s.scope, code, id, out)
			}
		}
		if out, code := reviewer(t, s.url, "commit", s.id, "--reviewer", "alice"); code != 0 {
			t.Fatalf("%s: commit after restart (%d):\n%s", s.scope, code, out)
		}
		if n := refunded(s); n != s.hi-s.lo+1 {
			t.Errorf("%s: %d rows refunded after commit, want %d", s.scope, n, s.hi-s.lo+1)
		}
		if st := changeStatus(t, s.c, s.id); st != "committed" {
			t.Errorf("%s: status after commit: %s", s.scope, st)
		}
	}
	if out, code := reviewer(t, first.url, "commit", after, "--reviewer", "alice"); code != 0 {
		t.Fatalf("commit of the post-restart change (%d):\n%s", code, out)
	}
	if n := count(t, first.url, "SELECT count(*) FROM invoices WHERE id BETWEEN 1 AND 5 AND paid"); n != 5 {
		t.Errorf("post-restart change: %d invoices paid, want 5", n)
	}
	if n := count(t, first.url, "SELECT count(*) FROM pg_prepared_xacts"); n != 0 {
		t.Errorf("%d prepared transactions left", n)
	}
}

// TestFaultSigtermInFlight: SIGTERM while slow reads run. The server exits
// with status 0 within seconds and leaves nothing running in the database:
// no airlock session, so no transaction and no lock.
func TestFaultSigtermInFlight(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	// A long statement_timeout: the database must not be left to end the
	// reads by itself.
	scope := applyScope(t, url, faultScope(t, `{"name": "fault-sigterm",
		"read": {"tables": {"public.orders": {}}, "statement_timeout_ms": 120000}}`))
	w := startWire(t, url, scope)
	conn := pgtest.Connect(t, url)

	const inFlight = 4
	var answers []chan map[string]any
	for i := 0; i < inFlight; i++ {
		// 5000^3 rows to count: hours of work.
		answers = append(answers, w.callTool("query_readonly", map[string]any{
			"sql": fmt.Sprintf("SELECT count(*) + %d AS n FROM orders a, orders b, orders c", i)}))
	}
	if !eventually(15*time.Second, func() bool { _, inTx := airlockBackends(t, conn); return inTx >= inFlight }) {
		total, inTx := airlockBackends(t, conn)
		t.Fatalf("the slow reads did not start: %d airlock sessions, %d in a transaction", total, inTx)
	}

	t0 := time.Now()
	w.signal(syscall.SIGTERM)
	code, ok := w.exit(5 * time.Second)
	if !ok {
		t.Fatalf("still running %v after SIGTERM", time.Since(t0))
	}
	if code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	t.Logf("exited in %v", time.Since(t0))
	answered := 0
	for _, ch := range answers {
		if len(ch) > 0 {
			answered++
		}
	}
	t.Logf("%d of %d in-flight calls were answered before exit", answered, inFlight)

	// The server's connections are gone, and with them their transactions
	// and locks; nothing was prepared.
	if !eventually(3*time.Second, func() bool { total, _ := airlockBackends(t, conn); return total == 0 }) {
		rows, _ := conn.Query(context.Background(), `SELECT pid, state, now() - xact_start, left(query, 80)
			FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'airlock'`)
		left, _ := pgx.CollectRows(rows, pgx.RowToMap)
		t.Fatalf("airlock sessions still in the database 3 s after exit: %v", left)
	}
	if n := count(t, url, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		WHERE a.application_name = 'airlock' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`); n != 0 {
		t.Errorf("%d locks held by airlock sessions", n)
	}
	if n := count(t, url, "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()"); n != 0 {
		t.Errorf("%d prepared transactions left", n)
	}
}

// TestFaultKillDuringApply: SIGKILL at different moments of a replay
// apply_migration_with_ticket. Every recorded change is complete (a
// reviewer can act on it); the target tables do not change until a
// reviewer commits; a complete change commits.
func TestFaultKillDuringApply(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	scope := applyScope(t, url, faultScope(t, `{"name": "fault-kill",
		"read": {"tables": {"public.orders": {}, "public.invoices": {}}},
		"write": {"mode": "replay", "tables": ["public.orders", "public.invoices"], "allow": ["update", "delete"],
			"ticket_pattern": "^[A-Z]+-[0-9]+$"}}`))
	conn := pgtest.Connect(t, url)
	const sql = "UPDATE orders SET status = 'cancelled' WHERE id BETWEEN 1 AND 2000; DELETE FROM invoices WHERE id BETWEEN 1 AND 100"
	args := map[string]any{"ticket": "OPS-81", "summary": "cancel early orders", "sql": sql}
	before := targetItems(pgtest.Fingerprint(t, url))

	// One undisturbed call measures how long an apply takes; the kills
	// spread over that time (and a little past it, into the recording).
	w := startWire(t, url, scope)
	t0 := time.Now()
	res := w.toolCall("apply_migration_with_ticket", args, 30*time.Second)
	took := time.Since(t0)
	complete, _ := structured(res)["change_id"].(string)
	if errorCode(res) != "" || complete == "" {
		t.Fatalf("apply: %v", res)
	}
	t.Logf("an apply takes %v", took)
	w.stdin.Close()
	if _, ok := w.exit(10 * time.Second); !ok {
		t.Fatal("still running after its stdin closed")
	}
	acknowledged := []string{complete}

	kills := []float64{0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.1}
	for _, frac := range kills {
		w := startWire(t, url, scope)
		ch := w.callTool("apply_migration_with_ticket", args)
		time.Sleep(time.Duration(frac * float64(took)))
		w.signal(syscall.SIGKILL)
		if _, ok := w.exit(5 * time.Second); !ok {
			t.Fatal("still running after SIGKILL")
		}
		if m := w.await(ch, 0); m != nil {
			if res, _ := m["result"].(map[string]any); res != nil {
				if id, _ := structured(res)["change_id"].(string); id != "" {
					acknowledged = append(acknowledged, id)
				}
			}
		}
		checkChanges(t, conn, sql)
		if d := diffItems(before, targetItems(pgtest.Fingerprint(t, url))); d != "" {
			t.Fatalf("killed at %.0f%% of an apply: the target tables changed:\n%s", frac*100, d)
		}
	}
	recorded := checkChanges(t, conn, sql)
	t.Logf("%d kills left %d recorded changes (%d acknowledged)", len(kills), recorded-1, len(acknowledged)-1)
	for _, id := range acknowledged {
		if n := count(t, url, fmt.Sprintf("SELECT count(*) FROM airlock.changes WHERE id = '%s' AND status = 'pending'", id)); n != 1 {
			t.Errorf("acknowledged change %s is not pending", id)
		}
	}
	// No transaction of a killed server lives on.
	if !eventually(10*time.Second, func() bool { total, _ := airlockBackends(t, conn); return total == 0 }) {
		t.Error("airlock sessions left after the kills")
	}

	// The reviewer commits the complete change; the target changes once.
	if out, code := reviewer(t, url, "commit", complete, "--reviewer", "alice"); code != 0 {
		t.Fatalf("commit (%d):\n%s", code, out)
	}
	if n := count(t, url, "SELECT count(*) FROM orders WHERE id BETWEEN 1 AND 2000 AND status = 'cancelled'"); n != 2000 {
		t.Errorf("after commit: %d orders cancelled, want 2000", n)
	}
	if n := count(t, url, "SELECT count(*) FROM invoices WHERE id BETWEEN 1 AND 100"); n != 0 {
		t.Errorf("after commit: %d invoices left, want 0", n)
	}
}

// checkChanges fails the test unless every row of airlock.changes is a
// complete pending replay of sql, and returns how many there are.
func checkChanges(t *testing.T, conn *pgx.Conn, sql string) int {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT id::text, ticket, summary, sql, sql_fingerprint, mode, gid IS NULL, status,
			jsonb_array_length(statements), jsonb_array_length(report->'statements'), effects->'rows_affected',
			fingerprint, expires_at > created_at
		FROM airlock.changes ORDER BY created_at`)
	must(t, err, "list changes")
	type change struct {
		id, ticket, summary, sql, sqlFP, mode string
		noGID                                 bool
		status                                string
		statements, reported                  int
		rowsAffected                          []int64
		fingerprint                           string
		expires                               bool
	}
	n := 0
	for rows.Next() {
		var c change
		must(t, rows.Scan(&c.id, &c.ticket, &c.summary, &c.sql, &c.sqlFP, &c.mode, &c.noGID, &c.status,
			&c.statements, &c.reported, &c.rowsAffected, &c.fingerprint, &c.expires), "scan change")
		n++
		ok := c.ticket == "OPS-81" && c.summary == "cancel early orders" && c.sql == sql && c.sqlFP != "" &&
			c.mode == "replay" && c.noGID && c.status == "pending" && c.statements == 2 && c.reported == 2 &&
			len(c.rowsAffected) == 2 && c.rowsAffected[0] == 2000 && c.rowsAffected[1] == 100 &&
			c.fingerprint != "" && c.expires
		if !ok {
			t.Errorf("incomplete change recorded: %+v", c)
		}
	}
	must(t, rows.Err(), "list changes")
	return n
}

// targetItems keeps the fingerprint items of the tables' contents and
// definitions, and prepared transactions: the server-wide items (roles,
// databases) change with the tests running in parallel.
func targetItems(s pgtest.Snapshot) map[string]string {
	out := map[string]string{}
	for k, v := range s.Items {
		for _, p := range []string{"rows ", "column ", "relation ", "constraint ", "index ", "prepared_xact ", "sequence_value "} {
			if strings.HasPrefix(k, p) {
				out[k] = v
			}
		}
	}
	return out
}

func diffItems(a, b map[string]string) string {
	return pgtest.Snapshot{Items: a}.Diff(pgtest.Snapshot{Items: b})
}

// TestFaultConcurrentBurst: 64 tool calls at once on one stdio session.
// Each is answered with its own result, and the server's pool stays within
// its bound (serve's MaxConns, 8) throughout.
func TestFaultConcurrentBurst(t *testing.T) {
	t.Parallel()
	const calls, maxConns = 64, 8
	url := pgtest.NewDatabase(t)
	scope := faultScope(t, `{"name": "fault-burst", "read": {"tables": {"public.orders": {}}}}`)
	c := startAirlock(t, url, scope)
	conn := pgtest.Connect(t, url)
	want := map[int]int{}
	rows, _ := conn.Query(context.Background(), "SELECT customer_id::int, count(*)::int FROM orders WHERE customer_id <= $1 GROUP BY 1", calls)
	var cust, n int
	_, err := pgx.ForEachRow(rows, []any{&cust, &n}, func() error { want[cust] = n; return nil })
	must(t, err, "expected counts")

	// A separate connection samples the server's sessions during the burst.
	peak := 0
	stop := make(chan struct{})
	sampled := make(chan struct{})
	sampler := pgtest.Connect(t, url)
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var total int
			if sampler.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND application_name = 'airlock'`).Scan(&total) == nil && total > peak {
				peak = total
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan string, calls)
	start := make(chan struct{})
	t0 := time.Now()
	for i := 1; i <= calls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tag := fmt.Sprintf("req-%d", i)
			args := map[string]any{"sql": "SELECT $1::text AS tag, count(*) AS n FROM orders WHERE customer_id = $2", "params": []any{tag, i}}
			if i%2 == 1 { // half as literals: distinct SQL texts, not one cached plan
				args = map[string]any{"sql": fmt.Sprintf("SELECT '%s' AS tag, count(*) AS n FROM orders WHERE customer_id = %d", tag, i)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = "query_readonly", args
			res, err := c.CallTool(ctx, req)
			if err != nil {
				errs <- fmt.Sprintf("%s: %v", tag, err)
				return
			}
			var out struct {
				Rows [][]json.RawMessage `json:"rows"`
			}
			b, _ := json.Marshal(res.StructuredContent)
			json.Unmarshal(b, &out)
			if res.IsError || len(out.Rows) != 1 || len(out.Rows[0]) != 2 {
				errs <- fmt.Sprintf("%s: %s", tag, resultText(res))
				return
			}
			gotTag, gotN := strings.Trim(string(out.Rows[0][0]), `"`), strings.Trim(string(out.Rows[0][1]), `"`)
			if gotTag != tag || gotN != strconv.Itoa(want[i]) {
				errs <- fmt.Sprintf("%s (want n=%d) answered with tag %s n=%s", tag, want[i], gotTag, gotN)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(stop)
	<-sampled
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	t.Logf("%d calls in %v; at most %d airlock sessions", calls, time.Since(t0), peak)
	if peak > maxConns {
		t.Errorf("%d airlock sessions during the burst; the pool's bound is %d", peak, maxConns)
	}
}

// TestFaultStatementTimeout: a statement that would run for hours is cut
// at the scope's statement_timeout with the timeout code, and the next call
// answers at once; results of billions of rows are capped at max_rows,
// quickly, with the server's memory flat.
func TestFaultStatementTimeout(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	scope := applyScope(t, url, faultScope(t, `{"name": "fault-timeout",
		"read": {"tables": {"public.orders": {}, "public.invoices": {}}, "statement_timeout_ms": 1000, "max_rows": 100}}`))
	w := startWire(t, url, scope)
	timed := func(sql string, extra map[string]any) (map[string]any, time.Duration) {
		t.Helper()
		args := map[string]any{"sql": sql}
		for k, v := range extra {
			args[k] = v
		}
		t0 := time.Now()
		res := w.toolCall("query_readonly", args, 20*time.Second)
		return res, time.Since(t0)
	}

	res, took := timed("SELECT count(*) FROM orders a, orders b, orders c", nil)
	if code := errorCode(res); code != "timeout" {
		t.Fatalf("endless count: code %q, want timeout: %v", code, res)
	}
	if took > 4*time.Second {
		t.Errorf("cut after %v; statement_timeout is 1 s", took)
	}
	res, took = timed("SELECT count(*) AS n FROM orders", nil)
	if errorCode(res) != "" || took > 2*time.Second {
		t.Fatalf("the call after a timeout (%v): %v", took, res)
	}
	if rows, _ := structured(res)["rows"].([]any); len(rows) != 1 || fmt.Sprint(rows[0].([]any)[0]) != "5000" {
		t.Fatalf("the call after a timeout: %v", structured(res))
	}

	for _, c := range []struct {
		sql   string
		extra map[string]any
	}{
		// 125 billion rows.
		{"SELECT a.id AS a, b.id AS b, c.id AS c FROM orders a, orders b, orders c", nil},
		{"SELECT a.id AS a, b.id AS b, c.id AS c FROM orders a, orders b, orders c", map[string]any{"max_rows": 100000}},
		// 25 million rows of 32 kB each.
		{"SELECT a.notes, repeat(md5(b.id::text), 1000) AS wide FROM orders a, invoices b", nil},
		// Ten billion rows from a set-returning function in the select
		// list, which PostgreSQL produces one at a time.
		{"SELECT generate_series(1, 10000000000) AS g", nil},
	} {
		res, took := timed(c.sql, c.extra)
		s := structured(res)
		rows, _ := s["rows"].([]any)
		if errorCode(res) != "" || s["truncated"] != true || len(rows) == 0 || len(rows) > 100 {
			t.Errorf("%s: want at most 100 rows and truncated: %.300v", c.sql, res)
			continue
		}
		if reason, _ := s["truncated_reason"].(string); !strings.Contains(reason, "count(*)") && !strings.Contains(reason, "aggregate") {
			t.Errorf("%s: the cut does not suggest an aggregate: %q", c.sql, reason)
		}
		if took > 2*time.Second {
			t.Errorf("%s: %v for a capped result", c.sql, took)
		}
		t.Logf("%s: %d rows in %v", c.sql, len(rows), took)
	}
	// In FROM, PostgreSQL materializes a set-returning function's whole
	// result before the LIMIT sees a row: the statement_timeout is what
	// ends it, cleanly, and the next call is prompt.
	res, took = timed("SELECT g FROM generate_series(1, 10000000000) AS g", nil)
	if code := errorCode(res); code != "timeout" && code != "" {
		t.Errorf("generate_series in FROM: %v", res)
	}
	t.Logf("generate_series in FROM: code %q after %v", errorCode(res), took)
	if res, took = timed("SELECT count(*) AS n FROM orders", nil); errorCode(res) != "" || took > 2*time.Second {
		t.Fatalf("the call after generate_series (%v): %v", took, res)
	}

	rss, err := peakRSS(w.cmd.Process.Pid)
	must(t, err, "peak RSS")
	t.Logf("peak RSS %d MiB", rss/1024)
	if rss > 150<<10 {
		t.Errorf("peak RSS %d MiB; want under 150 MiB", rss/1024)
	}
}

// TestFaultRawWire extends TestRawWire: malformed and mistyped messages,
// unknown methods, a 64 MiB frame and a flood of 1200 requests written at
// once. Every request is answered (an error or a result, matched by id),
// the server's memory stays bounded, and a normal call works afterwards.
func TestFaultRawWire(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	scope := applyScope(t, url, faultScope(t, `{"name": "fault-wire", "read": {"tables": {"public.orders": {}}}}`))
	w := startWire(t, url, scope)

	// answer sends line and waits for the answer to id, or for a new
	// answer with a null id (JSON-RPC's answer when it cannot tell the id).
	answer := func(line string, id any) map[string]any {
		t.Helper()
		var ch chan map[string]any
		if id != nil {
			ch = w.expect(id)
		}
		n := len(w.nullIDAnswers())
		w.send(line)
		var m map[string]any
		ok := eventually(20*time.Second, func() bool {
			if ch != nil && len(ch) > 0 {
				m = <-ch
				return true
			}
			if null := w.nullIDAnswers(); len(null) > n {
				m = null[n]
				return true
			}
			return false
		})
		if !ok {
			t.Fatalf("no answer to %.200q", line)
		}
		if id != nil && m["id"] == nil {
			t.Logf("%.80q (id %v) answered with a null id: %v", line, id, m)
		}
		return m
	}
	num := func(n int) json.Number { return json.Number(strconv.Itoa(n)) }
	for _, c := range []struct {
		line string
		id   any // nil: answered with a null id
		// result: a tool result is fine if it is an isError one
		result bool
	}{
		// Malformed JSON.
		{`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{`, nil, false},
		{`not json at all`, nil, false},
		{`{"jsonrpc":"2.0","id":3,"method":"tools/call"}}}`, nil, false},
		{"\x00\x01\x02", nil, false},
		// Not a request object.
		{`[]`, nil, false},
		{`123`, nil, false},
		{`"ping"`, nil, false},
		// Wrong types.
		{`{"jsonrpc":"2.0","id":10,"method":"tools/call","params":"x"}`, num(10), false},
		{`{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":7}}`, num(11), false},
		{`{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"query_readonly","arguments":"SELECT 1"}}`, num(12), true},
		{`{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"query_readonly","arguments":{"sql":["SELECT 1"]}}}`, num(13), true},
		{`{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"query_readonly","arguments":{"sql":"SELECT 1","params":[{"a":1}]}}}`, num(14), true},
		{`{"jsonrpc":"2.0","id":15,"method":"tools/call","params":{"name":"query_readonly","arguments":{"sql":"SELECT 1","max_rows":"all"}}}`, num(15), true},
		{`{"jsonrpc":"2.0","id":"s-16","method":"tools/list","params":[]}`, "s-16", true},
		{`{"jsonrpc":"2.0","id":17,"method":5}`, num(17), false},
		// Unknown methods and tools.
		{`{"jsonrpc":"2.0","id":20,"method":"no/such/method"}`, num(20), false},
		{`{"jsonrpc":"2.0","id":21,"method":"tools/execute_sql","params":{"sql":"DROP TABLE orders"}}`, num(21), false},
		{`{"jsonrpc":"2.0","id":22,"method":"tools/call","params":{"name":"execute_sql","arguments":{"sql":"DROP TABLE orders"}}}`, num(22), true},
	} {
		m := answer(c.line, c.id)
		res, _ := m["result"].(map[string]any)
		switch {
		case m["error"] != nil:
		case res != nil && c.result && (res["isError"] == true || res["tools"] != nil):
		default:
			t.Errorf("%.80q: want an error, got %v", c.line, m)
		}
	}
	if n := count(t, url, "SELECT count(*) FROM orders"); n != 5000 {
		t.Fatalf("orders has %d rows", n)
	}

	// A 64 MiB message, id first as clients write it: refused with its
	// id, without the server holding it in memory. Then the same with the
	// id last, and a 64 MiB line that is not JSON at all.
	big := strings.Repeat("x", 64<<20)
	rssBefore, err := peakRSS(w.cmd.Process.Pid)
	must(t, err, "peak RSS")
	for _, c := range []struct {
		line string
		id   any
	}{
		{`{"jsonrpc":"2.0","id":4242,"method":"tools/call","params":{"name":"query_readonly","arguments":{"sql":"SELECT '` + big + `'"}}}`, num(4242)},
		{`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"query_readonly","arguments":{"sql":"SELECT '` + big + `'"}},"id":4243}`, nil},
		{big, nil},
	} {
		t0 := time.Now()
		m := answer(c.line, c.id)
		if m["error"] == nil {
			t.Errorf("64 MiB message: %.300v", m)
		}
		if c.id != nil && fmt.Sprint(m["id"]) != fmt.Sprint(c.id) {
			t.Errorf("64 MiB message with id %v answered with id %v", c.id, m["id"])
		}
		t.Logf("64 MiB message answered in %v: %.200v", time.Since(t0), m["error"])
	}
	big = ""
	rss, err := peakRSS(w.cmd.Process.Pid)
	must(t, err, "peak RSS")
	t.Logf("peak RSS %d MiB before the 64 MiB messages, %d MiB after", rssBefore/1024, rss/1024)
	if rss-rssBefore > 48<<10 {
		t.Errorf("64 MiB messages grew the peak RSS by %d MiB", (rss-rssBefore)/1024)
	}

	// A flood: 1200 requests in one write, a mix of tool calls (each
	// selecting its own number), pings, malformed lines and unknown
	// methods. Each request is answered once, with its own answer.
	const flood = 1200
	var lines strings.Builder
	chans := map[int]chan map[string]any{}
	malformed := 0
	for i := 0; i < flood; i++ {
		id := 100000 + i
		switch i % 4 {
		case 0:
			fmt.Fprintf(&lines, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"query_readonly","arguments":{"sql":"SELECT %d AS n"}}}`+"\n", id, id)
		case 1:
			fmt.Fprintf(&lines, `{"jsonrpc":"2.0","id":%d,"method":"ping"}`+"\n", id)
		case 2:
			fmt.Fprintf(&lines, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":`+"\n", id)
			malformed++
			continue
		case 3:
			fmt.Fprintf(&lines, `{"jsonrpc":"2.0","id":%d,"method":"no/such/method/%d"}`+"\n", id, i)
		}
		chans[id] = w.expect(num(id))
	}
	nullBefore := len(w.nullIDAnswers())
	t0 := time.Now()
	w.send(strings.TrimSuffix(lines.String(), "\n"))
	deadline := time.After(90 * time.Second)
	for id, ch := range chans {
		var m map[string]any
		select {
		case m = <-ch:
		case <-deadline:
			t.Fatalf("flood: no answer to id %d after %v", id, time.Since(t0))
		}
		switch (id - 100000) % 4 {
		case 0:
			res, _ := m["result"].(map[string]any)
			rows, _ := structured(res)["rows"].([]any)
			if len(rows) != 1 || fmt.Sprint(rows[0].([]any)[0]) != strconv.Itoa(id) {
				t.Errorf("flood: id %d answered with %.300v", id, m)
			}
		case 1:
			if m["result"] == nil {
				t.Errorf("flood: ping %d answered with %v", id, m)
			}
		case 3:
			if m["error"] == nil {
				t.Errorf("flood: unknown method %d answered with %v", id, m)
			}
		}
	}
	if !eventually(10*time.Second, func() bool { return len(w.nullIDAnswers())-nullBefore >= malformed }) {
		t.Errorf("flood: %d of %d malformed lines answered", len(w.nullIDAnswers())-nullBefore, malformed)
	}
	t.Logf("flood of %d answered in %v", flood, time.Since(t0))

	res := w.toolCall("query_readonly", map[string]any{"sql": "SELECT count(*) AS n FROM orders"}, 20*time.Second)
	if errorCode(res) != "" {
		t.Fatalf("server stopped serving: %v", res)
	}
}
