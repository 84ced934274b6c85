package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// oracleResult is a tool result as the client received it, as JSON: the
// bytes an agent sees, text, structured content and _meta alike.
func oracleResult(t *testing.T, res *mcp.CallToolResult) (string, map[string]any) {
	t.Helper()
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return string(b), m
}

// oracleHidden lists the tables of the database that the scope does not
// read, with their oids, as the admin sees them.
func oracleHidden(t *testing.T, url string, scoped []string) (names []string, minOID, maxOID uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT c.relname::text, c.oid::int8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'v') AND n.nspname IN ('public', 'internal') AND NOT (n.nspname || '.' || c.relname) = ANY($1)`, scoped)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	minOID = ^uint32(0)
	for rows.Next() {
		var name string
		var oid int64
		if err := rows.Scan(&name, &oid); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		minOID, maxOID = min(minOID, uint32(oid)), max(maxOID, uint32(oid))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names, minOID, maxOID
}

// TestOracleCatalogLookups drives the built binary with the probes an agent
// would use to learn which tables exist outside its scope without reading
// them: every one is refused, no answer names a hidden table, a table that
// exists and one that does not get byte-identical answers, and the database
// is unchanged.
func TestOracleCatalogLookups(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	if _, err := pgxExec(context.Background(), url, "CREATE TABLE public.zz_hidden_ledger (amount int)"); err != nil {
		t.Fatal(err)
	}
	hidden, lo, hi := oracleHidden(t, url, []string{"public.customers", "public.orders", "public.invoices", "public.products"})
	if len(hidden) < 3 {
		t.Fatalf("hidden tables: %v", hidden)
	}
	c := startAirlock(t, url, "readonly.json")
	before := pgtest.Fingerprint(t, url).DatabaseOnly()

	lookups := []struct {
		sql    string
		params []any
	}{
		{"SELECT format_type(g::oid, NULL) FROM generate_series($1::int, $2::int) AS g", []any{lo, hi}},
		{"SELECT f FROM generate_series($1::int, $2::int) AS g, LATERAL format_type(g::oid, -1) AS f", []any{lo, hi}},
		{"SELECT regclassout(g::oid) FROM generate_series($1::int, $2::int) AS g", []any{lo, hi}},
		{"SELECT pg_describe_object(1259, g::oid, 0) FROM generate_series($1::int, $2::int) AS g", []any{lo, hi}},
		{"SELECT obj_description(g::oid) FROM generate_series($1::int, $2::int) AS g", []any{lo, hi}},
		{"SELECT g::regclass FROM generate_series($1::int, $2::int) AS g", []any{lo, hi}},
		{"SELECT 'public.zz_hidden_ledger'::regclass", nil},
		{"SELECT regclassin('public.zz_hidden_ledger')", nil},
		{"SELECT row_security_active('public.zz_hidden_ledger')", nil},
		{"SELECT to_regclass('public.zz_hidden_ledger')", nil},
		{"SELECT has_table_privilege('public.zz_hidden_ledger', 'SELECT')", nil},
		{"SELECT ARRAY[pg_typeof(1), 'public.zz_hidden_ledger']", nil},
		{"SELECT pg_typeof(id) FROM orders", nil},
		{"SELECT to_tsvector('internal.english', notes) FROM orders", nil},
		{"SELECT 'postgres=r/postgres'::aclitem", nil},
	}
	for _, l := range lookups {
		args := map[string]any{"sql": l.sql}
		if l.params != nil {
			args["params"] = l.params
		}
		res := call(t, c, "query_readonly", args)
		raw, m := oracleResult(t, res)
		switch code := errorCode(m); code {
		case "function_not_allowed", "type_not_allowed":
		default:
			t.Errorf("%s: %s, want a refusal: %s", l.sql, code, raw)
		}
		for _, name := range hidden {
			if strings.Contains(strings.ToLower(raw), strings.ToLower(name)) && !strings.Contains(l.sql, name) {
				t.Errorf("%s: the answer names the hidden table %s: %s", l.sql, name, raw)
			}
		}
	}

	// A table that exists and one that does not: the same answer, byte
	// for byte, whether the name is a literal or a parameter.
	for _, probe := range []string{
		"SELECT row_security_active('%s')",
		"SELECT '%s'::regclass",
		"SELECT to_regclass('%s')",
		"SELECT ARRAY[pg_typeof(1), '%s']",
		"SELECT to_tsvector('%s', 'x')",
		"SELECT has_table_privilege('%s', 'SELECT')",
	} {
		answer := func(name string) string {
			res := call(t, c, "query_readonly", map[string]any{"sql": strings.ReplaceAll(probe, "%s", name)})
			raw, _ := oracleResult(t, res)
			return raw
		}
		if a, b := answer("public.zz_hidden_ledger"), answer("public.zz_no_such_table"); a != b {
			t.Errorf("%s tells the tables apart:\n%s\n%s", probe, a, b)
		}
		param := strings.ReplaceAll(strings.ReplaceAll(probe, "'%s'", "$1"), "%s", "$1")
		answerParam := func(name string) string {
			res := call(t, c, "query_readonly", map[string]any{"sql": param, "params": []any{name}})
			raw, _ := oracleResult(t, res)
			return raw
		}
		if a, b := answerParam("public.zz_hidden_ledger"), answerParam("public.zz_no_such_table"); a != b {
			t.Errorf("%s with a parameter tells the tables apart:\n%s\n%s", param, a, b)
		}
	}

	// What a query needs still runs, text search with the default
	// configuration included.
	for _, sql := range []string{
		"SELECT lower(status), length(status), date_trunc('day', created_at), coalesce(notes, '') FROM orders",
		"SELECT count(*), sum(total), string_agg(status, ','), max(id::oid) FROM orders",
		"SELECT to_tsvector(coalesce(notes, '')) @@ plainto_tsquery('x') FROM orders",
	} {
		res := call(t, c, "query_readonly", map[string]any{"sql": sql})
		if res.IsError {
			t.Errorf("%s: %s", sql, resultText(res))
		}
	}
	if d := before.Diff(pgtest.Fingerprint(t, url).DatabaseOnly()); d != "" {
		t.Fatalf("the database changed:\n%s", d)
	}
}

// oracleExplain calls EXPLAIN through query_readonly.
func oracleExplain(t *testing.T, c *client.Client, sql string) (string, string) {
	t.Helper()
	raw, m := oracleResult(t, call(t, c, "query_readonly", map[string]any{"sql": sql}))
	return errorCode(m), raw
}

// TestOracleExplainRowFiltered: with a row filter, EXPLAIN would print the
// planner's estimates, which count the rows the filter hides. It is refused
// over the filtered table, alone, joined or in a subquery, in every format,
// and answers with no estimate; EXPLAIN over a table without a filter
// still works, and so does the query itself.
func TestOracleExplainRowFiltered(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, "row_filter.json")
	before := pgtest.Fingerprint(t, url).DatabaseOnly()

	for _, sql := range []string{
		// tenant 1's rows are all hidden from tenant 2.
		"EXPLAIN SELECT id FROM customers WHERE tenant_id = 1",
		"EXPLAIN SELECT id FROM customers WHERE plan = 'enterprise'",
		"EXPLAIN (FORMAT json) SELECT id FROM customers WHERE tenant_id = 1",
		"EXPLAIN (COSTS false) SELECT id FROM customers WHERE tenant_id = 1",
		"EXPLAIN (VERBOSE) SELECT name FROM customers",
		"EXPLAIN SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.tenant_id = 1",
		"EXPLAIN SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE tenant_id = 1)",
		"EXPLAIN WITH c AS (SELECT id FROM customers) SELECT count(*) FROM c",
	} {
		code, raw := oracleExplain(t, c, sql)
		if code != "explain_not_allowed" {
			t.Errorf("%s: %s, want explain_not_allowed: %s", sql, code, raw)
		}
		for _, leak := range []string{"rows=", "cost=", "Plan Rows", "Total Cost", "tenant_id = 2", "Seq Scan", "Index"} {
			if strings.Contains(raw, leak) {
				t.Errorf("%s: the refusal shows %q: %s", sql, leak, raw)
			}
		}
	}

	code, raw := oracleExplain(t, c, "EXPLAIN SELECT id FROM orders WHERE status = 'paid'")
	if code != "" || !strings.Contains(raw, "rows=") {
		t.Errorf("EXPLAIN over orders, which has no filter: %s %s", code, raw)
	}
	res := call(t, c, "query_readonly", map[string]any{"sql": "SELECT count(*) AS n, min(tenant_id) AS lo, max(tenant_id) AS hi FROM customers"})
	raw, _ = oracleResult(t, res)
	if res.IsError || !strings.Contains(raw, `[200,2,2]`) {
		t.Errorf("the query itself, with the filter applied: %s", raw)
	}
	if d := before.Diff(pgtest.Fingerprint(t, url).DatabaseOnly()); d != "" {
		t.Fatalf("the database changed:\n%s", d)
	}
}
