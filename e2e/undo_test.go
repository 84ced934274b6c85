package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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
    "allow": ["update", "insert", "delete", "add_column", "create_index", "drop_column", "drop_table", "rename",
      "alter_column_type", "set_default", "drop_default", "set_not_null", "drop_not_null"],
    "ticket_pattern": "^[A-Z]+-[0-9]+$",
    "own_tables": true,
    "undo": {"retention": "7d"}
  }
}`, name))
}

// commitAs commits change id as reviewer who through the binary.
func commitAs(t *testing.T, url, id, who string) {
	t.Helper()
	if out, code := reviewer(t, url, "commit", id, "--reviewer", who); code != 0 {
		t.Fatalf("commit %s as %s (%d): %s", id, who, code, out)
	}
}

// unchangedSince fails unless the database is as it was in before.
func unchangedSince(t *testing.T, url string, before pgtest.Snapshot, when string) {
	t.Helper()
	if d := before.Diff(pgtest.Fingerprint(t, url).DatabaseOnly()); d != "" {
		t.Fatalf("%s:\n%s", when, d)
	}
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
	commitAs(t, url, id, "bob")
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
	unchangedSince(t, url, before, "the reverted tables differ from before the change")
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
	commitAs(t, url, id, "bob")
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
	commitAs(t, url, rid, "alice")
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
	commitAs(t, url, id, "bob")
	rid := revert(t, url, id)
	commitAs(t, url, rid, "alice")
	unchangedSince(t, url, before, "after the revert")

	// DDL a revert cannot undo is said to be final before anyone approves
	// it; what the trash keeps is not.
	for _, tc := range []struct {
		sql   string
		final bool
	}{
		{"ALTER TABLE invoices DROP COLUMN id", true}, // the key the values would be kept by
		{"ALTER TABLE invoices RENAME TO bills; DROP TABLE bills", false},
		{"ALTER TABLE orders ADD COLUMN priority int; ALTER TABLE orders DROP COLUMN priority", false},
		{"ALTER TABLE orders DROP COLUMN notes", false},
		{"DROP TABLE invoices", false},
		{"ALTER TABLE orders RENAME COLUMN notes TO remarks", false},
		{"ALTER TABLE invoices RENAME TO bills", false},
	} {
		res := call(t, c, "migrate_dry_run", map[string]any{"sql": tc.sql})
		text := resultText(res)
		if strings.Contains(text, "UN101") != tc.final {
			t.Errorf("dry run of %s with undo on, UN101 expected %v:\n%s", tc.sql, tc.final, text)
		}
	}
}

// TestUndoDropTable: an approved DROP TABLE moves the table into
// airlock_trash; the revert brings it back with its rows, indexes,
// foreign keys and comments, to a database identical to before.
func TestUndoDropTable(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, undoScopeFile(t, "undo_drop_table"))
	before := pgtest.Fingerprint(t, url).DatabaseOnly()
	id := applyChange(t, c, "OPS-720", "DELETE FROM invoices WHERE id % 2 = 0; DROP TABLE invoices")
	commitAs(t, url, id, "bob")
	if n := count(t, url, "SELECT count(*) FROM pg_class WHERE oid = to_regclass('public.invoices')"); n != 0 {
		t.Fatal("invoices is still there after the approved DROP TABLE")
	}
	// The trash holds no reference to live rows: an order an invoice in
	// the trash points at can be deleted (its foreign key went with it).
	if n := count(t, url, "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'airlock_trash' AND c.contype = 'f'"); n != 0 {
		t.Fatalf("%d foreign keys in airlock_trash", n)
	}
	if show, _ := reviewer(t, url, "show", id); !strings.Contains(show, "Revert: possible until") || !strings.Contains(show, "SET SCHEMA") {
		t.Fatalf("show does not offer to bring the table back:\n%s", show)
	}
	rid := revert(t, url, id)
	if show, _ := reviewer(t, url, "show", rid); !strings.Contains(show, "first: ALTER TABLE \"airlock_trash\".") {
		t.Fatalf("show of the revert does not say it brings the table back first:\n%s", show)
	}
	commitAs(t, url, rid, "alice")
	unchangedSince(t, url, before, "after the revert")
}

// TestUndoDropColumn: an approved DROP COLUMN keeps the column's values
// in airlock_trash; the revert adds the column again (as the last one:
// PostgreSQL cannot put it back in its place) with its values, default,
// NOT NULL, comment, index and check constraint.
func TestUndoDropColumn(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	admin := pgtest.Connect(t, url)
	for _, s := range []string{
		"CREATE INDEX orders_notes ON orders (lower(notes))",
		"ALTER TABLE orders ADD CONSTRAINT orders_notes_short CHECK (length(notes) < 10000)",
		"UPDATE orders SET notes = 'n' || id WHERE notes IS NULL AND id % 7 = 0",
	} {
		if _, err := admin.Exec(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	c := startAirlock(t, url, undoScopeFile(t, "undo_drop_column"))
	const content = "SELECT md5(string_agg(concat_ws('|', id, customer_id, status, total, created_at, notes), E'\\n' ORDER BY id)) FROM orders"
	var want string
	if err := admin.QueryRow(context.Background(), content).Scan(&want); err != nil {
		t.Fatal(err)
	}
	// The column comes back last: its position, and the row text that
	// follows the column order, are the only things allowed to differ.
	moved := func(k string) bool {
		return strings.HasPrefix(k, "column public.orders.") || k == "rows public.orders" || strings.Contains(k, "airlock_trash")
	}
	before := pgtest.Fingerprint(t, url).DatabaseOnly()
	beforeCols := map[string]string{}
	for k, v := range before.Items {
		if strings.HasPrefix(k, "column public.orders.") {
			beforeCols[k] = regexp.MustCompile(` position=\d+`).ReplaceAllString(v, "")
		}
	}
	id := applyChange(t, c, "OPS-721", "ALTER TABLE orders DROP COLUMN notes")
	commitAs(t, url, id, "bob")
	if n := count(t, url, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.orders'::regclass AND attname = 'notes' AND NOT attisdropped"); n != 0 {
		t.Fatal("orders.notes is still there after the approved DROP COLUMN")
	}
	rid := revert(t, url, id)
	commitAs(t, url, rid, "alice")
	after := pgtest.Fingerprint(t, url).DatabaseOnly()
	if d := before.Except(moved).Diff(after.Except(moved)); d != "" {
		t.Fatalf("after the revert:\n%s", d)
	}
	for k, v := range after.Items {
		if strings.HasPrefix(k, "column public.orders.") {
			if got := regexp.MustCompile(` position=\d+`).ReplaceAllString(v, ""); got != beforeCols[k] {
				t.Errorf("%s: %s, before the change %s", k, got, beforeCols[k])
			}
			delete(beforeCols, k)
		}
	}
	if len(beforeCols) != 0 {
		t.Errorf("columns missing after the revert: %v", beforeCols)
	}
	var got string
	if err := admin.QueryRow(context.Background(), content).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatal("orders' rows differ from before the change after the revert")
	}
}

// TestUndoRename: renamed tables and columns are renamed back.
func TestUndoRename(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, undoScopeFile(t, "undo_rename"))
	before := pgtest.Fingerprint(t, url).DatabaseOnly()
	id := applyChange(t, c, "OPS-722", "ALTER TABLE orders RENAME COLUMN notes TO remarks; ALTER TABLE invoices RENAME TO bills")
	commitAs(t, url, id, "bob")
	rid := revert(t, url, id)
	commitAs(t, url, rid, "alice")
	unchangedSince(t, url, before, "after the revert")
}

// TestUndoColumnChanges: a type change that rounds every value, a new
// default and a dropped NOT NULL are undone: the values come back from
// their copy, the definitions from the trash entries.
func TestUndoColumnChanges(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, undoScopeFile(t, "undo_columns"))
	before := pgtest.Fingerprint(t, url).DatabaseOnly()
	id := applyChange(t, c, "OPS-724", "ALTER TABLE orders ALTER COLUMN total TYPE integer USING round(total)::integer; "+
		"ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'cancelled', ALTER COLUMN created_at DROP NOT NULL; "+
		"UPDATE orders SET total = total + 1 WHERE id < 50")
	commitAs(t, url, id, "bob")
	if d := before.Diff(pgtest.Fingerprint(t, url).DatabaseOnly()); d == "" {
		t.Fatal("the change did not reach the database")
	}
	rid := revert(t, url, id)
	commitAs(t, url, rid, "alice")
	unchangedSince(t, url, before, "after the revert")
}

// TestCascadeOutsideTheScope: foreign key actions run with the
// referencing table owner's rights, so a DELETE or UPDATE of a write
// table could change rows of tables the scope does not let the agent
// write, or even see. Any statement whose ON DELETE/ON UPDATE action
// reached such rows fails, nothing is applied or held, and the answer
// does not name the hidden tables; statements that cascade nowhere pass.
func TestCascadeOutsideTheScope(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	admin := pgtest.Connect(t, url)
	lone := count(t, url, "SELECT min(id) FROM orders o WHERE id > 8 AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.order_id = o.id)")
	other := count(t, url, "SELECT min(id) FROM orders o WHERE id > "+fmt.Sprint(lone)+" AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.order_id = o.id)")
	for _, s := range []string{
		"CREATE TABLE public.hidden_notes (id int PRIMARY KEY, order_id bigint REFERENCES public.orders ON DELETE SET NULL)",
		fmt.Sprintf("INSERT INTO public.hidden_notes VALUES (1, %d)", lone),
		"CREATE TABLE public.hidden_refs (order_id bigint REFERENCES public.orders ON UPDATE CASCADE)",
		fmt.Sprintf("INSERT INTO public.hidden_refs VALUES (%d)", other),
	} {
		if _, err := admin.Exec(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	// replay last: it leaves a reference behind.
	for _, mode := range []string{"prepared", "replay"} {
		t.Run(mode, func(t *testing.T) {
			c := startAirlock(t, url, writeScopeFile(t, fmt.Sprintf(`{
  "name": "cascade_%s",
  "read": {"tables": {"public.orders": {}}},
  "write": {"mode": %q, "tables": ["public.orders"], "allow": ["update", "delete"],
    "ticket_pattern": "^[A-Z]+-[0-9]+$", "own_tables": true}
}`, mode, mode)))
			before := pgtest.Fingerprint(t, url).DatabaseOnly()
			for _, sql := range []string{
				"DELETE FROM orders WHERE id IN (SELECT min(id) FROM orders WHERE id < 50)", // invoices: ON DELETE CASCADE
				fmt.Sprintf("DELETE FROM orders WHERE id = %d", lone),                       // hidden_notes: ON DELETE SET NULL
				fmt.Sprintf("UPDATE orders SET id = id + 1000000 WHERE id = %d", other),     // hidden_refs: ON UPDATE CASCADE
				"UPDATE orders SET status = 'paid' WHERE id = 1; DELETE FROM orders WHERE id < 30",
			} {
				for _, tool := range []string{"migrate_dry_run", "apply_migration_with_ticket"} {
					args := map[string]any{"sql": sql}
					if tool == "apply_migration_with_ticket" {
						args["ticket"], args["summary"] = "OPS-726", "cascade"
					}
					res := call(t, c, tool, args)
					text := resultText(res)
					if !res.IsError || !strings.Contains(text, "cascade_outside_scope") {
						t.Fatalf("%s of %s:\n%s", tool, sql, text)
					}
					for _, hidden := range []string{"invoices", "hidden_notes", "hidden_refs"} {
						if strings.Contains(text, hidden) {
							t.Fatalf("%s of %s names %s:\n%s", tool, sql, hidden, text)
						}
					}
				}
			}
			unchangedSince(t, url, before, "refused cascades changed the database")
			if n := count(t, url, "SELECT count(*) FROM airlock.changes WHERE status = 'pending' AND scope = 'cascade_"+mode+"'"); n != 0 {
				t.Fatalf("%d changes held after refused cascades", n)
			}
			// Cascading nowhere is fine.
			free := fmt.Sprintf("DELETE FROM orders WHERE id = %d", count(t, url, fmt.Sprintf(
				"SELECT min(id) FROM orders o WHERE id > %d AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.order_id = o.id)", other)))
			if res := call(t, c, "migrate_dry_run", map[string]any{"sql": free}); res.IsError {
				t.Fatalf("dry run of a DELETE that cascades nowhere:\n%s", resultText(res))
			}
			if mode != "replay" {
				return
			}
			// A row that comes to reference the order between the dry run
			// and the commit: the commit's own watch refuses it.
			id := applyChange(t, c, "OPS-727", free)
			target := count(t, url, "SELECT min(id) FROM orders o WHERE id > "+fmt.Sprint(other)+" AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.order_id = o.id)")
			if _, err := admin.Exec(context.Background(), fmt.Sprintf("INSERT INTO public.hidden_notes VALUES (2, %d)", target)); err != nil {
				t.Fatal(err)
			}
			held := pgtest.Fingerprint(t, url).DatabaseOnly()
			if out, code := reviewer(t, url, "commit", id, "--reviewer", "bob"); code == 0 || !strings.Contains(out, "outside the scope's write tables") {
				t.Fatalf("commit of a delete that now cascades outside the scope (%d): %s", code, out)
			}
			if d := held.Diff(pgtest.Fingerprint(t, url).DatabaseOnly()); d != "" {
				t.Fatalf("the refused commit changed the database:\n%s", d)
			}
		})
	}
}

// TestUndoRetentionPurge: once a capture expires the reaper purges its
// rows and its trash, and the change can no longer be reverted.
func TestUndoRetentionPurge(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, undoScopeFile(t, "undo_purge"))
	id := applyChange(t, c, "OPS-723", "UPDATE orders SET status = 'cancelled' WHERE id < 10; ALTER TABLE orders DROP COLUMN notes; DROP TABLE invoices")
	commitAs(t, url, id, "bob")
	trash := "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'airlock_trash' AND c.relkind = 'r'"
	if n := count(t, url, trash); n != 2 {
		t.Fatalf("%d tables in airlock_trash after the commit, want 2 (invoices, orders.notes)", n)
	}
	if n := count(t, url, "SELECT count(*) FROM airlock.undo_rows WHERE change_id = '"+id+"'"); n == 0 {
		t.Fatal("no rows captured")
	}
	admin := pgtest.Connect(t, url)
	if _, err := admin.Exec(context.Background(), "UPDATE airlock.undo_captures SET expires_at = now() - interval '1 second' WHERE change_id = $1", id); err != nil {
		t.Fatal(err)
	}
	// The reaper runs in every serve that holds changes.
	reaperScope := writeScopeFile(t, `{"name": "undo_purge_reaper", "read": {"tables": {"public.orders": {}}},
  "write": {"mode": "replay", "tables": ["public.orders"], "allow": ["update"], "ticket_pattern": "^[A-Z]+-[0-9]+$", "own_tables": true}}`)
	startAirlockWith(t, url, reaperScope, "--allow-owner", "--local-writes", "--reap-interval", "1s")
	deadline := time.Now().Add(20 * time.Second)
	for count(t, url, trash) != 0 || count(t, url, "SELECT count(*) FROM airlock.undo_rows WHERE change_id = '"+id+"'") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the capture and the trash are still there 20 s after expiry: %d trash tables", count(t, url, trash))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if show, _ := reviewer(t, url, "show", id); !strings.Contains(show, "not possible any more") {
		t.Fatalf("show after the purge:\n%s", show)
	}
	if out, code := reviewer(t, url, "revert", id, "--reviewer", "alice"); code == 0 {
		t.Fatalf("revert after the purge succeeded: %s", out)
	}
}

func TestUndoCapturesOutOfTheAgentsReach(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	scope := undoScopeFile(t, "undo_reach")
	c := startAirlock(t, url, scope)
	login := "undo_agent_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
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
	before := pgtest.Fingerprint(t, url).DatabaseOnly()
	id := applyChange(t, c, "OPS-704", "UPDATE orders SET notes = 'x' WHERE id = 1; DROP TABLE invoices")
	commitAs(t, url, id, "bob")
	agent := pgtest.Connect(t, strings.Replace(url, "postgres@", login+"@", 1))
	var trashed string
	if err := conn.QueryRow(t.Context(), "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'airlock_trash' AND relkind = 'r'").Scan(&trashed); err != nil {
		t.Fatalf("the dropped table is not in the trash: %v", err)
	}
	inTrash := pgx.Identifier{"airlock_trash", trashed}.Sanitize()
	trashedRows := count(t, url, "SELECT count(*) FROM "+inTrash)
	for _, sql := range []string{
		"SELECT count(*) FROM airlock.undo_rows", "SELECT count(*) FROM airlock.undo_captures",
		"DELETE FROM airlock.undo_captures", "UPDATE airlock.undo_rows SET image = '{}'",
		// The trash: read it, take it back, empty it, plant something in it,
		// or forge an entry the reaper would drop.
		"SELECT count(*) FROM " + inTrash, "DELETE FROM " + inTrash, "DROP TABLE " + inTrash,
		"ALTER TABLE " + inTrash + " SET SCHEMA public", "CREATE TABLE airlock_trash.planted (id int)",
		"INSERT INTO airlock.undo_captures (change_id, scope, expires_at, trash) VALUES (gen_random_uuid(), 'undo_reach', now() - interval '1 day', '[{\"trash\": \"" + trashed + "\"}]')",
		"SELECT airlock.capture_rows()",
	} {
		if _, err := agent.Exec(t.Context(), sql); err == nil {
			t.Errorf("the agent login ran %s", sql)
		}
	}
	// Purging is open to every login, and purges only what has expired.
	if _, err := agent.Exec(t.Context(), "SELECT airlock.purge_undo()"); err != nil {
		t.Errorf("purge_undo as the agent login: %v", err)
	}
	if n := count(t, url, "SELECT count(*) FROM airlock.undo_rows WHERE change_id = '"+id+"'"); n != 2 {
		t.Fatalf("%d captured images, want 2 (before and after)", n)
	}
	if n := count(t, url, "SELECT count(*) FROM "+inTrash); n != trashedRows {
		t.Fatalf("the trash holds %d rows of the dropped table, had %d", n, trashedRows)
	}
	rid := revert(t, url, id)
	commitAs(t, url, rid, "alice")
	unchangedSince(t, url, before, "after the attempts and the revert")
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
			commitAs(t, url, rid, "alice")
			unchangedSince(t, url, before, "after the revert")
		})
	}
}
