package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// The write guard's headline attacks, driven through the built binary the
// way an agent would (docs/architecture.md, Write statements: the read rules
// everywhere). Each is tried on both write tools: migrate_dry_run runs the
// statements (and rolls back), apply_migration_with_ticket runs them and
// records a change for review.

func writeCalls(sql string) []struct {
	tool string
	args map[string]any
} {
	return []struct {
		tool string
		args map[string]any
	}{
		{"migrate_dry_run", map[string]any{"sql": sql}},
		{"apply_migration_with_ticket", map[string]any{"ticket": "OPS-1", "summary": "e2e", "sql": sql}},
	}
}

// TestWriteRegclassOracle: a reg* cast looks any name up, so its success or
// error would tell whether a table outside the scope exists. In a write
// statement it is refused before anything runs, with byte-identical answers
// for a table that exists and one that does not, neither naming it.
func TestWriteRegclassOracle(t *testing.T) {
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, "support.json")
	before := pgtest.Fingerprint(t, url)
	for _, tmpl := range []string{
		"UPDATE orders SET notes = '%s'::regclass::text WHERE id = 1",
		"INSERT INTO invoices (order_id, amount, issued_on) VALUES (1, ('%s'::regclass)::oid::int, '2024-01-01')",
		"DELETE FROM invoices WHERE id = 1 AND CAST('%s' AS pg_catalog.regclass) IS NOT NULL",
		"ALTER TABLE orders ADD COLUMN probe regclass DEFAULT '%s'",
	} {
		for _, w := range writeCalls("") {
			exists := map[string]any{}
			missing := map[string]any{}
			for k, v := range w.args {
				exists[k], missing[k] = v, v
			}
			exists["sql"] = fmt.Sprintf(tmpl, "public.secrets")
			missing["sql"] = fmt.Sprintf(tmpl, "public.no_such_table")
			a := call(t, c, w.tool, exists)
			b := call(t, c, w.tool, missing)
			if !a.IsError || resultCode(a) != "type_not_allowed" {
				t.Fatalf("%s %q: %s, want type_not_allowed", w.tool, exists["sql"], resultText(a))
			}
			if resultText(a) != resultText(b) {
				t.Errorf("%s %q: an existing and a missing table answer differently:\n%s\n%s", w.tool, tmpl, resultText(a), resultText(b))
			}
			if strings.Contains(resultText(a), "secrets") || strings.Contains(resultText(a), "SENTINEL") {
				t.Errorf("%s: the answer names the probed table: %s", w.tool, resultText(a))
			}
		}
	}
	if n := count(t, url, "SELECT count(*) FROM airlock.changes"); n != 0 {
		t.Fatalf("%d changes recorded for refused migrations", n)
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("refused migrations changed the database:\n%s", d)
	}
}

// TestWriteDefaultOtherSequence: a DEFAULT nextval on a sequence outside
// the scope, once committed, would make every insert advance it, and the
// agent reads the values back. It is refused before the dry run (whose ADD
// COLUMN would already call nextval once per row) and the sequence never
// moves.
func TestWriteDefaultOtherSequence(t *testing.T) {
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, "support.json")
	seq := func() string {
		var v int64
		var called bool
		if err := pgtest.Connect(t, url).QueryRow(context.Background(), "SELECT last_value, is_called FROM public.ticket_seq").Scan(&v, &called); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d/%t", v, called)
	}
	was := seq()
	before := pgtest.Fingerprint(t, url)
	for _, sql := range []string{
		"ALTER TABLE orders ADD COLUMN ticket bigint DEFAULT nextval('public.ticket_seq')",
		"ALTER TABLE orders ADD COLUMN ticket bigint DEFAULT nextval('ticket_seq'::regclass)",
		"CREATE TABLE orders_archive (id bigint DEFAULT nextval('public.ticket_seq'), note text); INSERT INTO orders_archive (note) VALUES ('x')",
		"ALTER TABLE orders ADD COLUMN ticket bigint DEFAULT nextval('public.customers_id_seq')",
	} {
		for _, w := range writeCalls(sql) {
			res := call(t, c, w.tool, w.args)
			if !res.IsError || resultCode(res) != "sequence_not_writable" {
				t.Fatalf("%s %q: %s, want sequence_not_writable", w.tool, sql, resultText(res))
			}
		}
	}
	// The same answer for a sequence that does not exist.
	a := call(t, c, "migrate_dry_run", map[string]any{"sql": "ALTER TABLE orders ADD COLUMN t bigint DEFAULT nextval('public.ticket_seq')"})
	b := call(t, c, "migrate_dry_run", map[string]any{"sql": "ALTER TABLE orders ADD COLUMN t bigint DEFAULT nextval('public.no_such_seq')"})
	if strings.ReplaceAll(resultText(b), "no_such_seq", "ticket_seq") != resultText(a) {
		t.Errorf("an existing and a missing sequence answer differently:\n%s\n%s", resultText(a), resultText(b))
	}
	if got := seq(); got != was {
		t.Fatalf("public.ticket_seq advanced: %s, was %s", got, was)
	}
	if n := count(t, url, "SELECT count(*) FROM airlock.changes"); n != 0 {
		t.Fatalf("%d changes recorded for refused migrations", n)
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("refused migrations changed the database:\n%s", d)
	}
}

// TestWriteShadowedFunctions: the guard approves upper() and + as
// pg_catalog's, and pg_catalog's is what PostgreSQL runs: the admin's
// functions never run, their secret never reaches the agent, and nothing
// changes but what was approved.
func TestWriteShadowedFunctions(t *testing.T) {
	url := pgtest.NewDatabase(t)
	if _, err := pgtest.Connect(t, url).Exec(context.Background(), pgtest.ShadowingObjects); err != nil {
		t.Fatal(err)
	}
	c := startAirlock(t, url, "support.json")
	calls := func() string {
		var v int64
		var called bool
		if err := pgtest.Connect(t, url).QueryRow(context.Background(), "SELECT last_value, is_called FROM public.shadow_calls").Scan(&v, &called); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d/%t", v, called)
	}
	for _, sql := range []string{
		"UPDATE orders SET notes = upper(id::int) WHERE id = 1",
		"UPDATE orders SET notes = (id + notes)::text WHERE id = 1",
		"INSERT INTO invoices (order_id, amount, issued_on) SELECT id, length(upper(id::int)), '2024-01-01' FROM orders WHERE id = 1",
		"ALTER TABLE orders ADD CONSTRAINT shout CHECK (upper(id::int) <> '')",
		"ALTER TABLE orders ADD COLUMN shout text GENERATED ALWAYS AS (upper(id::int)) STORED",
		"CREATE INDEX ON orders ((id + notes))",
	} {
		// Control: as written, run directly, the statement reaches the
		// admin's function and its secret.
		conn := pgtest.Connect(t, url)
		tx, err := conn.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(context.Background(), sql)
		tx.Rollback(context.Background())
		if err == nil || !strings.Contains(err.Error(), "SENTINEL-SECRET") {
			t.Fatalf("control %q: %v, want the admin's function to leak", sql, err)
		}
		was := calls()
		before := pgtest.Fingerprint(t, url)
		for _, w := range writeCalls(sql) {
			res := call(t, c, w.tool, w.args)
			text := resultText(res)
			if strings.Contains(text, "SENTINEL") || strings.Contains(text, "leak:") {
				t.Fatalf("%s %q: the admin's function ran and its secret reached the agent: %s", w.tool, sql, text)
			}
			if !res.IsError {
				t.Fatalf("%s %q succeeded: pg_catalog has no such function, so something else ran: %s", w.tool, sql, text)
			}
		}
		if got := calls(); got != was {
			t.Fatalf("%q: the admin's function ran (shadow_calls %s, was %s)", sql, got, was)
		}
		if n := count(t, url, "SELECT count(*) FROM airlock.changes"); n != 0 {
			t.Fatalf("%q: %d changes recorded for failed migrations", sql, n)
		}
		if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
			t.Fatalf("%q changed the database:\n%s", sql, d)
		}
	}

	// What the agent meant still works, and commits exactly as approved.
	id := applyChange(t, c, "OPS-2", "UPDATE orders SET notes = upper(status) || '-' || (id + 1)::text WHERE id = 1")
	if out, code := reviewer(t, url, "commit", id, "--reviewer", "alice"); code != 0 {
		t.Fatalf("commit (%d):\n%s", code, out)
	}
	var notes string
	if err := pgtest.Connect(t, url).QueryRow(context.Background(), "SELECT notes FROM orders WHERE id = 1").Scan(&notes); err != nil {
		t.Fatal(err)
	}
	if notes == "" || strings.Contains(notes, "SENTINEL") || !strings.HasSuffix(notes, "-2") || strings.ToUpper(notes) != notes {
		t.Fatalf("notes after commit = %q", notes)
	}
}
