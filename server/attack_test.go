package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/scopes"
)

// TestAttacksContained sends the red-team list through query_readonly.
// Each attack passes only if it is refused, the database is identical
// afterwards (data, schema, roles, sequences, settings, prepared
// transactions, large objects, advisory locks) and nothing out of scope
// appears in the response.
func TestAttacksContained(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	before := pgtest.Fingerprint(t, h.url)

	attacks := []struct{ name, sql string }{
		{"commit then drop", "COMMIT; DROP TABLE orders"},
		{"rollback then delete", "ROLLBACK; DELETE FROM orders"},
		{"statement after line comment", "SELECT 1 -- harmless\n; DROP TABLE orders"},
		{"statement after block comment", "/* SELECT 1 */ DELETE FROM orders"},
		{"leading comment then drop", "-- just a comment\nDROP TABLE orders"},
		{"dollar quoted then drop", "SELECT $$ ; $$; DROP TABLE orders"},
		{"drop hidden in dollar quote body", "SELECT $x$DROP TABLE orders$x$ FROM orders; DROP TABLE invoices"},
		{"writable cte", "WITH d AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM d"},
		{"writable cte update", "WITH u AS (UPDATE orders SET total = 0 RETURNING id) SELECT * FROM u"},
		{"select into", "SELECT id INTO stolen FROM orders"},
		{"for update", "SELECT id FROM orders FOR UPDATE"},
		{"for share", "SELECT id FROM orders FOR SHARE"},
		{"explain analyze delete", "EXPLAIN ANALYZE DELETE FROM orders"},
		{"explain analyze select", "EXPLAIN ANALYZE SELECT id FROM orders"},
		{"set role", "SET ROLE postgres"},
		{"reset role", "RESET ROLE"},
		{"set session authorization", "SET SESSION AUTHORIZATION postgres"},
		{"set transaction read write", "SET TRANSACTION READ WRITE"},
		{"set_config read only off", "SELECT set_config('transaction_read_only','off',false)"},
		{"security definer writer", "SELECT evil_write()"},
		{"security definer writer qualified", "SELECT public.evil_write()"},
		{"nextval", "SELECT nextval('ticket_seq')"},
		{"setval", "SELECT setval('ticket_seq', 1000)"},
		{"advisory lock", "SELECT pg_advisory_lock(42)"},
		{"terminate backend", "SELECT pg_terminate_backend(pg_backend_pid())"},
		{"read file", "SELECT pg_read_file('/etc/passwd')"},
		{"read file quoted", `SELECT "pg_read_file"('/etc/passwd')`},
		{"read file unicode escaped", `SELECT U&"\0070g_read_file"('/etc/passwd')`},
		{"read file in from", "SELECT * FROM pg_read_file('/etc/passwd') AS f(x)"},
		{"lo_import", "SELECT lo_import('/etc/passwd')"},
		{"copy to program", "COPY orders TO PROGRAM 'touch /tmp/airlock-pwned'"},
		{"do block", "DO $$ BEGIN DELETE FROM orders; END $$"},
		{"call procedure", "CALL evil_proc()"},
		{"create temp table", "CREATE TEMP TABLE t AS SELECT 1"},
		{"prepare transaction", "PREPARE TRANSACTION 'x'"},
		{"listen", "LISTEN evil"},
		{"notify", "NOTIFY evil, 'payload'"},
		{"vacuum", "VACUUM orders"},
		{"sleep", "SELECT pg_sleep(600)"},
		{"secrets directly", "SELECT token FROM secrets"},
		{"secrets qualified", "SELECT token FROM public.secrets"},
		{"secrets other schema", "SELECT key FROM internal.api_keys"},
		{"secrets through view", "SELECT * FROM secret_view"},
		{"secrets through function", "SELECT leak_secrets()"},
		{"secrets through function in from", "SELECT * FROM leak_secrets()"},
		{"secrets through pg_catalog", "SELECT relname FROM pg_catalog.pg_class"},
		{"secrets through information_schema", "SELECT table_name FROM information_schema.tables"},
		{"secrets through query_to_xml", "SELECT query_to_xml('select * from secrets', true, true, '')"},
		{"secrets in subquery", "SELECT id, (SELECT token FROM secrets LIMIT 1) FROM orders"},
		{"secrets via union", "SELECT name FROM customers UNION SELECT token FROM secrets"},
		{"secrets via cte", "WITH s AS (SELECT token FROM secrets) SELECT * FROM s"},
		{"denied column", "SELECT ssn FROM customers"},
		{"denied column in where", "SELECT id FROM customers WHERE ssn LIKE '900%'"},
		{"star on restricted table", "SELECT * FROM customers"},
		{"whole row", "SELECT c FROM customers c"},
		{"whole row to_json", "SELECT to_json(c) FROM customers c"},
		{"masked in where", "SELECT id FROM customers WHERE email LIKE 'customer1%'"},
		{"masked in order by", "SELECT id FROM customers ORDER BY email"},
		{"masked in expression", "SELECT lower(email) FROM customers"},
		{"masked in group by", "SELECT email, count(*) FROM customers GROUP BY email"},
		{"masked via alias order", "SELECT email AS e FROM customers ORDER BY e"},
		{"masked in join", "SELECT o.id FROM orders o JOIN customers c ON c.email = o.notes"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			res := h.query(a.sql)
			if !res.IsError {
				t.Fatalf("not refused: %s\n%s", a.sql, text(res))
			}
			assertNoLeak(t, res)
		})
	}
	if d := before.Diff(pgtest.Fingerprint(t, h.url)); d != "" {
		t.Fatalf("database changed by attacks:\n%s", d)
	}
	if _, err := h.pool.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}

// TestAttackHugeAndBadInput covers input that must never reach the parser.
func TestAttackHugeAndBadInput(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	before := pgtest.Fingerprint(t, h.url)
	huge := "SELECT 1 " + strings.Repeat("-- padding\n", (1<<20)/11)
	for name, sql := range map[string]string{
		"1 MiB of SQL": huge,
		"NUL byte":     "SELECT 1\x00; DROP TABLE orders",
		"empty":        "   ",
	} {
		t.Run(name, func(t *testing.T) {
			res := h.query(sql)
			if !res.IsError {
				t.Fatalf("not refused")
			}
			assertNoLeak(t, res)
		})
	}
	// The server answers the next call normally.
	if res := h.query("SELECT count(*) FROM orders"); res.IsError {
		t.Fatalf("server stopped serving: %s", text(res))
	}
	if d := before.Diff(pgtest.Fingerprint(t, h.url)); d != "" {
		t.Fatalf("database changed:\n%s", d)
	}
}

// TestAttackTimeoutAndCap: a query that would run forever is cut by
// statement_timeout and the next call is answered at once; a cross join of
// billions of rows comes back capped without running to completion.
func TestAttackTimeoutAndCap(t *testing.T) {
	h := newHarness(t, "support.json", func(s *scopes.Scope) { s.Read.StatementTimeoutMS = 500 })
	before := pgtest.Fingerprint(t, h.url)

	start := time.Now()
	res := h.query("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r")
	if !res.IsError || !strings.Contains(text(res), "timeout") {
		t.Fatalf("long query not cut by the timeout: %s", text(res))
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("timeout took %v", el)
	}
	start = time.Now()
	if res := h.query("SELECT 1 AS one"); res.IsError {
		t.Fatalf("next call failed: %s", text(res))
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("next call took %v", el)
	}

	res = h.query("SELECT a.x, b.x FROM generate_series(1, 100000) a(x), generate_series(1, 100000) b(x)")
	if res.IsError {
		t.Fatalf("cross join: %s", text(res))
	}
	var out struct {
		RowCount  int  `json:"row_count"`
		Truncated bool `json:"truncated"`
	}
	structured(t, res, &out)
	if out.RowCount != 500 || !out.Truncated {
		t.Fatalf("cross join not capped: %+v", out)
	}
	if d := before.Diff(pgtest.Fingerprint(t, h.url)); d != "" {
		t.Fatalf("database changed:\n%s", d)
	}
}
