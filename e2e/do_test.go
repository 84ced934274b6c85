package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// A scope may allow DO blocks; nothing inside one may leave the write role
// (docs/architecture.md, DO blocks). The server here logs in as a
// superuser, the worst case: a plain DO could RESET ROLE to it.
const doScope = `{
  "name": "doscope",
  "database": {"url_env": "AIRLOCK_DATABASE_URL"},
  "read": {"tables": {"public.orders": {}, "public.invoices": {}}},
  "write": {
    "mode": "replay",
    "tables": ["public.orders", "public.invoices"],
    "allow": ["update", "insert", "delete", "do"],
    "ticket_pattern": "^[A-Z]+-[0-9]+$"
  }
}`

func writeScopeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scope.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDoBlocksKeepTheWriteRole: every way out of the write role a DO block
// can try fails, the database is unchanged, and no secret reaches the
// agent, on the dry run and on the reviewer's commit.
func TestDoBlocksKeepTheWriteRole(t *testing.T) {
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, writeScopeFile(t, doScope))
	const leak = "DECLARE s text; BEGIN SELECT string_agg(token, ',') INTO s FROM public.secrets; RAISE EXCEPTION 'got %', s; END"
	attacks := []struct{ name, body string }{
		{"reset role", "BEGIN RESET ROLE; END"},
		{"reset role then read", "BEGIN RESET ROLE; " + strings.TrimPrefix(leak, "DECLARE s text; BEGIN ")},
		{"set role to the login", "BEGIN SET ROLE postgres; END"},
		{"set role none", "BEGIN SET ROLE NONE; END"},
		{"set local role", "BEGIN SET LOCAL ROLE postgres; END"},
		{"set_config role", "BEGIN PERFORM set_config('role', 'postgres', true); END"},
		{"set_config role session-wide", "BEGIN PERFORM set_config('role', 'none', false); END"},
		{"session authorization", "BEGIN SET SESSION AUTHORIZATION postgres; END"},
		{"reset all", "BEGIN RESET ALL; " + strings.TrimPrefix(leak, "DECLARE s text; BEGIN ")},
		{"dynamic reset role", "BEGIN EXECUTE 'RESET ROLE'; END"},
		{"nested DO", "BEGIN EXECUTE 'DO $x$BEGIN RESET ROLE; END$x$'; END"},
		{"read a table outside the scope", leak},
		{"airlock's bookkeeping", "BEGIN UPDATE airlock.changes SET status = 'committed'; END"},
		{"end the transaction", "BEGIN COMMIT; END"},
		{"another session", "BEGIN PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid(); END"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			before := pgtest.Fingerprint(t, url)
			sql := "DO $airlock_test$" + a.body + "$airlock_test$"
			res := call(t, c, "migrate_dry_run", map[string]any{"sql": sql})
			text := resultText(res)
			if strings.Contains(text, "SENTINEL") {
				t.Fatalf("a secret reached the agent:\n%s", text)
			}
			if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
				t.Fatalf("the DO block changed the database:\n%s", d)
			}
			switch a.name {
			case "another session":
				// Signalling other backends needs rights the write role
				// lacks: the block runs, and every other session lives on.
			default:
				if !res.IsError {
					t.Fatalf("the DO block ran:\n%s", text)
				}
			}
		})
	}

	t.Run("the block runs as the write role, also when a reviewer commits it", func(t *testing.T) {
		res := call(t, c, "migrate_dry_run", map[string]any{"sql": "DO $$BEGIN RAISE EXCEPTION 'running as %/%', current_user, session_user; END$$"})
		if text := resultText(res); !strings.Contains(text, "running as airlock_doscope_write/") {
			t.Fatalf("current_user is not the write role:\n%s", text)
		}
		id := applyChange(t, c, "OPS-31", "DO $$BEGIN UPDATE orders SET notes = current_user WHERE id = 1; END$$")
		if out, code := reviewer(t, url, "commit", id, "--reviewer", "alice"); code != 0 {
			t.Fatalf("commit (%d):\n%s", code, out)
		}
		if n := count(t, url, "SELECT count(*) FROM orders WHERE id = 1 AND notes = 'airlock_doscope_write'"); n != 1 {
			t.Fatal("the committed block did not run as the write role")
		}
	})

}

// TestDoRunnerPrivileges: the runner exists only for scopes that allow DO,
// belongs to the write role, and nobody else may execute it; tested as
// plain SQL with airlock out of the way.
func TestDoRunnerPrivileges(t *testing.T) {
	url := pgtest.NewDatabase(t)
	startAirlock(t, url, writeScopeFile(t, doScope))
	conn := pgtest.Connect(t, url)
	ctx := context.Background()
	var owner string
	var secdef bool
	if err := conn.QueryRow(ctx, `SELECT pg_get_userbyid(proowner), prosecdef FROM pg_proc WHERE oid = 'airlock_doscope.run_do(text)'::regprocedure`).Scan(&owner, &secdef); err != nil {
		t.Fatal(err)
	}
	if owner != "airlock_doscope_write" || !secdef {
		t.Fatalf("runner owned by %s, security definer %v", owner, secdef)
	}
	for _, role := range []string{"airlock_doscope_read", "public"} {
		var may bool
		if err := conn.QueryRow(ctx, "SELECT has_function_privilege($1, 'airlock_doscope.run_do(text)', 'EXECUTE')", role).Scan(&may); err != nil {
			t.Fatal(err)
		}
		if may {
			t.Errorf("%s may execute the DO runner", role)
		}
	}
	// The read role calling it directly, as an agent login would: refused.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE airlock_doscope_read"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT airlock_doscope.run_do('BEGIN DELETE FROM orders; END')"); err == nil {
		t.Fatal("the read role ran a DO block through the runner")
	}
}
