package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/roles"
	"github.com/airlock-dev/airlock/scopes"
)

// leastPrivilegeURL creates a login role with no privileges of its own,
// applies the scope's roles with membership for it (as an admin would
// with `airlock scope apply --grant-to`), and returns a URL that logs in
// as it.
func leastPrivilegeURL(t *testing.T, adminURL string, scope *scopes.Scope) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	login := "airlock_login_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	if _, err := admin.Exec(ctx, "CREATE ROLE "+pgx.Identifier{login}.Sanitize()+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	dbname := adminURL[strings.LastIndex(adminURL, "/")+1:]
	dbname = dbname[:strings.IndexByte(dbname, '?')]
	if _, err := admin.Exec(ctx, fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", pgx.Identifier{dbname}.Sanitize(), pgx.Identifier{login}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	if err := audit.EnsureSchema(ctx, admin, review.Schema); err != nil {
		t.Fatal(err)
	}
	// One login that reads and writes: the service's (the harness serves
	// reads and writes in one process).
	if _, err := roles.Apply(ctx, admin, scope, roles.Options{Service: []string{login}}); err != nil {
		t.Fatalf("roles.Apply: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pgtest.AdminURL(t))
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP OWNED BY "+pgx.Identifier{login}.Sanitize())
		c.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{login}.Sanitize())
	})
	return strings.Replace(adminURL, "postgres@", login+"@", 1)
}

// TestDatabaseLayerAlone switches the parser guard off (a test-only seam)
// and replays the red-team list: PostgreSQL's own privileges, through the
// scope's roles and SET LOCAL ROLE, must still refuse everything out of
// scope, with the database unchanged and nothing out of scope returned.
func TestDatabaseLayerAlone(t *testing.T) {
	url := pgtest.NewDatabase(t)
	scope := loadScope(t, "support.json")
	loginURL := leastPrivilegeURL(t, url, scope)
	pool, err := pgxpool.New(context.Background(), loginURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	h := startHarness(t, loginURL, pool, scope, false)
	h.srv.UnsafeSkipGuard()
	before := pgtest.Fingerprint(t, url)

	reads := []string{
		"SELECT token FROM public.secrets",
		"SELECT key FROM internal.api_keys",
		"SELECT * FROM public.secret_view",
		"SELECT public.leak_secrets()",
		"SELECT * FROM public.leak_secrets()",
		"SELECT ssn FROM public.customers",
		// Masked columns: the role is granted the masked view only.
		"SELECT email FROM public.customers",
		"SELECT id FROM public.customers WHERE email LIKE 'a%'",
		"SELECT count(*) FROM public.customers GROUP BY phone",
		"SELECT ipad, opad FROM airlock_support.mask_key",
		"SELECT * FROM public.customers",
		"SELECT to_json(c) FROM public.customers c",
		"SELECT id FROM public.customers WHERE ssn LIKE '900%'",
		"SELECT pg_read_file('/etc/passwd')",
		"SELECT lo_import('/etc/passwd')",
		"SELECT set_config('role', 'postgres', true), (SELECT count(*) FROM public.secrets)",
		"SET ROLE postgres",
		"SET SESSION AUTHORIZATION postgres",
		"SELECT public.evil_write()",
		"SELECT nextval('public.ticket_seq')",
		"COPY (SELECT 1) TO PROGRAM 'touch /tmp/airlock-pwned'",
		"CREATE TEMP TABLE t AS SELECT 1",
		"DELETE FROM public.orders",
		"SELECT query_to_xml('select token from public.secrets', true, true, '')",
	}
	for _, sql := range reads {
		t.Run("read "+sql, func(t *testing.T) {
			res := h.query(sql)
			if !res.IsError && (strings.Contains(text(res), "SENTINEL") || strings.Contains(text(res), "@example.com") ||
				strings.Contains(text(res), "ipad")) {
				t.Fatalf("leaked: %s", text(res))
			}
			if !res.IsError && (strings.Contains(sql, "ssn") || strings.Contains(sql, "secret") || strings.Contains(sql, "api_keys") || strings.Contains(sql, "customers c")) {
				t.Fatalf("out-of-scope read succeeded: %s", text(res))
			}
			assertNoLeak(t, res)
		})
	}
	writes := []string{
		"DROP TABLE secrets",
		"DROP TABLE customers",
		"DELETE FROM public.customers",
		"UPDATE customers SET ssn = 'x'",
		"INSERT INTO orders (id, customer_id, status, total, created_at) SELECT 900000 + id, 1, 'pending', 0, now() FROM public.secrets",
		"CREATE ROLE evil SUPERUSER",
		"GRANT SELECT ON secrets TO PUBLIC",
		"ALTER SYSTEM SET fsync = off",
		"TRUNCATE secrets",
		"ALTER TABLE secrets ADD COLUMN x int",
		"SELECT set_config('role', 'postgres', true); DELETE FROM public.secrets",
	}
	for _, sql := range writes {
		t.Run("write "+sql, func(t *testing.T) {
			res := h.call(scopes.ToolApplyMigration, map[string]any{"ticket": "OPS-1", "summary": "attack", "sql": sql})
			if !res.IsError {
				t.Fatalf("held for review with the guard off (the role should have refused it): %s", text(res))
			}
			assertNoLeak(t, res)
		})
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("database changed with the guard off:\n%s", d)
	}
	// In-scope work still works through the roles: a masked table only
	// through its view (the guard rewrites reads to it; off, the view
	// must be named).
	if res := h.query(`SELECT id, name, email FROM airlock_support."public.customers" ORDER BY id LIMIT 2`); res.IsError ||
		!strings.Contains(text(res), "masked:") || strings.Contains(text(res), "@example.com") {
		t.Fatalf("in-scope read through the masked view: %s", text(res))
	}
	if res := h.query("SELECT id, status FROM public.orders ORDER BY id LIMIT 2"); res.IsError {
		t.Fatalf("in-scope read refused by the role: %s", text(res))
	}
}
