package tools

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/scopes"
)

// These tests hold the write guard's promises against a real PostgreSQL
// (docs/architecture.md, Write statements: the read rules everywhere): what
// QualifiedSQL renders means what the agent wrote, an admin's same-named
// function or operator in public is never what runs, and DEFAULTs cannot
// reach sequences outside the scope.

const writeGuardScope = `{
  "name": "writeguard",
  "read": {"tables": {
    "public.customers": {"columns": ["id", "name", "email", "plan"], "mask": ["email"]},
    "public.orders": {}, "public.invoices": {}, "public.products": {}
  }},
  "write": {
    "tables": ["public.orders", "public.invoices", "public.orders_copy"],
    "allow": ["insert", "update", "delete", "create_table", "add_column", "set_default", "drop_default",
              "add_constraint", "create_index", "alter_column_type", "create_view"],
    "ticket_pattern": "^[A-Z]+-[0-9]+$"
  }
}`

func writeGuardEnv(t *testing.T) (*Env, string) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	scope, err := scopes.Parse([]byte(writeGuardScope))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	return &Env{Pool: pool, Scope: scope, Catalog: NewCatalog(pool, scope, logger),
		Audit: audit.NewLog(nil, logger), Log: logger}, url
}

func execAdmin(t *testing.T, url, sql string) {
	t.Helper()
	if _, err := pgtest.Connect(t, url).Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

func dryRun(t *testing.T, env *Env, sql string) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = scopes.ToolMigrateDryRun
	req.Params.Arguments = map[string]any{"sql": sql}
	res, err := NewMigrateDryRun(env).Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func toolText(res *mcp.CallToolResult) string {
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			sb.WriteString(tc.Text)
		}
	}
	if p := ErrorOf(res); p != nil {
		fmt.Fprintf(&sb, " %s %s %s", p.Code, p.Reason, p.Hint)
	}
	return sb.String()
}

// TestShadowingFunctionsNeverRun: the guard approves upper() and + as
// pg_catalog's; PostgreSQL runs pg_catalog's, so the admin's functions,
// which would win the search-path lookup, never run and their secret never
// reaches the agent. The control runs the agent's text as written and
// shows that the attack is real.
func TestShadowingFunctionsNeverRun(t *testing.T) {
	env, url := writeGuardEnv(t)
	execAdmin(t, url, pgtest.ShadowingObjects)
	for _, sql := range []string{
		"UPDATE orders SET notes = upper(id::int) WHERE id = 1",
		"UPDATE orders SET notes = (id + notes)::text WHERE id = 1",
		"INSERT INTO invoices (order_id, amount, issued_on) SELECT id, length(upper(id::int)), '2024-01-01' FROM orders WHERE id = 1",
		"ALTER TABLE orders ADD COLUMN shout text DEFAULT upper(7)",
		"ALTER TABLE orders ADD CONSTRAINT c CHECK (upper(id::int) <> '')",
		"ALTER TABLE orders ADD COLUMN g text GENERATED ALWAYS AS (upper(id::int)) STORED",
		"CREATE INDEX ON orders ((id + notes))",
		"CREATE INDEX ON orders (id) WHERE upper(id::int) IS NULL",
		"CREATE VIEW orders_copy AS SELECT upper(id::int) AS u FROM orders",
	} {
		t.Run(sql, func(t *testing.T) {
			var leaked string
			conn := pgtest.Connect(t, url)
			tx, err := conn.Begin(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			_, err = tx.Exec(context.Background(), sql)
			if err == nil && strings.HasPrefix(sql, "CREATE VIEW") {
				// A view runs its functions when someone reads it.
				_, err = tx.Exec(context.Background(), "SELECT * FROM orders_copy")
			}
			tx.Rollback(context.Background())
			if err != nil {
				leaked = err.Error()
			}
			if !strings.Contains(leaked, "SENTINEL-SECRET") {
				t.Fatalf("control: the statement as written did not reach the admin's function: %v", err)
			}
			calls := sequenceState(t, url, pgtest.ShadowCalls)
			before := pgtest.Fingerprint(t, url)

			res := dryRun(t, env, sql)
			text := toolText(res)
			if strings.Contains(text, "SENTINEL") || strings.Contains(text, "leak:") {
				t.Fatalf("the admin's function ran and its secret reached the agent: %s", text)
			}
			if got := sequenceState(t, url, pgtest.ShadowCalls); got != calls {
				t.Fatalf("the admin's function ran: shadow_calls %s, was %s", got, calls)
			}
			if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
				t.Fatalf("the dry run changed the database:\n%s", d)
			}
			t.Logf("answer: %s", text)
		})
	}
}

// sequenceState is a sequence's last_value and is_called: what nextval
// changes, and no rollback restores.
func sequenceState(t *testing.T, url, seq string) string {
	t.Helper()
	var v int64
	var called bool
	if err := pgtest.Connect(t, url).QueryRow(context.Background(),
		"SELECT last_value, is_called FROM "+seq).Scan(&v, &called); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d/%t", v, called)
}

// TestQualifiedSQLBehavesTheSame runs statements as the agent wrote them
// and as QualifiedSQL renders them, each in a transaction rolled back, and
// compares what they did: rows, RETURNING output, table contents, and the
// stored definitions of defaults, constraints, indexes and views (printed
// by PostgreSQL from the OIDs they hold, so equal text means the same
// functions and operators were bound).
func TestQualifiedSQLBehavesTheSame(t *testing.T) {
	env, url := writeGuardEnv(t)
	ctx := context.Background()
	for _, sql := range []string{
		"UPDATE orders SET notes = upper(status) || '-' || lower(coalesce(notes, 'x')) WHERE id BETWEEN 1 AND 50 AND status LIKE 'p%' AND notes NOT ILIKE '%gift%' RETURNING id, notes",
		"UPDATE orders SET total = -total + 2 * 3 / 4 - abs(total) WHERE (id, total) < (20, 100) AND id % 3 = 0 RETURNING id, total",
		"DELETE FROM invoices WHERE order_id IN (SELECT id FROM orders WHERE status SIMILAR TO '(paid|shipped)' LIMIT 10) AND id NOT IN (SELECT 1) AND id <> ALL ('{2,3}') RETURNING id",
		"UPDATE orders o SET notes = p.name FROM products p WHERE p.id = o.id % 12 + 1 AND o.id <= 30 AND p.price > ANY (SELECT price FROM products WHERE active) RETURNING o.id, o.notes",
		"INSERT INTO invoices (id, order_id, amount, issued_on) SELECT 900000 + row_number() OVER (ORDER BY id), id, sum(total) OVER (PARTITION BY status ORDER BY id), date '2024-01-01' + (id % 7)::int FROM orders WHERE id <= 20 RETURNING id, amount, issued_on",
		"INSERT INTO orders (id, customer_id, total, created_at, notes) VALUES (900001, 1, 10, '2024-01-01', substring('abcdef' from 2 for 3) || trim(both 'x' from 'xxyxx') || extract(year from timestamp '2024-05-01')::text || position('c' in 'abc')::text) RETURNING notes",
		"INSERT INTO orders (id, customer_id, total, created_at) VALUES (1, 1, 1, '2024-01-01') ON CONFLICT (id) DO UPDATE SET notes = EXCLUDED.total::text || '!' WHERE orders.total > 0 RETURNING id, notes",
		"UPDATE orders SET notes = nullif(status, 'paid') WHERE id IN (1, 2, 3) AND total IS DISTINCT FROM 0 AND notes LIKE 'a!%' ESCAPE '!' IS NOT TRUE RETURNING id, notes",
		"UPDATE orders SET notes = CASE status WHEN 'paid' THEN greatest(total, 5)::text ELSE 'n' END WHERE id <= 5 RETURNING notes",
		"INSERT INTO orders (id, customer_id, total, created_at) SELECT g, 1, g, now() - now() + timestamptz '2024-01-01' FROM generate_series(900100, 900105) AS g ORDER BY g USING > RETURNING id",
		"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('orders_id_seq'::regclass)",
		"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('public.orders_id_seq')",
		"ALTER TABLE orders ADD COLUMN shout text DEFAULT upper('x') CHECK (length(shout) > 0 AND shout ~ '^[A-Z]+$'), ADD COLUMN twice numeric GENERATED ALWAYS AS (total * 2 + 1) STORED",
		"ALTER TABLE orders ADD CONSTRAINT total_sane CHECK (total >= 0 AND status IN ('pending', 'paid', 'shipped', 'cancelled', 'refunded') AND notes NOT LIKE '%DROP%') NOT VALID",
		"ALTER TABLE orders ADD CONSTRAINT no_overlap EXCLUDE USING gist (tstzrange(created_at, created_at, '[]') WITH &&) WHERE (status = 'paid' AND id < 0)",
		"CREATE INDEX orders_lower_notes ON orders (lower(notes), (total * 100)) WHERE status <> 'cancelled' AND notes LIKE '%x%'",
		"CREATE INDEX orders_notes_pattern ON orders (notes text_pattern_ops, status COLLATE \"C\")",
		"ALTER TABLE orders ALTER COLUMN total TYPE numeric(14,3) USING round(total * 1.5, 2)",
		"CREATE TABLE orders_copy (id bigserial PRIMARY KEY, ref int GENERATED ALWAYS AS IDENTITY, total numeric CHECK (total > 0), created timestamptz DEFAULT now(), u uuid DEFAULT gen_random_uuid(), t2 numeric GENERATED ALWAYS AS (total * 2) STORED, c public.product_category DEFAULT 'software')",
		"CREATE TABLE orders_copy (LIKE orders INCLUDING ALL)",
		"CREATE VIEW orders_copy AS SELECT o.id, upper(o.status) AS s, o.total * 2 AS t, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status LIKE 'p%' AND o.id IN (SELECT order_id FROM invoices WHERE amount > 10)",
	} {
		t.Run(sql, func(t *testing.T) {
			plan, refusal, err := env.checkMigration(ctx, sql)
			if err != nil || refusal != nil {
				t.Fatalf("refused: %v %v", refusal, err)
			}
			st := plan.Statements[0]
			if st.QualifiedSQL == st.SQL {
				t.Fatalf("QualifiedSQL is the text as written: %s", st.QualifiedSQL)
			}
			written := runObserved(t, url, st.SQL)
			qualified := runObserved(t, url, st.QualifiedSQL)
			if written != qualified {
				t.Fatalf("QualifiedSQL behaves differently\nwritten:   %s\nqualified: %s\nrendered:  %s", written, qualified, st.QualifiedSQL)
			}
			t.Logf("%s", st.QualifiedSQL)
		})
	}
}

// observedSQL prints what a statement left behind in its transaction.
const observedSQL = `
SELECT pg_catalog.concat_ws(E'\n',
  (SELECT pg_catalog.md5(pg_catalog.string_agg(t::text, ',' ORDER BY t.id)) FROM public.orders t),
  (SELECT pg_catalog.md5(pg_catalog.string_agg(t::text, ',' ORDER BY t.id)) FROM public.invoices t),
  (SELECT pg_catalog.string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod) || ' ' ||
          coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY c.relname, a.attnum)
     FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
     LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT pg_catalog.string_agg(conname || ' ' || pg_catalog.pg_get_constraintdef(oid), ', ' ORDER BY conname)
     FROM pg_catalog.pg_constraint WHERE connamespace = 'public'::regnamespace),
  (SELECT pg_catalog.string_agg(pg_catalog.pg_get_indexdef(indexrelid), ', ' ORDER BY indexrelid::regclass::text)
     FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
     WHERE c.relnamespace = 'public'::regnamespace),
  (SELECT pg_catalog.string_agg(c.relname || ' ' || pg_catalog.pg_get_viewdef(c.oid), ', ' ORDER BY c.relname)
     FROM pg_catalog.pg_class c WHERE c.relkind = 'v' AND c.relnamespace = 'public'::regnamespace))`

// runObserved runs sql in a transaction, records its command tag, its
// rows and observedSQL, and rolls back. Sequences are set back, so that
// both runs see the same nextval.
func runObserved(t *testing.T, url, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn := pgtest.Connect(t, url)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT setval('public.orders_id_seq', 5000), setval('public.invoices_id_seq', 3000)"); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rows, err := tx.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%v;", vals)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	fmt.Fprintf(&out, " [%s] ", rows.CommandTag())
	var state string
	if err := tx.QueryRow(ctx, observedSQL).Scan(&state); err != nil {
		t.Fatal(err)
	}
	out.WriteString(state)
	return out.String()
}

// TestDefaultSequences: a DEFAULT may call nextval only on a sequence a
// writable table's column owns; for any other sequence, existing or not,
// the answer is the same refusal and nothing runs.
func TestDefaultSequences(t *testing.T) {
	env, url := writeGuardEnv(t)
	execAdmin(t, url, "CREATE TABLE public.other (id serial PRIMARY KEY); CREATE SEQUENCE public.loose_seq")
	ctx := context.Background()
	for _, sql := range []string{
		"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('orders_id_seq'::regclass)",
		"ALTER TABLE invoices ADD COLUMN n bigint DEFAULT nextval('public.orders_id_seq')",
		"CREATE TABLE orders_copy (id bigint DEFAULT nextval('invoices_id_seq'))",
	} {
		if _, refusal, err := env.checkMigration(ctx, sql); err != nil || refusal != nil {
			t.Errorf("%s refused: %v %v", sql, refusal, err)
		}
	}
	seqs := []string{"public.ticket_seq", "public.loose_seq", "public.other_id_seq", "public.customers_id_seq", "public.no_such_seq", "internal.ticket_seq", "public.secrets", "public.orders"}
	states := map[string]string{}
	for _, s := range []string{"public.ticket_seq", "public.loose_seq", "public.other_id_seq", "public.customers_id_seq"} {
		states[s] = sequenceState(t, url, s)
	}
	before := pgtest.Fingerprint(t, url)
	for _, seq := range seqs {
		for _, tmpl := range []string{
			"ALTER TABLE orders ADD COLUMN n bigint DEFAULT nextval('%s')",
			"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('%s'::regclass)",
			"CREATE TABLE orders_copy (id bigint DEFAULT nextval('%s'))",
		} {
			sql := fmt.Sprintf(tmpl, seq)
			res := dryRun(t, env, sql)
			p := ErrorOf(res)
			if p == nil || p.Code != "sequence_not_writable" {
				t.Fatalf("%s: %s, want sequence_not_writable", sql, toolText(res))
			}
			// The same words for every sequence but its name, which the
			// agent wrote: no existence oracle.
			want := strings.ReplaceAll(toolText(dryRun(t, env, fmt.Sprintf(tmpl, "public.no_such_seq"))), "public.no_such_seq", seq)
			if got := toolText(res); got != want {
				t.Errorf("%s answers differently from a missing sequence:\n%s\n%s", sql, got, want)
			}
		}
	}
	for s, v := range states {
		if got := sequenceState(t, url, s); got != v {
			t.Errorf("%s advanced: %s, was %s", s, got, v)
		}
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("refused migrations changed the database:\n%s", d)
	}
}

// TestObjectNameProbes: a reg* cast or column looks any name up; in a
// write statement it is refused before anything runs, with one answer for
// names that exist and names that do not.
func TestObjectNameProbes(t *testing.T) {
	env, url := writeGuardEnv(t)
	before := pgtest.Fingerprint(t, url)
	for _, tmpl := range []string{
		"UPDATE orders SET notes = '%s'::regclass::text WHERE id = 1",
		"INSERT INTO invoices (order_id, amount, issued_on) VALUES (1, ('%s'::regclass)::oid::int, '2024-01-01')",
		"DELETE FROM orders WHERE id = 1 AND '%s'::regclass IS NULL",
		"ALTER TABLE orders ADD COLUMN r regclass DEFAULT '%s'",
		"ALTER TABLE orders ADD CONSTRAINT c CHECK ('%s'::regclass IS NOT NULL) NOT VALID",
		"CREATE INDEX ON orders ((('%s'::regclass)::oid))",
		"CREATE VIEW orders_copy AS SELECT '%s'::regclass AS r",
	} {
		exists := dryRun(t, env, fmt.Sprintf(tmpl, "public.secrets"))
		missing := dryRun(t, env, fmt.Sprintf(tmpl, "public.no_such_table"))
		if p := ErrorOf(exists); p == nil || p.Code != "type_not_allowed" {
			t.Fatalf("%s: %s, want type_not_allowed", tmpl, toolText(exists))
		}
		if a, b := toolText(exists), toolText(missing); a != b {
			t.Errorf("%s: existing and missing names answer differently:\n%s\n%s", tmpl, a, b)
		}
		if strings.Contains(toolText(exists), "secrets") {
			t.Errorf("%s: the answer names the probed table: %s", tmpl, toolText(exists))
		}
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("refused migrations changed the database:\n%s", d)
	}
}

// TestFullTextSearchForms: a full-text index or generated column needs the
// configuration argument; written as a built-in configuration's name it is
// allowed in writes and reads alike, while a configuration named any other
// way (a lookup by name) stays refused.
func TestFullTextSearchForms(t *testing.T) {
	env, _ := writeGuardEnv(t)
	for _, tt := range []struct {
		sql string
		ok  bool
	}{
		{"CREATE INDEX orders_notes_fts ON orders USING gin (to_tsvector('english', coalesce(notes, '')))", true},
		{"ALTER TABLE orders ADD COLUMN notes_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', coalesce(notes, ''))) STORED", true},
		{"CREATE INDEX ON orders USING gin (to_tsvector('public.english', notes))", false},
		{"CREATE INDEX ON orders USING gin (to_tsvector('nosuchconfig', notes))", false},
	} {
		res := dryRun(t, env, tt.sql)
		if res.IsError == tt.ok {
			t.Errorf("%s: refused %v, want %v: %s", tt.sql, res.IsError, !tt.ok, toolText(res))
		}
	}
	policy, err := env.Catalog.Policy(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policy.CheckRead("SELECT id FROM orders WHERE to_tsvector('english', notes) @@ plainto_tsquery('english', 'gift')", 10); err != nil {
		t.Errorf("full-text read refused: %v", err)
	}
	if _, err := policy.CheckRead("SELECT to_tsvector('public.secrets', 'x')", 10); err == nil {
		t.Error("a configuration looked up by a qualified name was allowed")
	}
}

// TestSearchPathOperators: IN lists, BETWEEN, IS DISTINCT FROM, NULLIF,
// CASE x WHEN and JOIN USING cannot name a qualified operator; while a
// scope schema defines a same-named operator they are refused, and the
// admin's operator never runs. Without one they pass.
func TestSearchPathOperators(t *testing.T) {
	env, url := writeGuardEnv(t)
	statements := []string{
		"UPDATE orders SET notes = 'x' WHERE id IN (1, 2)",
		"UPDATE orders SET notes = 'x' WHERE id NOT IN (1, 2)",
		"UPDATE orders SET notes = 'x' WHERE id BETWEEN 1 AND 2",
		"UPDATE orders SET notes = 'x' WHERE id IS DISTINCT FROM 3 AND id < 3",
		"UPDATE orders SET notes = NULLIF(notes, 'y') WHERE id = 1",
		"UPDATE orders SET notes = CASE id WHEN 1 THEN 'a' ELSE 'b' END WHERE id < 3",
		"INSERT INTO orders_copy SELECT o.id FROM orders o JOIN invoices i USING (id) WHERE o.id = 1",
	}
	execAdmin(t, url, "CREATE TABLE public.orders_copy (id bigint PRIMARY KEY)")
	for _, sql := range statements {
		if res := dryRun(t, env, sql); res.IsError {
			t.Errorf("%s: refused without a shadowing operator: %s", sql, toolText(res))
		}
	}
	execAdmin(t, url, `CREATE SEQUENCE public.eq_calls;
		CREATE FUNCTION public.sneaky_eq(bigint, integer) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS
		$$BEGIN PERFORM nextval('public.eq_calls'); RETURN true; END$$;
		CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = public.sneaky_eq);
		CREATE OPERATOR public.>= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = public.sneaky_eq);
		CREATE OPERATOR public.<> (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = public.sneaky_eq);`)
	calls := sequenceState(t, url, "public.eq_calls")
	for _, sql := range statements {
		res := dryRun(t, env, sql)
		if !res.IsError || !strings.Contains(toolText(res), "operator_not_allowed") {
			t.Errorf("%s: not refused while public defines its own operator: %s", sql, toolText(res))
		}
	}
	if res := dryRun(t, env, "UPDATE orders SET notes = 'x' WHERE id = 1"); res.IsError {
		t.Errorf("a plain comparison, which runs qualified, was refused: %s", toolText(res))
	}
	if got := sequenceState(t, url, "public.eq_calls"); got != calls {
		t.Fatalf("the admin's operator ran: eq_calls %s, was %s", got, calls)
	}
}
