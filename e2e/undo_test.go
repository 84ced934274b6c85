package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// Undo through the built binary (docs/architecture.md, Undo): a reviewer
// who approved a mistake gets the data back with revert and commit; rows
// others changed since are never overwritten; the agent's login cannot
// read the captures.

func undoScopeFile(t *testing.T, name string) string {
	t.Helper()
	return writeScopeFile(t, fmt.Sprintf(`{
  "name": %q,
  "read": {"tables": {"public.orders": {}, "public.invoices": {}}},
  "write": {
    "mode": "replay",
    "tables": ["public.orders", "public.invoices"],
    "allow": ["update", "insert", "delete", "add_column", "create_index", "drop_column"],
    "ticket_pattern": "^[A-Z]+-[0-9]+$",
    "own_tables": true,
    "undo": {"retention": "7d"}
  }
}`, name))
}

var pendingRevert = regexp.MustCompile(`pending: revert ([0-9a-f-]{36})`)

func revert(t *testing.T, url, id string, extra ...string) string {
	t.Helper()
	out, code := reviewer(t, url, append([]string{"revert", id, "--reviewer", "alice"}, extra...)...)
	m := pendingRevert.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("revert (%d): %s", code, out)
	}
	return m[1]
}

func TestUndoDeleteEverything(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, undoScopeFile(t, "undo_all"))
	before := pgtest.Fingerprint(t, url).DatabaseOnly()
	before0 := count(t, url, "SELECT count(*) FROM orders")

	id := applyChange(t, c, "OPS-701", "DELETE FROM invoices WHERE id > 0; DELETE FROM orders WHERE id > 0")
	if out, code := reviewer(t, url, "commit", id, "--reviewer", "bob"); code != 0 {
		t.Fatalf("commit (%d): %s", code, out)
	}
	if n := count(t, url, "SELECT count(*) FROM orders"); n != 0 {
		t.Fatalf("%d orders left after the approved mistake", n)
	}
	show, _ := reviewer(t, url, "show", id)
	if !strings.Contains(show, "Revert: possible until") {
		t.Fatalf("show does not say the change can be reverted:\n%s", show)
	}
	rid := revert(t, url, id)
	rshow, _ := reviewer(t, url, "show", rid)
	if !strings.Contains(rshow, fmt.Sprintf("put back %d deleted row(s)", before0)) {
		t.Fatalf("show of the revert:\n%s", rshow)
	}
	if out, code := reviewer(t, url, "commit", rid, "--reviewer", "alice"); code != 0 || !strings.HasPrefix(out, "committed:") {
		t.Fatalf("commit the revert (%d): %s", code, out)
	}
	if d := before.Diff(pgtest.Fingerprint(t, url).DatabaseOnly()); d != "" {
		t.Fatalf("the reverted tables differ from before the change:\n%s", d)
	}
	// A revert is reverted like any change.
	if out, code := reviewer(t, url, "show", rid); code != 0 || !strings.Contains(out, "Revert: possible") {
		t.Fatalf("show of the committed revert (%d):\n%s", code, out)
	}
}

func TestUndoRefusesToOverwrite(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, undoScopeFile(t, "undo_conflict"))
	var was string
	statuses := "SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM orders WHERE id BETWEEN 1 AND 10 AND id NOT IN (3, 7)"
	if err := pgtest.Connect(t, url).QueryRow(t.Context(), statuses).Scan(&was); err != nil {
		t.Fatal(err)
	}
	id := applyChange(t, c, "OPS-702", "UPDATE orders SET status = 'cancelled' WHERE id BETWEEN 1 AND 10")
	if out, code := reviewer(t, url, "commit", id, "--reviewer", "bob"); code != 0 {
		t.Fatalf("commit (%d): %s", code, out)
	}
	conn := pgtest.Connect(t, url)
	// Someone else changes two of the rows afterwards.
	if _, err := conn.Exec(t.Context(), "UPDATE orders SET status = 'shipped' WHERE id IN (3, 7)"); err != nil {
		t.Fatal(err)
	}
	snap := pgtest.Fingerprint(t, url).DatabaseOnly()
	out, code := reviewer(t, url, "revert", id, "--reviewer", "alice")
	if code == 0 || !strings.Contains(out, "changed since") || !strings.Contains(out, `{"id": 3}`) || !strings.Contains(out, `{"id": 7}`) {
		t.Fatalf("revert over changed rows (%d): %s", code, out)
	}
	if d := snap.Diff(pgtest.Fingerprint(t, url).DatabaseOnly()); d != "" {
		t.Fatalf("a refused revert changed the data:\n%s", d)
	}
	rid := revert(t, url, id, "--only-unchanged")
	if out, code := reviewer(t, url, "commit", rid, "--reviewer", "alice"); code != 0 {
		t.Fatalf("commit (%d): %s", code, out)
	}
	var now string
	if err := pgtest.Connect(t, url).QueryRow(t.Context(), statuses).Scan(&now); err != nil || now != was {
		t.Fatalf("the unchanged rows are %s, were %s (%v)", now, was, err)
	}
	if n := count(t, url, "SELECT count(*) FROM orders WHERE id IN (3, 7) AND status = 'shipped'"); n != 2 {
		t.Fatal("the revert overwrote rows changed since")
	}
}

func TestUndoDDL(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, undoScopeFile(t, "undo_ddl"))
	before := pgtest.Fingerprint(t, url).DatabaseOnly()
	id := applyChange(t, c, "OPS-703", "ALTER TABLE orders ADD COLUMN priority integer; CREATE INDEX orders_priority ON orders (priority); UPDATE orders SET priority = 1 WHERE id < 5")
	if out, code := reviewer(t, url, "commit", id, "--reviewer", "bob"); code != 0 {
		t.Fatalf("commit (%d): %s", code, out)
	}
	rid := revert(t, url, id)
	if out, code := reviewer(t, url, "commit", rid, "--reviewer", "alice"); code != 0 {
		t.Fatalf("commit the revert (%d): %s", code, out)
	}
	if d := before.Diff(pgtest.Fingerprint(t, url).DatabaseOnly()); d != "" {
		t.Fatalf("after the revert:\n%s", d)
	}

	// DDL a revert cannot undo is said to be final before anyone approves it.
	res := call(t, c, "migrate_dry_run", map[string]any{"sql": "ALTER TABLE orders DROP COLUMN notes"})
	if text := resultText(res); !strings.Contains(text, "UN101") || !strings.Contains(text, "high") {
		t.Fatalf("dry run of DROP COLUMN with undo on:\n%s", text)
	}
}

func TestUndoCapturesOutOfTheAgentsReach(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	scope := undoScopeFile(t, "undo_reach")
	c := startAirlock(t, url, scope)
	id := applyChange(t, c, "OPS-704", "UPDATE orders SET notes = 'x' WHERE id = 1")
	if out, code := reviewer(t, url, "commit", id, "--reviewer", "bob"); code != 0 {
		t.Fatalf("commit (%d): %s", code, out)
	}
	login := "undo_agent_" + strings.ReplaceAll(id[:8], "-", "")
	conn := pgtest.Connect(t, url)
	if _, err := conn.Exec(t.Context(), "CREATE ROLE "+login+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := pgtest.Connect(t, pgtest.AdminURL(t))
		c.Exec(t.Context(), "DROP OWNED BY "+login)
		c.Exec(t.Context(), "DROP ROLE "+login)
	})
	if out, code := reviewer(t, url, "scope", "apply", "--scope", scope, "--grant-to", login); code != 0 {
		t.Fatalf("scope apply (%d): %s", code, out)
	}
	agent := pgtest.Connect(t, strings.Replace(url, "postgres@", login+"@", 1))
	for _, sql := range []string{
		"SELECT count(*) FROM airlock.undo_rows", "SELECT count(*) FROM airlock.undo_captures",
		"DELETE FROM airlock.undo_captures", "UPDATE airlock.undo_rows SET image = '{}'",
	} {
		if _, err := agent.Exec(t.Context(), sql); err == nil {
			t.Errorf("the agent login ran %s", sql)
		}
	}
	if n := count(t, url, "SELECT count(*) FROM airlock.undo_rows WHERE change_id = '"+id+"'"); n != 2 {
		t.Fatalf("%d captured images, want 2 (before and after)", n)
	}
}

// TestUndoEveryWriteMode: a change committed with COMMIT PREPARED or
// merged from a branch is captured like a replayed one, and reverted to
// the same database as before it.
func TestUndoEveryWriteMode(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct{ name, write, finish string }{
		{"prepared", `"mode": "prepared"`, "commit"},
		{"branch", `"mode": "branch", "branch": {"strategy": "schema", "sample_rows": 100000}`, "merge"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			url := pgtest.NewDatabase(t)
			// customers is read so that the schema branch has the table
			// orders' foreign key points at.
			scope := writeScopeFile(t, fmt.Sprintf(`{
  "name": "undo_%s",
  "read": {"tables": {"public.orders": {}, "public.invoices": {}, "public.customers": {}}},
  "write": {
    %s,
    "tables": ["public.orders", "public.invoices"],
    "allow": ["update", "insert", "delete"],
    "ticket_pattern": "^[A-Z]+-[0-9]+$",
    "own_tables": true
  }
}`, mode.name, mode.write))
			c := startAirlock(t, url, scope)
			before := pgtest.Fingerprint(t, url).DatabaseOnly()
			id := applyChange(t, c, "OPS-710", "DELETE FROM invoices WHERE id % 3 = 0; UPDATE orders SET status = 'cancelled' WHERE id < 20; INSERT INTO orders (id, customer_id, status, total, created_at) SELECT id + 90000, customer_id, 'pending', 1, created_at FROM orders WHERE id < 4")
			subject := id
			if mode.finish == "merge" {
				out, _ := reviewer(t, url, "branches")
				subject = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`).FindString(out)
			}
			if out, code := reviewer(t, url, mode.finish, subject, "--reviewer", "bob"); code != 0 {
				t.Fatalf("%s (%d): %s", mode.finish, code, out)
			}
			if d := before.Diff(pgtest.Fingerprint(t, url).DatabaseOnly()); d == "" {
				t.Fatal("the change did not reach the database")
			}
			if show, _ := reviewer(t, url, "show", id); !strings.Contains(show, "Revert: possible until") {
				t.Fatalf("show does not offer a revert:\n%s", show)
			}
			rid := revert(t, url, id)
			if out, code := reviewer(t, url, "commit", rid, "--reviewer", "alice"); code != 0 {
				t.Fatalf("commit the revert (%d): %s", code, out)
			}
			if d := before.Diff(pgtest.Fingerprint(t, url).DatabaseOnly()); d != "" {
				t.Fatalf("after the revert:\n%s", d)
			}
		})
	}
}
