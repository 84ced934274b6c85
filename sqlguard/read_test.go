package sqlguard

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// readTestPolicy is modelled on the seed database: customers is restricted
// (ssn denied, email and phone masked), orders and invoices are fully
// readable, and secrets, secret_view, internal.api_keys and the catalogs
// are out of scope.
func readTestPolicy() *Policy {
	allowed := func(names ...string) []Column {
		cols := make([]Column, len(names))
		for i, n := range names {
			cols[i] = Column{Name: n, Access: Allowed}
		}
		return cols
	}
	customers := &Table{Schema: "public", Name: "customers", Restricted: true, Columns: allowed(
		"id", "tenant_id", "name", "email", "phone", "ssn", "plan", "balance", "signed_up_at",
		"last_login", "is_active", "metadata", "avatar", "big_counter")}
	for i := range customers.Columns {
		switch customers.Columns[i].Name {
		case "ssn":
			customers.Columns[i].Access = Denied
		case "email", "phone":
			customers.Columns[i].Access = Masked
		}
	}
	return &Policy{
		Tables: map[string]*Table{
			"public.customers": customers,
			"public.orders":    {Schema: "public", Name: "orders", Columns: allowed("id", "customer_id", "status", "total", "created_at", "notes")},
			"public.invoices":  {Schema: "public", Name: "invoices", Columns: allowed("id", "order_id", "amount", "issued_on", "paid")},
		},
		Functions: readTestFunctions(),
	}
}

// readTestFunctions is a small, realistic slice of pg_proc. Several
// dangerous functions are marked stable here on purpose, to show the
// denylist wins over volatility.
func readTestFunctions() FunctionRule {
	return FunctionRule{
		Volatility: map[string]byte{
			"lower": 'i', "upper": 'i', "count": 'i', "sum": 'i', "max": 'i', "min": 'i', "avg": 'i',
			"length": 'i', "string_agg": 'i', "row_number": 'i', "rank": 'i', "generate_series": 'i',
			"unnest": 'i', "extract": 'i', "timezone": 'i', "similar_to_escape": 'i', "json_to_record": 's',
			"now": 's', "to_json": 's', "row_to_json": 's', "jsonb_agg": 's', "date_trunc": 's', "to_char": 's',
			"has_table_privilege": 's', "percentile_cont": 'i',
			"pg_read_file": 'v', "pg_read_binary_file": 'v', "pg_ls_dir": 'v', "nextval": 'v', "setval": 'v',
			"currval": 'v', "pg_sleep": 'v', "set_config": 'v', "pg_advisory_lock": 'v', "pg_try_advisory_lock": 'v',
			"query_to_xml": 's', "table_to_xml": 's', "pg_stat_get_live_tuples": 's', "pg_get_viewdef": 's',
			"current_setting": 's', "lo_import": 'v', "lo_export": 'v', "pg_terminate_backend": 'v',
			"pg_cancel_backend": 'v', "random": 'v', "setseed": 'v', "txid_current": 's', "pg_notify": 'v',
			"ts_stat": 'v', "pg_reload_conf": 'v', "obj_description": 's', "pg_logical_emit_message": 'v',
			"pg_stat_reset": 'v', "xpath": 'i', "format_type": 's', "regclassout": 's', "regclassin": 's',
			"int4in": 'i', "row_security_active": 's', "pg_get_userbyid": 's', "pg_typeof": 's',
			"to_tsvector": 's', "ts_headline": 's',
		},
		CatalogLookup: readTestLookup(),
		Allowed:       map[string]bool{"util.slugify": true},
	}
}

func TestCheckReadAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql     string
		maxRows int
		want    string
		masked  []int
		tables  []string
	}{
		// Row cap: added, lowered, kept, wrapped.
		{"SELECT 1", 100, "SELECT 1 LIMIT 101", nil, nil},
		{"SELECT 1;", 100, "SELECT 1 LIMIT 101", nil, nil},
		{"/* why */ SELECT 1 -- ; DROP TABLE orders", 100, "SELECT 1 LIMIT 101", nil, nil},
		{"select id from orders", 0, "SELECT id FROM public.orders", nil, []string{"public.orders"}},
		{"SELECT * FROM orders LIMIT 1000", 100, "SELECT * FROM public.orders LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT * FROM orders ORDER BY id LIMIT 5 OFFSET 10", 100, "SELECT * FROM public.orders ORDER BY id LIMIT 5 OFFSET 10", nil, []string{"public.orders"}},
		{"SELECT 1 FETCH FIRST ROW ONLY", 100, "SELECT 1 LIMIT 1", nil, nil},
		{"SELECT * FROM orders LIMIT ALL", 100, "SELECT * FROM (SELECT * FROM public.orders LIMIT ALL) airlock_capped LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT * FROM orders LIMIT NULL", 100, "SELECT * FROM (SELECT * FROM public.orders LIMIT ALL) airlock_capped LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT count(*) FROM orders LIMIT $1 OFFSET $2", 100, "SELECT * FROM (SELECT count(*) FROM public.orders LIMIT $1 OFFSET $2) airlock_capped LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT id FROM orders LIMIT 2 + 3", 100, "SELECT * FROM (SELECT id FROM public.orders LIMIT 2 + 3) airlock_capped LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT * FROM orders ORDER BY total FETCH FIRST 5 ROWS WITH TIES", 100, "SELECT * FROM (SELECT * FROM public.orders ORDER BY total FETCH FIRST 5 ROWS WITH TIES) airlock_capped LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT 1 UNION ALL SELECT 2", 100, "SELECT 1 UNION ALL SELECT 2 LIMIT 101", nil, nil},
		{"(SELECT 1 ORDER BY 1 LIMIT 1) UNION (SELECT 2) LIMIT 3", 100, "(SELECT 1 ORDER BY 1 LIMIT 1) UNION SELECT 2 LIMIT 3", nil, nil},
		{"VALUES (1), (2)", 100, "VALUES (1), (2) LIMIT 101", nil, nil},
		{"SELECT * FROM (SELECT 1 AS a) AS airlock_capped LIMIT 5", 100, "SELECT * FROM (SELECT 1 AS a) airlock_capped LIMIT 5", nil, nil},
		{"SELECT email FROM customers LIMIT $1", 10, "SELECT * FROM (SELECT email FROM public.customers LIMIT $1) airlock_capped LIMIT 11", []int{0}, []string{"public.customers"}},

		// Tables are qualified; CTE names are left alone.
		{"SELECT o.id, i.amount FROM orders o JOIN invoices i ON i.order_id = o.id", 100, "SELECT o.id, i.amount FROM public.orders o JOIN public.invoices i ON i.order_id = o.id LIMIT 101", nil, []string{"public.invoices", "public.orders"}},
		{"SELECT public.orders.id FROM orders", 100, "SELECT public.orders.id FROM public.orders LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT id FROM ONLY public.orders", 100, "SELECT id FROM ONLY public.orders LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT id FROM orders WHERE EXISTS (SELECT 1 FROM invoices WHERE invoices.order_id = orders.id)", 100, "SELECT id FROM public.orders WHERE EXISTS (SELECT 1 FROM public.invoices WHERE invoices.order_id = orders.id) LIMIT 101", nil, []string{"public.invoices", "public.orders"}},
		{"WITH t AS (SELECT customer_id, sum(total) s FROM orders GROUP BY 1) SELECT c.name, t.s FROM t JOIN customers c ON c.id = t.customer_id", 100,
			"WITH t AS (SELECT customer_id, sum(total) AS s FROM public.orders GROUP BY 1) SELECT c.name, t.s FROM t JOIN public.customers c ON c.id = t.customer_id LIMIT 101", nil, []string{"public.customers", "public.orders"}},
		{"WITH customers AS (SELECT 1 AS id) SELECT * FROM customers", 100, "WITH customers AS (SELECT 1 AS id) SELECT * FROM customers LIMIT 101", nil, nil},
		{"WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a", 100, "WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a LIMIT 101", nil, nil},
		{"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT i FROM n", 100, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT i FROM n LIMIT 101", nil, nil},
		{"WITH x AS (SELECT id FROM orders) SELECT * FROM x UNION SELECT id FROM x", 100, "WITH x AS (SELECT id FROM public.orders) SELECT * FROM x UNION SELECT id FROM x LIMIT 101", nil, []string{"public.orders"}},

		// Expressions, functions, subqueries, LATERAL, windows.
		{"SELECT o.id, (SELECT max(i.amount) FROM invoices i WHERE i.order_id = o.id) FROM orders o", 100, "SELECT o.id, (SELECT max(i.amount) FROM public.invoices i WHERE i.order_id = o.id) FROM public.orders o LIMIT 101", nil, []string{"public.invoices", "public.orders"}},
		{"SELECT * FROM orders o, LATERAL (SELECT i.amount FROM invoices i WHERE i.order_id = o.id LIMIT 1) x", 100, "SELECT * FROM public.orders o, LATERAL (SELECT i.amount FROM public.invoices i WHERE i.order_id = o.id LIMIT 1) x LIMIT 101", nil, []string{"public.invoices", "public.orders"}},
		{"SELECT status, count(*), sum(total) FILTER (WHERE total > 10) FROM orders GROUP BY ROLLUP (status) HAVING count(*) > 1", 100, "SELECT status, count(*), sum(total) FILTER (WHERE total > 10) FROM public.orders GROUP BY ROLLUP (status) HAVING count(*) > 1 LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT id, row_number() OVER w, rank() OVER (PARTITION BY status ORDER BY total DESC) FROM orders WINDOW w AS (ORDER BY id)", 100, "SELECT id, row_number() OVER w, rank() OVER (PARTITION BY status ORDER BY total DESC) FROM public.orders WINDOW w AS (ORDER BY id) LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT CASE WHEN total > 10 THEN 'big' ELSE 'small' END, coalesce(notes, ''), greatest(1, 2), nullif(status, 'x') FROM orders", 100, "SELECT CASE WHEN total > 10 THEN 'big' ELSE 'small' END, COALESCE(notes, ''), GREATEST(1, 2), NULLIF(status, 'x') FROM public.orders LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT id FROM orders WHERE status IN ('a', 'b') AND total BETWEEN 1 AND 2 AND notes LIKE 'x%' AND notes IS NOT NULL", 100, "SELECT id FROM public.orders WHERE status IN ('a', 'b') AND total BETWEEN 1 AND 2 AND notes LIKE 'x%' AND notes IS NOT NULL LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT id FROM orders WHERE id = ANY ($1::int[]) AND (id, customer_id) = (1, 2) AND 'a' SIMILAR TO 'b'", 100, "SELECT id FROM public.orders WHERE id = ANY($1::int[]) AND (id, customer_id) = (1, 2) AND 'a' SIMILAR TO 'b' LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT '1'::int, CAST('2' AS bigint), '1 day'::interval, '{}'::text[], now()::date, 'x'::varchar(10)", 100, "SELECT '1'::int, '2'::bigint, '1 day'::interval, '{}'::text[], now()::date, 'x'::varchar(10) LIMIT 101", nil, nil},
		{"SELECT 'a' COLLATE \"C\", 1 OPERATOR(pg_catalog.+) 1", 100, "SELECT 'a' COLLATE \"C\", 1 OPERATOR(pg_catalog.+) 1 LIMIT 101", nil, nil},
		{"SELECT extract(year FROM created_at), now() AT TIME ZONE 'UTC' FROM orders", 100, "SELECT extract ('year' FROM created_at), now() AT TIME ZONE 'UTC' FROM public.orders LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT pg_catalog.lower(status), util.slugify(status) FROM orders", 100, "SELECT pg_catalog.lower(status), util.slugify(status) FROM public.orders LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders", 100, "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM public.orders LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT x FROM unnest(ARRAY[1,2]) WITH ORDINALITY AS u(x, n)", 100, "SELECT x FROM unnest(ARRAY[1, 2]) WITH ORDINALITY u(x, n) LIMIT 101", nil, nil},
		{"SELECT * FROM json_to_record('{}') AS x(a int, b text)", 100, "SELECT * FROM json_to_record('{}') x (a int, b text) LIMIT 101", nil, nil},
		{"SELECT current_user, current_date, random()", 100, "SELECT current_user, current_date, random() LIMIT 101", nil, nil},
		{"SELECT $$; DROP TABLE x$$", 100, "SELECT '; DROP TABLE x' LIMIT 101", nil, nil},
		{"SELECT metadata -> 'a' ->> 'b' FROM customers", 100, "SELECT (metadata -> 'a') ->> 'b' FROM public.customers LIMIT 101", nil, []string{"public.customers"}},
		// The forms of a name outside the catalog lookup class, and oid,
		// which is a number.
		{"SELECT to_tsvector(notes) FROM orders", 100, "SELECT to_tsvector(notes) FROM public.orders LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT ts_headline(notes, NULL) FROM orders", 100, "SELECT ts_headline(notes, NULL) FROM public.orders LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT 1259::oid, max(id::oid) FROM orders", 100, "SELECT 1259::oid, max(id::oid) FROM public.orders LIMIT 101", nil, []string{"public.orders"}},

		// Whole rows and * of unrestricted tables are fine.
		{"SELECT * FROM orders", 100, "SELECT * FROM public.orders LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT o, to_json(o), (o).status FROM orders o", 100, "SELECT o, to_json(o), (o).status FROM public.orders o LIMIT 101", nil, []string{"public.orders"}},
		{"SELECT o.* FROM orders o JOIN customers c ON c.id = o.customer_id", 100, "SELECT o.* FROM public.orders o JOIN public.customers c ON c.id = o.customer_id LIMIT 101", nil, []string{"public.customers", "public.orders"}},
		{"SELECT j.* FROM (orders o JOIN invoices i ON i.order_id = o.id) j", 100, "SELECT j.* FROM (public.orders o JOIN public.invoices i ON i.order_id = o.id ) j LIMIT 101", nil, []string{"public.invoices", "public.orders"}},
		{"SELECT a, b FROM orders AS o(a, b)", 100, "SELECT a, b FROM public.orders o(a, b) LIMIT 101", nil, []string{"public.orders"}},

		// Masked columns as plain outputs.
		{"SELECT id, name, email FROM customers WHERE id = $1", 100, "SELECT id, name, email FROM public.customers WHERE id = $1 LIMIT 101", []int{2}, []string{"public.customers"}},
		{"select c.email AS e, c.phone, c.name from customers c order by c.id limit 10", 100, "SELECT c.email AS e, c.phone, c.name FROM public.customers c ORDER BY c.id LIMIT 10", []int{0, 1}, []string{"public.customers"}},
		{"SELECT email, email FROM customers", 100, "SELECT email, email FROM public.customers LIMIT 101", []int{0, 1}, []string{"public.customers"}},
		{"SELECT DISTINCT ON (id) email FROM customers ORDER BY id", 100, "SELECT DISTINCT ON (id) email FROM public.customers ORDER BY id LIMIT 101", []int{0}, []string{"public.customers"}},
		{"WITH o AS (SELECT customer_id FROM orders) SELECT c.email FROM customers c JOIN o ON o.customer_id = c.id", 100, "WITH o AS (SELECT customer_id FROM public.orders) SELECT c.email FROM public.customers c JOIN o ON o.customer_id = c.id LIMIT 101", []int{0}, []string{"public.customers", "public.orders"}},
		{"SELECT j.email FROM (customers c JOIN orders o ON c.id = o.customer_id) j", 100, "SELECT j.email FROM (public.customers c JOIN public.orders o ON c.id = o.customer_id ) j LIMIT 101", []int{0}, []string{"public.customers", "public.orders"}},

		// Bare names that are not table columns: derived columns and output
		// names.
		{"SELECT name, n, column1 FROM customers c, (SELECT 1 AS n) s, (VALUES (2)) v", 100, "SELECT name, n, column1 FROM public.customers c, (SELECT 1 AS n) s, (VALUES (2)) v LIMIT 101", nil, []string{"public.customers"}},
		{"SELECT name, cnt FROM customers c, LATERAL (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) x(cnt)", 100, "SELECT name, cnt FROM public.customers c, LATERAL (SELECT count(*) FROM public.orders o WHERE o.customer_id = c.id) x(cnt) LIMIT 101", nil, []string{"public.customers", "public.orders"}},
		{"WITH t(x) AS (SELECT customer_id FROM orders) SELECT x, name FROM t JOIN customers c ON c.id = t.x", 100, "WITH t(x) AS (SELECT customer_id FROM public.orders) SELECT x, name FROM t JOIN public.customers c ON c.id = t.x LIMIT 101", nil, []string{"public.customers", "public.orders"}},
		{"SELECT g, name FROM customers, generate_series(1, 2) g", 100, "SELECT g, name FROM public.customers, generate_series(1, 2) g LIMIT 101", nil, []string{"public.customers"}},
		{"SELECT plan AS p, count(*) AS n FROM customers GROUP BY 1 ORDER BY p, n DESC", 100, "SELECT plan AS p, count(*) AS n FROM public.customers GROUP BY 1 ORDER BY p, n DESC LIMIT 101", nil, []string{"public.customers"}},
		{"SELECT DISTINCT ON (k) id AS k, name FROM customers", 100, "SELECT DISTINCT ON (k) id AS k, name FROM public.customers LIMIT 101", nil, []string{"public.customers"}},
		{"SELECT c.id FROM customers c WHERE c.id IN (SELECT customer_id AS k FROM orders UNION SELECT order_id FROM invoices ORDER BY k)", 100, "SELECT c.id FROM public.customers c WHERE c.id IN (SELECT customer_id AS k FROM public.orders UNION SELECT order_id FROM public.invoices ORDER BY k) LIMIT 101", nil, []string{"public.customers", "public.invoices", "public.orders"}},
		{"SELECT s.lower, s.coalesce FROM customers c, (SELECT lower(name), coalesce(plan, '') FROM customers) s WHERE lower IS NOT NULL", 100, "SELECT s.lower, s.\"coalesce\" FROM public.customers c, (SELECT lower(name), COALESCE(plan, '') FROM public.customers) s WHERE lower IS NOT NULL LIMIT 101", nil, []string{"public.customers"}},

		// EXPLAIN: never capped.
		{"EXPLAIN SELECT * FROM orders", 100, "EXPLAIN SELECT * FROM public.orders", nil, []string{"public.orders"}},
		{"EXPLAIN (ANALYZE false, VERBOSE, COSTS false, SETTINGS, BUFFERS false, SUMMARY false, FORMAT yaml, GENERIC_PLAN) SELECT * FROM orders WHERE id = $1", 100,
			"EXPLAIN (ANALYZE FALSE, VERBOSE, COSTS FALSE, SETTINGS, BUFFERS FALSE, SUMMARY FALSE, FORMAT yaml, GENERIC_PLAN) SELECT * FROM public.orders WHERE id = $1", nil, []string{"public.orders"}},
		{"EXPLAIN (ANALYZE off, FORMAT json) SELECT name FROM customers", 100, "EXPLAIN (ANALYZE OFF, FORMAT \"json\") SELECT name FROM public.customers", nil, []string{"public.customers"}},
	}
	p := readTestPolicy()
	for _, tt := range tests {
		plan, err := p.CheckRead(tt.sql, tt.maxRows)
		if err != nil {
			t.Errorf("CheckRead(%q): %v", tt.sql, err)
			continue
		}
		if plan.SQL != tt.want {
			t.Errorf("CheckRead(%q).SQL\n got %s\nwant %s", tt.sql, plan.SQL, tt.want)
		}
		if !slices.Equal(plan.MaskedOutputs, tt.masked) {
			t.Errorf("CheckRead(%q).MaskedOutputs = %v, want %v", tt.sql, plan.MaskedOutputs, tt.masked)
		}
		if !slices.Equal(plan.Tables, tt.tables) && (len(plan.Tables) > 0 || len(tt.tables) > 0) {
			t.Errorf("CheckRead(%q).Tables = %v, want %v", tt.sql, plan.Tables, tt.tables)
		}
		if wantExplain := strings.HasPrefix(tt.want, "EXPLAIN"); plan.Explain != wantExplain {
			t.Errorf("CheckRead(%q).Explain = %v", tt.sql, plan.Explain)
		}
		readAssertInvariants(t, p, tt.sql, plan)
	}
}

func TestCheckReadRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ sql, code string }{
		// Input and statement count.
		{"", "empty_statement"},
		{"  \n\t", "empty_statement"},
		{"-- only a comment", "empty_statement"},
		{";", "empty_statement"},
		{"SELECT 1\x00", "invalid_input"},
		{"SELECT '\xff'", "invalid_input"},
		{"SELEC 1", "syntax_error"},
		{"SELECT 'unterminated", "syntax_error"},
		{"COMMIT; DROP TABLE orders", "multiple_statements"},
		{"SELECT 1; DELETE FROM orders", "multiple_statements"},
		{"/* x */ ROLLBACK; DELETE FROM orders", "multiple_statements"},
		{"SELECT 1 --\n; DROP TABLE orders", "multiple_statements"},
		{"SELECT $$ $$; DROP TABLE x", "multiple_statements"},
		{"SELECT '--'; DROP TABLE films;", "multiple_statements"},

		// Statement kinds.
		{"DELETE FROM orders", "statement_not_allowed"},
		{"UPDATE orders SET status = 'x'", "statement_not_allowed"},
		{"INSERT INTO orders (id) VALUES (1)", "statement_not_allowed"},
		{"WITH x AS (SELECT 1) INSERT INTO orders (id) SELECT 1 FROM x", "statement_not_allowed"},
		{"MERGE INTO orders o USING invoices i ON o.id = i.order_id WHEN MATCHED THEN DELETE", "statement_not_allowed"},
		{"TRUNCATE orders", "statement_not_allowed"},
		{"DROP TABLE orders", "statement_not_allowed"},
		{"COMMIT", "statement_not_allowed"},
		{"BEGIN", "statement_not_allowed"},
		{"PREPARE TRANSACTION 'x'", "statement_not_allowed"},
		{"SET ROLE postgres", "statement_not_allowed"},
		{"RESET ROLE", "statement_not_allowed"},
		{"SET SESSION AUTHORIZATION postgres", "statement_not_allowed"},
		{"SET TRANSACTION READ WRITE", "statement_not_allowed"},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "statement_not_allowed"},
		{"SHOW data_directory", "statement_not_allowed"},
		{"COPY orders TO PROGRAM 'curl evil'", "statement_not_allowed"},
		{"COPY (SELECT 1) TO '/tmp/x'", "statement_not_allowed"},
		{"DO $$ BEGIN DELETE FROM orders; END $$", "statement_not_allowed"},
		{"CALL evil()", "statement_not_allowed"},
		{"CREATE TEMP TABLE t (a int)", "statement_not_allowed"},
		{"CREATE TABLE t AS SELECT 1", "statement_not_allowed"},
		{"LISTEN x", "statement_not_allowed"},
		{"NOTIFY x", "statement_not_allowed"},
		{"VACUUM orders", "statement_not_allowed"},
		{"ANALYZE orders", "statement_not_allowed"},
		{"LOCK TABLE orders", "statement_not_allowed"},
		{"CHECKPOINT", "statement_not_allowed"},
		{"PREPARE p AS SELECT 1", "statement_not_allowed"},
		{"EXECUTE p", "statement_not_allowed"},
		{"DECLARE c CURSOR FOR SELECT 1", "statement_not_allowed"},
		{"LOAD 'evil'", "statement_not_allowed"},
		{"ALTER SYSTEM SET fsync = off", "statement_not_allowed"},
		{"DISCARD ALL", "statement_not_allowed"},
		{"EXPLAIN DELETE FROM orders", "statement_not_allowed"},
		{"EXPLAIN CREATE TABLE t AS SELECT 1", "statement_not_allowed"},

		// EXPLAIN options.
		{"EXPLAIN ANALYZE SELECT 1", "explain_option_not_allowed"},
		{"EXPLAIN ANALYZE DELETE FROM orders", "explain_option_not_allowed"},
		{"EXPLAIN (ANALYZE) SELECT 1", "explain_option_not_allowed"},
		{"EXPLAIN (ANALYZE true) SELECT 1", "explain_option_not_allowed"},
		{"EXPLAIN (ANALYZE on) SELECT 1", "explain_option_not_allowed"},
		{"EXPLAIN (ANALYZE 1) SELECT 1", "explain_option_not_allowed"},
		{"EXPLAIN (ANALYZE false, ANALYZE true) SELECT 1", "explain_option_not_allowed"},
		{"EXPLAIN (BUFFERS) SELECT 1", "explain_option_not_allowed"},
		{"EXPLAIN (TIMING false) SELECT 1", "explain_option_not_allowed"},
		{"EXPLAIN (WAL) SELECT 1", "explain_option_not_allowed"},
		{"EXPLAIN (SERIALIZE) SELECT 1", "explain_option_not_allowed"},
		{"EXPLAIN (FORMAT html) SELECT 1", "explain_option_not_allowed"},

		// Clauses that write or lock.
		{"SELECT * INTO t FROM orders", "select_into"},
		{"SELECT * INTO TEMP t FROM orders", "select_into"},
		{"SELECT * FROM orders FOR UPDATE", "locking_clause"},
		{"SELECT * FROM orders FOR NO KEY UPDATE", "locking_clause"},
		{"SELECT * FROM orders FOR SHARE", "locking_clause"},
		{"SELECT * FROM orders FOR KEY SHARE SKIP LOCKED", "locking_clause"},
		{"SELECT * FROM (SELECT * FROM orders FOR UPDATE) s", "locking_clause"},
		{"WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", "data_modifying_cte"},
		{"WITH u AS (UPDATE orders SET status = 'x' RETURNING id) SELECT 1", "data_modifying_cte"},
		{"SELECT * FROM orders WHERE id IN (WITH i AS (INSERT INTO orders (id) VALUES (1) RETURNING id) SELECT id FROM i)", "data_modifying_cte"},

		// Syntax the guard does not walk.
		{"SELECT xmlparse(document '<a/>')", "unsupported_syntax"},
		{"SELECT xmlelement(name a)", "unsupported_syntax"},
		{"SELECT XMLSERIALIZE(CONTENT 'a' AS text)", "unsupported_syntax"},
		{"SELECT * FROM XMLTABLE('/a' PASSING '<a/>' COLUMNS x int)", "unsupported_syntax"},
		{"SELECT * FROM JSON_TABLE('[]', '$[*]' COLUMNS (a int PATH '$'))", "unsupported_syntax"},
		{"SELECT JSON_OBJECT('a': 1)", "unsupported_syntax"},
		{"SELECT JSON_VALUE('{}', '$.a')", "unsupported_syntax"},
		{"SELECT id FROM orders TABLESAMPLE SYSTEM (10)", "unsupported_syntax"},
		{"SELECT 1 FROM orders o JOIN invoices i USING (id) AS j", "unsupported_syntax"},
		{"WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) CYCLE n SET c USING p SELECT * FROM t", "unsupported_syntax"},

		// Tables out of scope.
		{"SELECT * FROM secrets", "table_not_in_scope"},
		{"SELECT * FROM public.secret_view", "table_not_in_scope"},
		{"SELECT * FROM internal.api_keys", "table_not_in_scope"},
		{"SELECT * FROM pg_catalog.pg_class", "table_not_in_scope"},
		{"SELECT * FROM pg_class", "table_not_in_scope"},
		{"SELECT * FROM pg_authid", "table_not_in_scope"},
		{"SELECT * FROM information_schema.tables", "table_not_in_scope"},
		{"SELECT * FROM mydb.public.orders", "table_not_in_scope"},
		{"SELECT * FROM \"Orders\"", "table_not_in_scope"},
		{"SELECT o.id FROM orders o JOIN secrets s ON true", "table_not_in_scope"},
		{"SELECT (SELECT count(*) FROM secrets)", "table_not_in_scope"},
		{"SELECT * FROM orders o, LATERAL (SELECT * FROM secrets) s", "table_not_in_scope"},
		{"WITH s AS (SELECT * FROM secrets) SELECT 1", "table_not_in_scope"},
		{"WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets", "table_not_in_scope"},
		{"WITH a AS (SELECT * FROM secrets), secrets AS (SELECT 1) SELECT * FROM a", "table_not_in_scope"},
		{"SELECT * FROM orders UNION SELECT * FROM secrets", "table_not_in_scope"},
		{"EXPLAIN SELECT * FROM secrets", "table_not_in_scope"},

		// Functions.
		{"select evil_write()", "function_not_allowed"},
		{"SELECT public.evil_write()", "function_not_allowed"},
		{"SELECT pg_temp.evil()", "function_not_allowed"},
		{"SELECT mydb.public.evil()", "function_not_allowed"},
		{"SELECT leak_secrets()", "function_not_allowed"},
		{"SELECT * FROM leak_secrets()", "function_not_allowed"},
		{"SELECT pg_read_file('/etc/passwd')", "function_not_allowed"},
		{"SELECT \"pg_read_file\"('/etc/passwd')", "function_not_allowed"},
		{"SELECT U&\"\\0070g_read_file\"('/etc/passwd')", "function_not_allowed"},
		{"SELECT PG_CATALOG.PG_READ_FILE('/etc/passwd')", "function_not_allowed"},
		{"SELECT \"PG_READ_FILE\"('/etc/passwd')", "function_not_allowed"},
		{"SELECT * FROM pg_read_file('/etc/passwd')", "function_not_allowed"},
		{"SELECT * FROM ROWS FROM (generate_series(1, 2), pg_read_binary_file('/etc/passwd'))", "function_not_allowed"},
		{"SELECT * FROM pg_ls_dir('.')", "function_not_allowed"},
		{"SELECT nextval('orders_id_seq')", "function_not_allowed"},
		{"SELECT setval('orders_id_seq', 1)", "function_not_allowed"},
		{"SELECT pg_advisory_lock(1)", "function_not_allowed"},
		{"SELECT pg_try_advisory_lock(1)", "function_not_allowed"},
		{"SELECT pg_terminate_backend(1)", "function_not_allowed"},
		{"SELECT pg_cancel_backend(1)", "function_not_allowed"},
		{"SELECT lo_import('/etc/passwd')", "function_not_allowed"},
		{"SELECT lo_export(1, '/tmp/x')", "function_not_allowed"},
		{"SELECT pg_sleep(10)", "function_not_allowed"},
		{"SELECT set_config('transaction_read_only', 'off', false)", "function_not_allowed"},
		{"SELECT current_setting('data_directory')", "function_not_allowed"},
		{"SELECT pg_reload_conf()", "function_not_allowed"},
		{"SELECT pg_stat_reset()", "function_not_allowed"},
		{"SELECT pg_logical_emit_message(true, 'x', 'y')", "function_not_allowed"},
		{"SELECT txid_current()", "function_not_allowed"},
		{"SELECT pg_notify('a', 'b')", "function_not_allowed"},
		{"SELECT dblink_exec('host=evil', 'DROP TABLE orders')", "function_not_allowed"},
		{"SELECT query_to_xml('select * from secrets', true, true, '')", "function_not_allowed"},
		{"SELECT table_to_xml('secrets', true, true, '')", "function_not_allowed"},
		{"SELECT ts_stat('select * from secrets')", "function_not_allowed"},
		{"SELECT pg_get_viewdef('secret_view')", "function_not_allowed"},
		{"SELECT pg_stat_get_live_tuples(1)", "function_not_allowed"},
		{"SELECT obj_description(1)", "function_not_allowed"},
		{"SELECT xpath('/a', '<a/>')", "function_not_allowed"},
		{"SELECT setseed(0.5)", "function_not_allowed"},
		{"SELECT slugify(status) FROM orders", "function_not_allowed"},
		{"SELECT id FROM orders WHERE pg_sleep(1) IS NULL", "function_not_allowed"},
		{"SELECT id FROM orders ORDER BY pg_sleep(1)", "function_not_allowed"},
		{"SELECT count(*) FILTER (WHERE pg_sleep(1) IS NULL) FROM orders", "function_not_allowed"},
		{"SELECT row_number() OVER (ORDER BY pg_sleep(1)) FROM orders", "function_not_allowed"},
		{"SELECT lower(status => pg_sleep(1)::text) FROM orders", "function_not_allowed"},
		{"WITH x AS (SELECT pg_sleep(1)) SELECT 1", "function_not_allowed"},
		{"SELECT 1 WHERE EXISTS (SELECT pg_sleep(1))", "function_not_allowed"},
		{"SELECT '1'::int LIMIT pg_sleep(1)::int", "function_not_allowed"},

		// Operators, types, collations outside pg_catalog.
		{"SELECT 1 OPERATOR(public.+) 1", "operator_not_allowed"},
		{"SELECT id FROM orders ORDER BY id USING OPERATOR(public.<)", "operator_not_allowed"},
		{"SELECT 1 WHERE 1 OPERATOR(evil.=) ANY (SELECT 1)", "operator_not_allowed"},
		{"SELECT '1'::public.evil_type", "type_not_allowed"},
		{"SELECT CAST('1' AS pg_temp.t)", "type_not_allowed"},
		{"SELECT '<a/>'::xml", "type_not_allowed"},
		// Object identifier types resolve any name: existence probes.
		{"SELECT 'public.secrets'::regclass::oid", "type_not_allowed"},
		{"SELECT CAST('secrets' AS pg_catalog.regclass)", "type_not_allowed"},
		{"SELECT '{secrets}'::regclass[]", "type_not_allowed"},
		{"SELECT 'evil_write'::regproc", "type_not_allowed"},
		{"SELECT to_regclass('public.secrets')", "function_not_allowed"},
		{"SELECT has_table_privilege('public.secrets', 'SELECT')", "function_not_allowed"},
		{"SELECT pg_relation_size('public.secrets')", "function_not_allowed"},
		// The catalog lookup class: oids and names mapped to objects.
		{"SELECT format_type(g, NULL) FROM generate_series(1, 20000) AS g", "function_not_allowed"},
		{"SELECT f FROM generate_series(1, 20000) AS g, LATERAL format_type(g, NULL) AS f", "function_not_allowed"},
		{"SELECT pg_catalog.format_type(16384, -1)", "function_not_allowed"},
		{"SELECT regclassout(16384)", "function_not_allowed"},
		{"SELECT regclassin('public.secrets')", "function_not_allowed"},
		{"SELECT int4in('1')", "function_not_allowed"},
		{"SELECT row_security_active('public.secrets')", "function_not_allowed"},
		{"SELECT pg_get_userbyid(10)", "function_not_allowed"},
		{"SELECT ARRAY[pg_typeof(1), 'public.secrets']", "function_not_allowed"},
		{"SELECT to_tsvector('nosuchschema.cfg', notes) FROM orders", "function_not_allowed"},
		{"SELECT ts_headline('nosuchschema.cfg', notes, NULL) FROM orders", "function_not_allowed"},
		{"SELECT id FROM orders WHERE format_type(id, NULL) IS NULL", "function_not_allowed"},
		{"SELECT 'postgres=r/postgres'::aclitem", "type_not_allowed"},
		{"SELECT '{}'::aclitem[]", "type_not_allowed"},
		{"SELECT '{}'::pg_catalog._aclitem", "type_not_allowed"},
		{"SELECT 1259::regclass", "type_not_allowed"},
		{"SELECT tableoid FROM orders", "column_not_allowed"},
		{"SELECT * FROM json_to_record('{}') AS x(a public.t)", "type_not_allowed"},
		{"SELECT 'a' COLLATE public.evil", "collation_not_allowed"},

		// Columns.
		{"SELECT ssn FROM customers", "column_not_allowed"},
		{"SELECT c.ssn FROM customers c", "column_not_allowed"},
		{"SELECT public.customers.ssn FROM customers", "column_not_allowed"},
		{"SELECT id FROM customers WHERE ssn = '123'", "column_not_allowed"},
		{"SELECT count(ssn) FROM customers", "column_not_allowed"},
		{"SELECT id FROM customers ORDER BY ssn", "column_not_allowed"},
		{"SELECT (SELECT ssn) FROM customers", "column_not_allowed"},
		{"SELECT (SELECT max(ssn) FROM customers)", "column_not_allowed"},
		{"SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.ssn LIKE '1%')", "column_not_allowed"},
		{"SELECT o.id FROM orders o, LATERAL (SELECT ssn FROM customers c WHERE c.id = o.customer_id) x", "column_not_allowed"},
		{"SELECT c.id FROM customers c JOIN customers d USING (ssn)", "column_not_allowed"},
		{"SELECT id FROM customers c WHERE c.id IN (SELECT 1 WHERE ssn IS NULL)", "column_not_allowed"},
		{"SELECT j.ssn FROM (customers c JOIN orders o ON true) j", "column_not_allowed"},
		{"SELECT xmin FROM orders", "column_not_allowed"},
		{"SELECT ctid, id FROM customers", "column_not_allowed"},
		{"SELECT o.nope FROM orders o", "unknown_column"},
		{"SELECT c.to_json FROM customers c", "unknown_column"},
		{"SELECT c.row_to_json FROM customers c", "unknown_column"},
		{"SELECT (o).nope FROM orders o", "unknown_column"},
		{"SELECT o.ctid FROM orders o", "unknown_column"},
		{"SELECT j.to_json FROM (customers c JOIN orders o ON true) j", "unknown_column"},
		{"SELECT ssn_copy FROM customers", "unknown_column"}, // a column the policy does not list
		{"SELECT id FROM customers WHERE ssn_copy LIKE '1%'", "unknown_column"},
		{"SELECT c.id FROM customers c, orders o WHERE secret_col = 1", "unknown_column"},
		{"SELECT n FROM customers c, (SELECT 1 AS m) s", "unknown_column"},
		{"SELECT plan AS p, count(*) FROM customers GROUP BY p", "unknown_column"},
		{"SELECT plan AS p FROM customers WHERE p = 'pro'", "unknown_column"},
		{"SELECT x.id FROM orders", "unknown_reference"},
		{"SELECT orders.id FROM orders o", "unknown_reference"},
		{"SELECT internal.api_keys.key FROM orders", "unknown_reference"},
		{"SELECT db.public.orders.id FROM orders", "unknown_reference"},

		// * and whole rows of a restricted table.
		{"SELECT * FROM customers", "star_not_allowed"},
		{"TABLE customers", "star_not_allowed"},
		{"SELECT c.* FROM customers c", "star_not_allowed"},
		{"SELECT public.customers.* FROM customers", "star_not_allowed"},
		{"SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id", "star_not_allowed"},
		{"SELECT * FROM orders JOIN customers USING (id)", "star_not_allowed"},
		{"SELECT j.* FROM (customers c JOIN orders o ON true) j", "star_not_allowed"},
		{"SELECT id FROM (SELECT * FROM customers) s", "star_not_allowed"},
		{"WITH x AS (SELECT * FROM customers) SELECT id FROM x", "star_not_allowed"},
		{"SELECT 1 WHERE EXISTS (SELECT * FROM customers)", "star_not_allowed"},
		{"SELECT c FROM customers c", "whole_row_not_allowed"},
		{"SELECT customers FROM customers", "whole_row_not_allowed"},
		{"SELECT to_json(c) FROM customers c", "whole_row_not_allowed"},
		{"SELECT row_to_json(c.*) FROM customers c", "whole_row_not_allowed"},
		{"SELECT (c).ssn FROM customers c", "whole_row_not_allowed"},
		{"SELECT (c).email FROM customers c", "whole_row_not_allowed"},
		{"SELECT (c).* FROM customers c", "whole_row_not_allowed"},
		{"SELECT c::text FROM customers c", "whole_row_not_allowed"},
		{"SELECT count(DISTINCT c) FROM customers c", "whole_row_not_allowed"},
		{"SELECT id FROM customers c WHERE c IS NOT NULL", "whole_row_not_allowed"},
		{"SELECT ROW(c.*) FROM customers c", "whole_row_not_allowed"},
		{"SELECT x FROM customers c, LATERAL to_json(c) x", "whole_row_not_allowed"},
		{"SELECT (SELECT c) FROM customers c", "whole_row_not_allowed"},
		{"SELECT j FROM (customers c JOIN orders o ON true) j", "whole_row_not_allowed"},
		{"SELECT id FROM customers c(a)", "column_alias_not_allowed"},
		{"SELECT f FROM customers AS c(a, b, c, d, e, f)", "column_alias_not_allowed"},
		{"SELECT 1 FROM (customers c JOIN orders o ON true) AS j(a, b)", "column_alias_not_allowed"},
		{"SELECT id FROM customers NATURAL JOIN (SELECT 'a@b.c' AS email) x", "natural_join_not_allowed"},

		// Masked columns used as anything but plain output.
		{"SELECT id FROM customers WHERE email = 'a@b.c'", "masked_column_misuse"},
		{"SELECT id FROM customers WHERE email LIKE 'a%'", "masked_column_misuse"},
		{"SELECT email FROM customers WHERE email = email", "masked_column_misuse"},
		{"SELECT id FROM customers ORDER BY email", "masked_column_misuse"},
		{"SELECT email FROM customers ORDER BY 1", "masked_column_misuse"},
		{"SELECT id, email FROM customers ORDER BY 2 DESC", "masked_column_misuse"},
		{"SELECT email AS e FROM customers ORDER BY e", "masked_column_misuse"},
		{"SELECT email AS name FROM customers ORDER BY name", "masked_column_misuse"},
		{"SELECT email, count(*) FROM customers GROUP BY email", "masked_column_misuse"},
		{"SELECT email, count(*) FROM customers GROUP BY 1", "masked_column_misuse"},
		{"SELECT email FROM customers GROUP BY ROLLUP (1)", "masked_column_misuse"},
		{"SELECT email AS e FROM customers GROUP BY GROUPING SETS ((e))", "unknown_column"}, // GROUP BY names input columns first
		{"SELECT DISTINCT email FROM customers", "masked_column_misuse"},
		{"SELECT DISTINCT ON (email) id FROM customers", "masked_column_misuse"},
		{"SELECT DISTINCT ON (2) id, email FROM customers", "masked_column_misuse"},
		{"SELECT c.id FROM customers c JOIN customers d ON c.email = d.email", "masked_column_misuse"},
		{"SELECT c.id FROM customers c JOIN customers d USING (email)", "masked_column_misuse"},
		{"SELECT lower(email) FROM customers", "masked_column_misuse"},
		{"SELECT email || '' FROM customers", "masked_column_misuse"},
		{"SELECT email::text FROM customers", "masked_column_misuse"},
		{"SELECT length(phone) FROM customers", "masked_column_misuse"},
		{"SELECT (SELECT email FROM customers LIMIT 1)", "masked_column_misuse"},
		{"SELECT e FROM (SELECT email AS e FROM customers) s", "masked_column_misuse"},
		{"WITH x AS (SELECT email FROM customers) SELECT * FROM x", "masked_column_misuse"},
		{"SELECT email FROM customers UNION SELECT 'a'", "masked_column_misuse"},
		{"SELECT 'a' UNION ALL SELECT phone FROM customers", "masked_column_misuse"},
		{"SELECT count(*) FILTER (WHERE email IS NULL) FROM customers", "masked_column_misuse"},
		{"SELECT email, row_number() OVER (PARTITION BY email) FROM customers", "masked_column_misuse"},
		{"SELECT email FROM customers WINDOW w AS (ORDER BY email)", "masked_column_misuse"},
		{"SELECT id FROM customers HAVING max(email) > 'm'", "masked_column_misuse"},
		{"SELECT string_agg(email, ',') FROM customers", "masked_column_misuse"},
		{"SELECT CASE WHEN email > 'm' THEN 1 END FROM customers", "masked_column_misuse"},
		{"SELECT ROW(email) FROM customers", "masked_column_misuse"},
		{"SELECT email, o.* FROM customers c JOIN orders o ON o.customer_id = c.id", "masked_column_misuse"},
		{"SELECT email, (SELECT count(*) FROM customers d WHERE d.email = c.email) FROM customers c", "masked_column_misuse"},
		{"EXPLAIN SELECT email FROM customers", "masked_column_misuse"},
		{"SELECT id FROM customers LIMIT length(email)", "masked_column_misuse"},
	}
	p := readTestPolicy()
	for _, tt := range tests {
		plan, err := p.CheckRead(tt.sql, 100)
		var r *Refusal
		switch {
		case err == nil:
			t.Errorf("CheckRead(%q) accepted: %s", tt.sql, plan.SQL)
		case !errors.As(err, &r):
			t.Errorf("CheckRead(%q) = %v, want a *Refusal", tt.sql, err)
		case r.Code != tt.code:
			t.Errorf("CheckRead(%q) = %v, want code %s", tt.sql, err, tt.code)
		case r.Reason == "" || r.Hint == "":
			t.Errorf("CheckRead(%q) = %#v, want a reason and a hint", tt.sql, r)
		}
	}
}

// TestCheckReadRefusalText pins the wording an agent acts on: what was
// refused, and what to do instead.
func TestCheckReadRefusalText(t *testing.T) {
	t.Parallel()
	const customerCols = "id, tenant_id, name, email, phone, plan, balance, signed_up_at, last_login, is_active, metadata, avatar, big_counter"
	tests := []struct {
		sql, reason, hint string
	}{
		{"SELECT * FROM secrets", "table secrets is not in scope", "tables in scope: public.customers, public.invoices, public.orders"},
		{"SELECT * FROM internal.api_keys", "table internal.api_keys is not in scope", "tables in scope: public.customers, public.invoices, public.orders"},
		{"SELECT ssn FROM customers", "column ssn of public.customers is not allowed", "columns of public.customers you may use: " + customerCols},
		{"SELECT * FROM customers", "* is not allowed over public.customers, which has restricted columns", "list the columns you need: " + customerCols},
		{"DELETE FROM orders", "DELETE (DeleteStmt) is not allowed", readHintStatement},
		{"SELECT 1; SELECT 2", "the SQL contains 2 statements", "send one statement per call"},
		{"SELECT id FROM customers WHERE email = 'x'", "masked column email is used in an expression or clause", readHintMasked},
		{"SELECT pg_sleep(1)", "function pg_sleep is not allowed: it holds locks or sleeps beyond the read", "a read must not wait or lock; query without it"},
		{"SELECT current_setting('work_mem')", "function current_setting is not allowed: it reveals catalog, statistics or server state outside the scope", "list_tables and describe_table show what the scope lets you see of the schema"},
		{"SELECT xmlparse(document '<a/>')", "XmlExpr is not supported", readHintSyntax},
		{"SELEC 1", `syntax error at or near "SELEC"`, "fix the SQL and send one SELECT statement"},
	}
	p := readTestPolicy()
	for _, tt := range tests {
		_, err := p.CheckRead(tt.sql, 100)
		var r *Refusal
		if !errors.As(err, &r) {
			t.Errorf("CheckRead(%q) = %v, want a refusal", tt.sql, err)
			continue
		}
		if r.Reason != tt.reason || r.Hint != tt.hint {
			t.Errorf("CheckRead(%q)\n got %q / %q\nwant %q / %q", tt.sql, r.Reason, r.Hint, tt.reason, tt.hint)
		}
	}
}

// TestCheckReadExplainRowFiltered: EXPLAIN is refused wherever the
// statement reads a row-filtered table, and only there.
func TestCheckReadExplainRowFiltered(t *testing.T) {
	t.Parallel()
	p := readTestPolicy()
	p.Tables["public.customers"].RowFiltered = true
	tests := []struct{ sql, code string }{
		{"EXPLAIN SELECT name FROM customers", "explain_not_allowed"},
		{"EXPLAIN SELECT name FROM public.customers WHERE plan = 'gold'", "explain_not_allowed"},
		{"EXPLAIN (COSTS false) SELECT name FROM customers", "explain_not_allowed"},
		{"EXPLAIN (FORMAT json, VERBOSE) SELECT name FROM customers", "explain_not_allowed"},
		{"EXPLAIN SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id", "explain_not_allowed"},
		{"EXPLAIN SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers)", "explain_not_allowed"},
		{"EXPLAIN SELECT id FROM orders WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = orders.customer_id)", "explain_not_allowed"},
		{"EXPLAIN WITH c AS (SELECT id FROM customers) SELECT count(*) FROM c", "explain_not_allowed"},
		{"EXPLAIN SELECT id FROM orders UNION SELECT id FROM customers", "explain_not_allowed"},
		{"EXPLAIN SELECT * FROM orders o, LATERAL (SELECT name FROM customers c WHERE c.id = o.customer_id) x", "explain_not_allowed"},
		// Without the filtered table, or without EXPLAIN, nothing changes.
		{"EXPLAIN SELECT * FROM orders", ""},
		{"EXPLAIN SELECT o.id, i.amount FROM orders o JOIN invoices i ON i.order_id = o.id", ""},
		{"EXPLAIN WITH customers AS (SELECT 1 AS name) SELECT name FROM customers", ""},
		{"SELECT name FROM customers", ""},
		{"SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id", ""},
		// Other refusals come first.
		{"EXPLAIN SELECT ssn FROM customers", "column_not_allowed"},
		{"EXPLAIN ANALYZE SELECT name FROM customers", "explain_option_not_allowed"},
	}
	for _, tt := range tests {
		plan, err := p.CheckRead(tt.sql, 10)
		if tt.code == "" {
			if err != nil {
				t.Errorf("CheckRead(%q): %v", tt.sql, err)
			} else {
				readAssertInvariants(t, p, tt.sql, plan)
			}
			continue
		}
		var r *Refusal
		if !errors.As(err, &r) || r.Code != tt.code {
			t.Errorf("CheckRead(%q) = %v, want %s", tt.sql, err, tt.code)
			continue
		}
		if tt.code == "explain_not_allowed" {
			want := "EXPLAIN over public.customers is not allowed: the rows you may read there are filtered, and the plan's estimates count the rows the filter hides"
			if r.Reason != want || r.Hint != readHintExplainFiltered {
				t.Errorf("CheckRead(%q) = %q / %q", tt.sql, r.Reason, r.Hint)
			}
		}
	}
}

// TestCheckReadCallArity: the read guard hands FunctionRule the number of
// arguments, and hands any other checker, a FunctionRule embedded in one
// included, the name alone.
func TestCheckReadCallArity(t *testing.T) {
	t.Parallel()
	const sql = "SELECT to_tsvector(notes) FROM orders"
	for _, tc := range []struct {
		name string
		fc   FunctionChecker
		ok   bool
	}{
		{"value", readTestFunctions(), true},
		{"pointer", func() FunctionChecker { r := readTestFunctions(); return &r }(), true},
		{"embedded", readEmbeddedRule{readTestFunctions()}, false},
	} {
		p := readTestPolicy()
		p.Functions = tc.fc
		_, err := p.CheckRead(sql, 10)
		if (err == nil) != tc.ok {
			t.Errorf("%s: CheckRead(%q) = %v, want allowed=%v", tc.name, sql, err, tc.ok)
		}
	}
}

// readEmbeddedRule is a checker that embeds FunctionRule, as one that
// refuses more than the rule would.
type readEmbeddedRule struct{ FunctionRule }

func (r readEmbeddedRule) CheckFunction(schema, name string) *Refusal {
	return r.FunctionRule.CheckFunction(schema, name)
}

func TestCheckReadSearchPath(t *testing.T) {
	t.Parallel()
	p := readTestPolicy()
	p.Tables["app.orders"] = &Table{Schema: "app", Name: "orders", Columns: []Column{{Name: "ref", Access: Allowed}}}
	p.SearchPath = []string{"app", "public"}
	plan, err := p.CheckRead("SELECT o.ref, i.amount FROM orders o, invoices i", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := "SELECT o.ref, i.amount FROM app.orders o, public.invoices i"; plan.SQL != want {
		t.Errorf("SQL = %s, want %s", plan.SQL, want)
	}
	var r *Refusal
	if _, err := p.CheckRead("SELECT o.status FROM orders o", 0); !errors.As(err, &r) || r.Code != "unknown_column" {
		t.Errorf("orders resolved past app.orders: %v", err)
	}
}

func TestCheckReadNoFunctionChecker(t *testing.T) {
	t.Parallel()
	p := readTestPolicy()
	p.Functions = nil
	if _, err := p.CheckRead("SELECT id FROM orders WHERE id > 1", 10); err != nil {
		t.Errorf("a query without calls: %v", err)
	}
	var r *Refusal
	if _, err := p.CheckRead("SELECT lower(status) FROM orders", 10); !errors.As(err, &r) || r.Code != "function_not_allowed" {
		t.Errorf("a call with no FunctionChecker: %v", err)
	}
}

func TestCheckReadFingerprint(t *testing.T) {
	t.Parallel()
	p := readTestPolicy()
	a, err := p.CheckRead("SELECT id FROM orders WHERE id = 1", 10)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.CheckRead("select  id\nfrom orders where id = 2 -- other constant", 10)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := pg_query.Fingerprint("SELECT id FROM orders WHERE id = 1")
	if a.Fingerprint != want || b.Fingerprint != want {
		t.Errorf("fingerprints %s, %s, want %s for both", a.Fingerprint, b.Fingerprint, want)
	}
}

// TestReadFieldsExist guards the closed node list against typos: a name
// that matches nothing would silently refuse what it meant to allow.
func TestReadFieldsExist(t *testing.T) {
	t.Parallel()
	for msg, fields := range readFields {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName("pg_query." + string(msg)))
		if err != nil {
			t.Errorf("message %s: %v", msg, err)
			continue
		}
		for f := range fields {
			if mt.Descriptor().Fields().ByName(f) == nil {
				t.Errorf("message %s has no field %s", msg, f)
			}
		}
	}
}

// readFuzzHang bounds one CheckRead call in FuzzCheckRead. The guard takes
// well under a millisecond on ordinary statements; an input that takes
// seconds is a denial of service.
const readFuzzHang = 5 * time.Second

// FuzzCheckRead looks for panics, hangs and accepted statements that break
// the invariants below. Its seed corpus is testdata/fuzz/FuzzCheckRead
// (attack strings and real-world reporting queries, one a file) plus the
// seeds added here; inputs the fuzzer finds failing are written there too
// and stay as regression seeds.
func FuzzCheckRead(f *testing.F) {
	for _, sql := range []string{
		"SELECT id, name, email FROM customers WHERE id = $1",
		"SELECT c.name, count(o.id) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
		"WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a",
		"SELECT * FROM orders o, LATERAL (SELECT i.amount FROM invoices i WHERE i.order_id = o.id) x",
		"SELECT (SELECT ssn) FROM customers",
		"SELECT c FROM customers c",
		"SELECT j.email FROM (customers c JOIN orders o ON c.id = o.customer_id) j",
		"SELECT * FROM secrets UNION SELECT * FROM orders",
		"EXPLAIN (FORMAT json) SELECT * FROM orders LIMIT ALL",
		"SELECT pg_read_file('/etc/passwd') FROM generate_series(1, 2) g",
		"WITH customers AS (SELECT 1 AS id) SELECT * FROM customers",
		"SELECT (o).status, to_json(o) FROM orders o WHERE o.id = ANY ($1::int[])",
	} {
		f.Add(sql)
	}
	p := readTestPolicy()
	f.Fuzz(func(t *testing.T, sql string) {
		// A panic on another goroutine ends the worker, so the fuzzer
		// keeps an input that makes the guard hang as a crasher; t.Fatal
		// could not fire before the call returned.
		hang := time.AfterFunc(readFuzzHang, func() { panic(fmt.Sprintf("CheckRead(%q) ran longer than %s", sql, readFuzzHang)) })
		plan, err := p.CheckRead(sql, 50)
		hang.Stop()
		if err != nil {
			var r *Refusal
			if !errors.As(err, &r) {
				t.Fatalf("CheckRead(%q) = %v, want a *Refusal", sql, err)
			}
			return
		}
		readAssertInvariants(t, p, sql, plan)
	})
}

// readAssertInvariants checks an accepted plan with an oracle that shares
// no code with the guard: a generic walk of the parse tree of the SQL that
// will run. Every relation is an in-scope table or a CTE the statement
// defines, every call passes the FunctionChecker, no node is of a kind the
// guard refuses, and the denied column never appears.
func readAssertInvariants(t *testing.T, p *Policy, sql string, plan *ReadPlan) {
	t.Helper()
	tree, err := pg_query.Parse(plan.SQL)
	if err != nil || len(tree.Stmts) != 1 {
		t.Errorf("CheckRead(%q) produced unparsable SQL %q: %v", sql, plan.SQL, err)
		return
	}
	ctes := map[string]bool{}
	var rangeVars []*pg_query.RangeVar
	ssnRefs, ssnDefined := 0, false
	pgtest.Walk(tree.ProtoReflect(), func(m protoreflect.Message) {
		switch x := m.Interface().(type) {
		case *pg_query.CommonTableExpr:
			ctes[x.Ctename] = true
			for _, c := range x.Aliascolnames {
				ssnDefined = ssnDefined || c.GetString_().GetSval() == "ssn"
			}
		case *pg_query.RangeVar:
			rangeVars = append(rangeVars, x)
		case *pg_query.FuncCall:
			var schema string
			name := x.Funcname[len(x.Funcname)-1].GetString_().GetSval()
			if len(x.Funcname) == 2 {
				schema = x.Funcname[0].GetString_().GetSval()
			}
			// FunctionRule decides on the call with its number of
			// arguments; other checkers see the name alone.
			r := p.Functions.CheckFunction(schema, name)
			if rule, ok := p.Functions.(FunctionRule); ok {
				r = rule.CheckCall(schema, name, len(x.Args))
			}
			if r != nil {
				t.Errorf("CheckRead(%q) accepted a refused call: %v", sql, r)
			}
		case *pg_query.ColumnRef:
			if f := x.Fields; f[len(f)-1].GetString_().GetSval() == "ssn" {
				ssnRefs++
			}
		case *pg_query.ResTarget:
			ssnDefined = ssnDefined || x.Name == "ssn"
		case *pg_query.Alias:
			for _, c := range x.Colnames {
				ssnDefined = ssnDefined || c.GetString_().GetSval() == "ssn"
			}
		case *pg_query.ColumnDef:
			ssnDefined = ssnDefined || x.Colname == "ssn"
		case *pg_query.LockingClause, *pg_query.IntoClause, *pg_query.InsertStmt, *pg_query.UpdateStmt,
			*pg_query.DeleteStmt, *pg_query.XmlExpr, *pg_query.RangeTableSample:
			t.Errorf("CheckRead(%q) accepted a %T", sql, x)
		}
	})
	if ssnRefs > 0 && !ssnDefined && slices.Contains(plan.Tables, "public.customers") {
		t.Errorf("CheckRead(%q) accepted SQL naming the denied column ssn: %s", sql, plan.SQL)
	}
	for _, rv := range rangeVars {
		if rv.Schemaname == "" && ctes[rv.Relname] {
			continue
		}
		if p.Tables[rv.Schemaname+"."+rv.Relname] == nil {
			t.Errorf("CheckRead(%q) reads %s.%s, which is not in scope", sql, rv.Schemaname, rv.Relname)
		}
	}
}

// TestCheckReadMaskedView: reads of a table with masked columns go to the
// scope's view in its place, under the name the query gives the table, and
// the rewritten text passes the guard a second time.
func TestCheckReadMaskedView(t *testing.T) {
	t.Parallel()
	p := readTestPolicy()
	p.Tables["public.customers"].ReadSchema = "airlock_s"
	p.Tables["public.customers"].ReadName = "public.customers"
	for _, tc := range []struct{ sql, want, code string }{
		{"SELECT email FROM customers", `SELECT email FROM airlock_s."public.customers" customers LIMIT 11`, ""},
		{"SELECT c.email, c.name FROM public.customers c WHERE c.id = 1", `SELECT c.email, c.name FROM airlock_s."public.customers" c WHERE c.id = 1 LIMIT 11`, ""},
		{"SELECT customers.name FROM customers JOIN orders ON orders.customer_id = customers.id",
			`SELECT customers.name FROM airlock_s."public.customers" customers JOIN public.orders ON orders.customer_id = customers.id LIMIT 11`, ""},
		{"SELECT count(*) FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id)",
			`SELECT count(*) FROM public.orders o WHERE EXISTS (SELECT 1 FROM airlock_s."public.customers" c WHERE c.id = o.customer_id) LIMIT 11`, ""},
		// The view is not a table of the scope to the agent.
		{`SELECT email FROM airlock_s."public.customers"`, "", "table_not_in_scope"},
		// The rewrite aliases the view, so a schema-qualified column cannot
		// name it.
		{"SELECT public.customers.name FROM customers", "", "unknown_reference"},
	} {
		plan, err := p.CheckRead(tc.sql, 10)
		if tc.code != "" {
			var r *Refusal
			if !errors.As(err, &r) || r.Code != tc.code {
				t.Errorf("%s: %v, want %s", tc.sql, err, tc.code)
			}
			continue
		}
		if err != nil || plan.SQL != tc.want {
			t.Errorf("%s:\n got %v %v\nwant %s", tc.sql, plan, err, tc.want)
		}
	}
}
