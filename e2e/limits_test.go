package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// Held changes have limits, and every connection that ran agent SQL comes
// back clean (docs/architecture.md, Held changes; Connections come back
// clean). Each test checks the database afterwards.

func limitsScope(name, mode, extra string) string {
	return fmt.Sprintf(`{
  "name": %q,
  "database": {"url_env": "AIRLOCK_DATABASE_URL"},
  "read": {"tables": {"public.orders": {}, "public.invoices": {}}%s},
  "write": {
    "mode": %q,
    "tables": ["public.orders", "public.invoices"],
    "allow": ["update", "insert", "delete", "add_column", "create_index", "do"],
    "ticket_pattern": "^[A-Z]+-[0-9]+$",
    "own_tables": true%s
  }
}`, name, readExtra(extra), mode, writeExtra(extra))
}

func readExtra(extra string) string {
	if strings.HasPrefix(extra, "read:") {
		return ", " + strings.TrimPrefix(extra, "read:")
	}
	return ""
}

func writeExtra(extra string) string {
	if extra != "" && !strings.HasPrefix(extra, "read:") {
		return ", " + extra
	}
	return ""
}

// applyRaw calls apply_migration_with_ticket and returns the refusal code
// ("" when the change is pending) and the answer's text.
func applyRaw(t *testing.T, c *client.Client, ticket, sql string) (string, string) {
	t.Helper()
	res := call(t, c, "apply_migration_with_ticket", map[string]any{"ticket": ticket, "summary": "limits " + ticket, "sql": sql})
	return resultCode(res), resultText(res)
}

// TestMaxPending: a session past write.max_pending_per_session, and a
// scope past write.max_pending, are refused before anything runs; deciding
// a change frees its slot.
func TestMaxPending(t *testing.T) {
	url := pgtest.NewDatabase(t)
	scope := writeScopeFile(t, limitsScope("limited", "replay", `"max_pending": 3, "max_pending_per_session": 2`))
	a := startAirlock(t, url, scope)
	b := startAirlock(t, url, scope)
	first := applyChange(t, a, "OPS-41", "UPDATE orders SET notes = 'a' WHERE id = 1")
	applyChange(t, a, "OPS-42", "UPDATE orders SET notes = 'a' WHERE id = 2")
	before := pgtest.Fingerprint(t, url)
	if code, text := applyRaw(t, a, "OPS-43", "UPDATE orders SET notes = 'a' WHERE id = 3"); code != "too_many_pending" || !strings.Contains(text, "max_pending_per_session") {
		t.Fatalf("third change of a session: code %q\n%s", code, text)
	}
	applyChange(t, b, "OPS-44", "UPDATE orders SET notes = 'b' WHERE id = 4")
	if code, text := applyRaw(t, b, "OPS-45", "UPDATE orders SET notes = 'b' WHERE id = 5"); code != "too_many_pending" || !strings.Contains(text, "write.max_pending is 3") {
		t.Fatalf("fourth change of the scope: code %q\n%s", code, text)
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("refused changes changed the database:\n%s", d)
	}
	if n := count(t, url, "SELECT count(*) FROM airlock.changes WHERE status = 'pending'"); n != 3 {
		t.Fatalf("%d pending changes, want 3", n)
	}
	if out, code := reviewer(t, url, "rollback", first, "--reviewer", "alice"); code != 0 {
		t.Fatalf("rollback (%d):\n%s", code, out)
	}
	applyChange(t, a, "OPS-46", "UPDATE orders SET notes = 'a' WHERE id = 6")
}

// TestPreparedBlockingLocks: in prepared mode a change that would keep
// ACCESS EXCLUSIVE on a table in use is refused, and nothing is held; the
// dry run rates it high and says why. With write.allow_blocking_locks it
// is held, rated high.
func TestPreparedBlockingLocks(t *testing.T) {
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, writeScopeFile(t, limitsScope("heldlocks", "prepared", "")))
	const ddl = "ALTER TABLE orders ADD COLUMN discount integer"
	res := call(t, c, "migrate_dry_run", map[string]any{"sql": ddl})
	if text := resultText(res); res.IsError || !strings.Contains(text, "LK102") || !strings.Contains(text, `"risk":"high"`) {
		t.Fatalf("dry run does not rate the held lock:\n%s", text)
	}
	before := pgtest.Fingerprint(t, url)
	if code, text := applyRaw(t, c, "OPS-51", ddl); code != "blocking_lock" {
		t.Fatalf("code %q, want blocking_lock\n%s", code, text)
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("a refused change changed or locked the database:\n%s", d)
	}
	if n := count(t, url, "SELECT count(*) FROM pg_prepared_xacts"); n != 0 {
		t.Fatalf("%d prepared transactions held", n)
	}
	// Row locks only: held as usual.
	applyChange(t, c, "OPS-52", "UPDATE orders SET notes = 'x' WHERE id = 8")

	url2 := pgtest.NewDatabase(t)
	c2 := startAirlock(t, url2, writeScopeFile(t, limitsScope("heldlocksok", "prepared", `"allow_blocking_locks": true`)))
	id := applyChange(t, c2, "OPS-53", ddl)
	out, code := reviewer(t, url2, "show", id)
	if code != 0 || !strings.Contains(out, "LK102") || !strings.Contains(out, "risk: high") {
		t.Fatalf("show (%d):\n%s", code, out)
	}
	if out, code := reviewer(t, url2, "rollback", id, "--reviewer", "alice"); code != 0 {
		t.Fatalf("rollback (%d):\n%s", code, out)
	}
}

// TestPreparedSlots: airlock leaves part of max_prepared_transactions free
// for everyone else, and says so.
func TestPreparedSlots(t *testing.T) {
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, writeScopeFile(t, limitsScope("slots", "prepared", `"max_pending": 1000, "max_pending_per_session": 1000`)))
	conn := pgtest.Connect(t, url)
	var max, used int
	if err := conn.QueryRow(context.Background(), "SELECT current_setting('max_prepared_transactions')::int, (SELECT count(*) FROM pg_prepared_xacts)").Scan(&max, &used); err != nil {
		t.Fatal(err)
	}
	if max == 0 {
		t.Fatal("the test cluster has no prepared transactions")
	}
	var refused string
	for i := 0; i < max+1 && refused == ""; i++ {
		code, _ := applyRaw(t, c, fmt.Sprintf("OPS-%d", 600+i), fmt.Sprintf("UPDATE orders SET notes = 'slot' WHERE id = %d", 100+i))
		refused = code
	}
	if refused != "prepared_slots_full" {
		t.Fatalf("refusal %q, want prepared_slots_full", refused)
	}
	var now int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_prepared_xacts").Scan(&now); err != nil {
		t.Fatal(err)
	}
	if now >= max {
		t.Fatalf("airlock used all %d prepared transaction slots", max)
	}
	out, _ := reviewer(t, url, "pending")
	for _, id := range strings.Fields(out) {
		if len(id) == 36 && strings.Count(id, "-") == 4 {
			reviewer(t, url, "rollback", id, "--reviewer", "alice")
		}
	}
}

// TestSessionLocksDropped: a session-level advisory lock an agent's
// statement takes (through a DO block, or a function the scope lets reads
// call) is gone once the call answers; no pooled connection keeps it.
func TestSessionLocksDropped(t *testing.T) {
	url := pgtest.NewDatabase(t)
	conn := pgtest.Connect(t, url)
	if _, err := conn.Exec(context.Background(), `CREATE FUNCTION public.grab_lock(k int) RETURNS boolean
		LANGUAGE sql AS 'SELECT pg_advisory_lock(k) IS NOT NULL'`); err != nil {
		t.Fatal(err)
	}
	c := startAirlock(t, url, writeScopeFile(t, limitsScope("cleanlocks", "replay", `read:"functions": ["public.grab_lock"]`)))
	held := func() int { return count(t, url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") }

	res := call(t, c, "query_readonly", map[string]any{"sql": "SELECT public.grab_lock(4242)"})
	if res.IsError {
		t.Fatalf("read: %s", resultText(res))
	}
	if n := held(); n != 0 {
		t.Fatalf("%d advisory locks held after a read", n)
	}
	res = call(t, c, "migrate_dry_run", map[string]any{"sql": "DO $$BEGIN PERFORM pg_advisory_lock(4243); END$$"})
	if res.IsError {
		t.Fatalf("dry run: %s", resultText(res))
	}
	if n := held(); n != 0 {
		t.Fatalf("%d advisory locks held after a dry run", n)
	}
	id := applyChange(t, c, "OPS-61", "DO $$BEGIN PERFORM pg_advisory_lock(4244); UPDATE orders SET notes = 'l' WHERE id = 3; END$$")
	if n := held(); n != 0 {
		t.Fatalf("%d advisory locks held after apply", n)
	}
	if out, code := reviewer(t, url, "commit", id, "--reviewer", "alice"); code != 0 {
		t.Fatalf("commit (%d):\n%s", code, out)
	}
	if n := held(); n != 0 {
		t.Fatalf("%d advisory locks held after the commit", n)
	}
	// The pool still serves: the connections that held locks were cleaned
	// or replaced, not lost.
	for i := 0; i < 5; i++ {
		if res := call(t, c, "query_readonly", map[string]any{"sql": "SELECT count(*) FROM orders"}); res.IsError {
			t.Fatalf("read after cleanup: %s", resultText(res))
		}
	}
}

// TestDoctorForeignKeyOracle: PostgreSQL checks foreign keys without
// row-level security, so a write table's foreign key to a row-filtered
// table tells the agent which hidden keys exist; doctor says so.
func TestDoctorForeignKeyOracle(t *testing.T) {
	url := pgtest.NewDatabase(t)
	scope := writeScopeFile(t, `{
  "name": "fkoracle",
  "database": {"url_env": "AIRLOCK_DATABASE_URL"},
  "read": {"tables": {"public.customers": {"columns": ["id", "tenant_id", "name"], "row_filter": "tenant_id = 1"}, "public.orders": {}}},
  "write": {"tables": ["public.orders"], "allow": ["insert"], "ticket_pattern": "^[A-Z]+-[0-9]+$"}
}`)
	out, _ := reviewer(t, url, "doctor", "--scope", scope, "--allow-owner")
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "foreign keys") {
			line = l
		}
	}
	if !strings.Contains(line, "WARN") || !strings.Contains(out, "public.orders -> public.customers") {
		t.Fatalf("doctor does not warn about the foreign key:\n%s", out)
	}
}
