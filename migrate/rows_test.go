package migrate

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// TestRowImageDrift replays statements whose row counts stay the same while
// the rows or values they reach change between the dry run and the commit.
// Each such replay must drift and leave the database as it was; replays
// whose only differences are the clock, random values or sequences must
// commit.
func TestRowImageDrift(t *testing.T) {
	const cfg = "public.cfg"
	tests := []struct {
		name    string
		setup   string // before the dry run
		stmts   []stmt
		between string // after the dry run, before the replay
		drift   bool
	}{
		{
			name:    "delete reaches other rows with the same count",
			stmts:   []stmt{{sql: "DELETE FROM public.orders WHERE status = 'void'", kind: "delete", targets: []string{orders}}},
			setup:   "UPDATE public.orders SET status = 'void' WHERE id IN (1, 2)",
			between: "UPDATE public.orders SET status = 'new' WHERE id = 1; UPDATE public.orders SET status = 'void' WHERE id = 3",
			drift:   true,
		},
		{
			name:    "delete of a row whose contents changed",
			stmts:   []stmt{{sql: "DELETE FROM public.orders WHERE id = 5", kind: "delete", targets: []string{orders}}},
			between: "UPDATE public.orders SET total = 99999 WHERE id = 5",
			drift:   true,
		},
		{
			name: "update whose predicate depends on data picks other rows",
			stmts: []stmt{{sql: "UPDATE public.orders SET note = 'x' WHERE id = (SELECT v FROM public.cfg)",
				kind: "update", targets: []string{orders}, reads: []string{cfg}}},
			between: "UPDATE public.cfg SET v = 8",
			drift:   true,
		},
		{
			name: "update whose new value depends on the time of the run",
			stmts: []stmt{{sql: "UPDATE public.orders SET status = CASE WHEN (SELECT v FROM public.cfg) > 10 THEN 'void' ELSE status END WHERE id = 7",
				kind: "update", targets: []string{orders}, reads: []string{cfg}}},
			between: "UPDATE public.cfg SET v = 11",
			drift:   true,
		},
		{
			name:    "insert select copies other rows",
			stmts:   []stmt{{sql: "INSERT INTO public.products (id, name, price) SELECT id + 100, name, price FROM public.products WHERE price > 20", kind: "insert", targets: []string{"public.products"}}},
			between: "UPDATE public.products SET price = 1 WHERE id = 10; UPDATE public.products SET price = 30 WHERE id = 1",
			drift:   true,
		},
		{
			name:    "same rows in another physical order",
			stmts:   []stmt{{sql: "UPDATE public.orders SET note = 'x' WHERE status = 'new'", kind: "update", targets: []string{orders}}},
			between: "UPDATE public.orders SET total = total WHERE id < 50",
			drift:   false,
		},
		{
			name: "clock, random and sequence values",
			stmts: []stmt{
				{sql: "UPDATE public.orders SET note = now()::text WHERE id = 3", kind: "update", targets: []string{orders}},
				{sql: "INSERT INTO public.orders (customer_id, total, note) VALUES (1, 5, gen_random_uuid()::text), (2, 6, CURRENT_TIMESTAMP::text)", kind: "insert", targets: []string{orders}},
				{sql: "INSERT INTO public.customers (id, name) VALUES (nextval('public.customers_id_seq'), 'n')", kind: "insert", targets: []string{"public.customers"}},
			},
			drift: false,
		},
		{
			name:    "delete from a table without a key",
			setup:   "CREATE TABLE public.nokey (a int, b text); INSERT INTO public.nokey SELECT i, 'x' FROM generate_series(1, 10) i",
			stmts:   []stmt{{sql: "DELETE FROM public.nokey WHERE b = 'x' AND a <= (SELECT v FROM public.cfg)", kind: "delete", targets: []string{"public.nokey"}}},
			between: "UPDATE public.nokey SET b = 'y' WHERE a = 1; UPDATE public.nokey SET b = 'x' WHERE a = 1",
			drift:   false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := fixtureDB(t)
			conn := pgtest.Connect(t, url)
			ctx := testContext(t)
			if _, err := conn.Exec(ctx, "CREATE TABLE public.cfg (v int); INSERT INTO public.cfg VALUES (4); "+tt.setup); err != nil {
				t.Fatal(err)
			}
			plan := planOf(tt.stmts...)
			dry, err := Run(ctx, conn, plan, Options{}, EndRollback, RunArg{})
			if err != nil {
				t.Fatal(err)
			}
			expected := dry.Effects()
			for i, s := range dry.Statements {
				if s.Compared == "" {
					t.Errorf("statement %d: the report does not say what a commit compares", i+1)
				}
			}
			if tt.between != "" {
				if _, err := conn.Exec(ctx, tt.between); err != nil {
					t.Fatal(err)
				}
			}
			before := pgtest.Fingerprint(t, url)
			_, err = Run(ctx, conn, plan, Options{}, EndCommitIfSame, RunArg{Expected: &expected})
			var drift *Drift
			switch {
			case tt.drift && !errors.As(err, &drift):
				t.Fatalf("replay err = %v, want a drift", err)
			case tt.drift:
				if !strings.Contains(strings.Join(drift.Differences, "\n"), "not the same rows or values") {
					t.Errorf("differences = %q, want one about the rows", drift.Differences)
				}
				if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
					t.Fatalf("a drifted replay changed the database:\n%s", d)
				}
			case err != nil:
				t.Fatalf("replay: %v", err)
			}
		})
	}
}

// TestRowImageColumns checks what the image holds: never a column the role
// cannot read, never a column set from the clock, and a replay images the
// dry run's columns.
func TestRowImageColumns(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	ctx := testContext(t)
	role := "rowimage_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))
	if _, err := conn.Exec(ctx, `DROP ROLE IF EXISTS `+role+`; CREATE ROLE `+role+`;
		GRANT USAGE ON SCHEMA public TO `+role+`;
		GRANT SELECT (id, status, total), UPDATE, DELETE ON public.orders TO `+role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = pgtest.Connect(t, url).Exec(ctx, "DROP OWNED BY "+role+"; DROP ROLE "+role)
	})
	plan := planOf(
		stmt{sql: "UPDATE public.orders SET status = 'x', note = now()::text WHERE id = 1", kind: "update", targets: []string{orders}},
		stmt{sql: "DELETE FROM public.orders WHERE id = 2", kind: "delete", targets: []string{orders}},
	)
	rep, err := Run(ctx, conn, plan, Options{Role: role}, EndRollback, RunArg{})
	if err != nil {
		t.Fatal(err)
	}
	e := rep.Effects()
	if got := strings.Join(e.Rows[0].Columns, ","); got != "id,status" {
		t.Errorf("update image = %s, want id,status (note is set from the clock)", got)
	}
	if got := strings.Join(e.Rows[1].Columns, ","); got != "id,total,status" {
		t.Errorf("delete image = %s, want the readable columns id,total,status", got)
	}
	if e.Rows[0].Salt == "" || e.Rows[0].Salt != e.Rows[1].Salt || e.Rows[0].Hash == "" {
		t.Errorf("images lack a shared salt or a hash: %+v", e.Rows)
	}
	if _, err := Run(ctx, conn, plan, Options{Role: role}, EndCommitIfSame, RunArg{Expected: &e}); err != nil {
		t.Fatalf("replay: %v", err)
	}
}

// TestEveryRow: an UPDATE or DELETE whose WHERE clause matches every row
// of its table is rated like one without a WHERE clause, on a table of any
// size; one that leaves a row is not.
func TestEveryRow(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	ctx := testContext(t)
	for _, tt := range []struct {
		sql, kind string
		every     bool
	}{
		{"DELETE FROM public.products WHERE price > 0", "delete", true},
		{"DELETE FROM public.products WHERE id IS NOT NULL OR id IS NULL", "delete", true},
		{"DELETE FROM public.products WHERE price > 3", "delete", false},
		{"UPDATE public.products SET name = name WHERE true", "update", true},
		{"UPDATE public.products SET name = name WHERE id < 10", "update", false},
		{"UPDATE public.orders SET note = note WHERE customer_id > 0", "update", true},
	} {
		t.Run(tt.sql, func(t *testing.T) {
			target := "public.products"
			if strings.Contains(tt.sql, "orders") {
				target = orders
			}
			rep, err := Run(ctx, conn, planOf(stmt{sql: tt.sql, kind: tt.kind, targets: []string{target}}), Options{}, EndRollback, RunArg{})
			if err != nil {
				t.Fatal(err)
			}
			got := false
			for _, f := range rep.Warnings {
				got = got || f.Code == "RA102"
			}
			if got != tt.every {
				t.Fatalf("RA102 reported %v, want %v:\n%s", got, tt.every, rep.Text())
			}
			if tt.every && rep.Risk != RiskHigh {
				t.Errorf("risk %s, want high", rep.Risk)
			}
		})
	}
}

// TestPreparedBlockingLock: a prepared change that would keep ACCESS
// EXCLUSIVE on a table in use is refused unless the scope opts in, and
// nothing is prepared; a lock on a table the change creates is no reason.
func TestPreparedBlockingLock(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	ctx := testContext(t)
	before := pgtest.Fingerprint(t, url)
	plan := planOf(stmt{sql: "ALTER TABLE public.orders ADD COLUMN discount integer", kind: "add_column", targets: []string{orders}})
	_, err := Run(ctx, conn, plan, Options{}, EndPrepare, RunArg{GID: "airlock_" + uuid.NewString()})
	var blocking *BlockingLockError
	if !errors.As(err, &blocking) || len(blocking.Locks) != 1 || blocking.Locks[0].Relation != orders {
		t.Fatalf("err = %v, want a BlockingLockError on %s", err, orders)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM pg_prepared_xacts"); n != 0 {
		t.Fatalf("%d prepared transactions left", n)
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("a refused prepare changed the database:\n%s", d)
	}
	gid := "airlock_" + uuid.NewString()
	plan = planOf(stmt{sql: "CREATE TABLE public.fresh (id int)", kind: "create_table", targets: []string{"public.fresh"}})
	if _, err := Run(ctx, conn, plan, Options{}, EndPrepare, RunArg{GID: gid}); err != nil {
		t.Fatalf("a new table's lock refused: %v", err)
	}
	if _, err := conn.Exec(ctx, "ROLLBACK PREPARED '"+gid+"'"); err != nil {
		t.Fatal(err)
	}
}
