package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/sqlguard"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	orders    = "public.orders"
	customers = "public.customers"
	products  = "public.products"
)

// TestDryRunKinds dry-runs one statement of each kind: the database must
// be left exactly as it was, and the report must say what the statement
// did.
func TestDryRunKinds(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	ctx := testContext(t)

	tests := []struct {
		name    string
		stmt    stmt
		rows    int64
		locks   map[string]string // relation -> mode the statement took
		rewrite []string
		diff    []string // "object name action"
	}{
		{
			name:  "create_table",
			stmt:  stmt{sql: "CREATE TABLE public.refunds (id int PRIMARY KEY, amount int NOT NULL)", kind: "create_table", targets: []string{"public.refunds"}},
			locks: map[string]string{"public.refunds": accessExclusive},
			diff: []string{
				"table public.refunds added",
				"constraint public.refunds.refunds_pkey added",
				"index public.refunds_pkey added",
			},
		},
		{
			name:  "add_column without default",
			stmt:  stmt{sql: "ALTER TABLE public.orders ADD COLUMN discount integer", kind: "add_column", targets: []string{orders}},
			locks: map[string]string{orders: accessExclusive},
			diff:  []string{"column public.orders.discount added"},
		},
		{
			name:    "add_column with a volatile default",
			stmt:    stmt{sql: "ALTER TABLE public.orders ADD COLUMN token uuid DEFAULT gen_random_uuid()", kind: "add_column", targets: []string{orders}},
			locks:   map[string]string{orders: accessExclusive},
			rewrite: []string{orders},
			diff:    []string{"column public.orders.token added"},
		},
		{
			name:  "drop_column",
			stmt:  stmt{sql: "ALTER TABLE public.orders DROP COLUMN note", kind: "drop_column", targets: []string{orders}},
			locks: map[string]string{orders: accessExclusive},
			diff:  []string{"column public.orders.note dropped"},
		},
		{
			name:    "alter_column_type int to bigint",
			stmt:    stmt{sql: "ALTER TABLE public.orders ALTER COLUMN total TYPE bigint", kind: "alter_column_type", targets: []string{orders}},
			locks:   map[string]string{orders: accessExclusive},
			rewrite: []string{orders},
			diff:    []string{"column public.orders.total changed"},
		},
		{
			name:  "alter_column_type varchar widening",
			stmt:  stmt{sql: "ALTER TABLE public.orders ALTER COLUMN status TYPE varchar(50)", kind: "alter_column_type", targets: []string{orders}},
			locks: map[string]string{orders: accessExclusive},
			diff:  []string{"column public.orders.status changed"},
		},
		{
			name:  "set_not_null",
			stmt:  stmt{sql: "ALTER TABLE public.customers ALTER COLUMN email SET NOT NULL", kind: "set_not_null", targets: []string{customers}},
			locks: map[string]string{customers: accessExclusive},
			diff:  []string{"column public.customers.email changed"},
		},
		{
			name:  "add_constraint check",
			stmt:  stmt{sql: "ALTER TABLE public.orders ADD CONSTRAINT total_positive CHECK (total >= 0)", kind: "add_constraint", targets: []string{orders}},
			locks: map[string]string{orders: accessExclusive},
			diff:  []string{"constraint public.orders.total_positive added"},
		},
		{
			name: "add_constraint foreign key",
			stmt: stmt{sql: "ALTER TABLE public.orders ADD CONSTRAINT orders_product_fk FOREIGN KEY (product_id) REFERENCES public.products (id)",
				kind: "add_constraint", targets: []string{orders}},
			locks: map[string]string{orders: "ShareRowExclusiveLock", products: "ShareRowExclusiveLock"},
			diff:  []string{"constraint public.orders.orders_product_fk added"},
		},
		{
			name: "add_constraint not valid",
			stmt: stmt{sql: "ALTER TABLE public.orders ADD CONSTRAINT total_small CHECK (total < 1000000) NOT VALID",
				kind: "add_constraint", targets: []string{orders}, notValid: true},
			locks: map[string]string{orders: accessExclusive},
			diff:  []string{"constraint public.orders.total_small added"},
		},
		{
			name:  "create_index",
			stmt:  stmt{sql: "CREATE INDEX orders_status_idx ON public.orders (status)", kind: "create_index", targets: []string{orders}},
			locks: map[string]string{orders: "ShareLock"},
			diff:  []string{"index public.orders_status_idx added"},
		},
		{
			name:  "drop_index",
			stmt:  stmt{sql: "DROP INDEX public.orders_customer_idx", kind: "drop_index", targets: []string{"public.orders_customer_idx"}},
			locks: map[string]string{orders: accessExclusive},
			diff:  []string{"index public.orders_customer_idx dropped"},
		},
		{
			name:  "rename table",
			stmt:  stmt{sql: "ALTER TABLE public.products RENAME TO items", kind: "rename", targets: []string{products}},
			locks: map[string]string{"public.items": accessExclusive},
			diff: []string{
				"table public.products renamed",
				"index public.products_pkey changed",
			},
		},
		{
			name:  "rename column",
			stmt:  stmt{sql: "ALTER TABLE public.customers RENAME COLUMN plan TO tier", kind: "rename", targets: []string{customers}},
			locks: map[string]string{customers: accessExclusive},
			diff:  []string{"column public.customers.plan renamed"},
		},
		{
			name:  "insert",
			stmt:  stmt{sql: "INSERT INTO public.products (id, name, price) VALUES (100, 'x', 1.5), (101, 'y', 2)", kind: "insert", targets: []string{products}},
			rows:  2,
			locks: map[string]string{products: "RowExclusiveLock"},
		},
		{
			name:  "update with where",
			stmt:  stmt{sql: "UPDATE public.orders SET status = 'shipped' WHERE id <= 10", kind: "update", targets: []string{orders}},
			rows:  10,
			locks: map[string]string{orders: "RowExclusiveLock"},
		},
		{
			name:  "delete with where",
			stmt:  stmt{sql: "DELETE FROM public.orders WHERE id > 190", kind: "delete", targets: []string{orders}},
			rows:  10,
			locks: map[string]string{orders: "RowExclusiveLock"},
		},
		{
			name:  "delete without where",
			stmt:  stmt{sql: "DELETE FROM public.orders", kind: "delete", targets: []string{orders}, noWhere: true},
			rows:  200,
			locks: map[string]string{orders: "RowExclusiveLock"},
		},
		{
			name:  "truncate",
			stmt:  stmt{sql: "TRUNCATE public.orders", kind: "truncate", targets: []string{orders}},
			locks: map[string]string{orders: accessExclusive},
		},
		{
			name:  "drop_table",
			stmt:  stmt{sql: "DROP TABLE public.orders", kind: "drop_table", targets: []string{orders}},
			locks: map[string]string{orders: accessExclusive},
			diff:  []string{"table public.orders dropped"},
		},
		{
			name:  "comment",
			stmt:  stmt{sql: "COMMENT ON TABLE public.orders IS 'customer orders'", kind: "comment", targets: []string{orders}},
			locks: map[string]string{orders: "ShareUpdateExclusiveLock"},
			diff:  []string{"table public.orders changed"},
		},
		{
			name:  "create_view",
			stmt:  stmt{sql: "CREATE VIEW public.big_orders AS SELECT id, total FROM public.orders WHERE total > 100", kind: "create_view", targets: []string{"public.big_orders"}},
			locks: map[string]string{orders: "AccessShareLock", "public.big_orders": accessExclusive},
			diff:  []string{"view public.big_orders added"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := pgtest.Fingerprint(t, url)
			rep, err := Run(ctx, conn, planOf(tt.stmt), Options{}, EndRollback, RunArg{})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
				t.Fatalf("the dry run changed the database:\n%s", d)
			}
			if s := conn.PgConn().TxStatus(); s != 'I' {
				t.Fatalf("connection left in transaction status %q", s)
			}
			if len(rep.Statements) != 1 {
				t.Fatalf("got %d statement reports, want 1", len(rep.Statements))
			}
			sr := rep.Statements[0]
			if sr.Kind != tt.stmt.kind || sr.SQL != tt.stmt.sql {
				t.Errorf("statement = %q (%s), want %q (%s)", sr.SQL, sr.Kind, tt.stmt.sql, tt.stmt.kind)
			}
			if sr.RowsAffected != tt.rows {
				t.Errorf("rows affected = %d, want %d", sr.RowsAffected, tt.rows)
			}
			for rel, mode := range tt.locks {
				if got := lockMode(sr.Locks, rel); got != mode {
					t.Errorf("lock on %s = %q, want %q (locks %v)", rel, got, mode, sr.Locks)
				}
			}
			if sr.RewritesTable != (len(tt.rewrite) > 0) || !slices.Equal(sr.Rewritten, tt.rewrite) {
				t.Errorf("rewrites = %v %v, want %v", sr.RewritesTable, sr.Rewritten, tt.rewrite)
			}
			var diff []string
			for _, c := range rep.SchemaDiff.Changes {
				diff = append(diff, c.Object+" "+c.Name+" "+c.Action)
			}
			if !slices.Equal(diff, tt.diff) {
				t.Errorf("schema diff = %q, want %q\n%s", diff, tt.diff, rep.Text())
			}
			if !slices.Equal(rep.HeldLocks, sr.Locks) {
				t.Errorf("held locks %v, want the statement's %v", rep.HeldLocks, sr.Locks)
			}
		})
	}
}

// TestDryRunSeed dry-runs a migration against the shared seed database.
func TestDryRunSeed(t *testing.T) {
	url := pgtest.NewDatabase(t)
	conn := pgtest.Connect(t, url)
	before := pgtest.Fingerprint(t, url)
	plan := planOf(
		stmt{sql: "ALTER TABLE public.orders ADD COLUMN discount numeric(10,2)", kind: "add_column", targets: []string{orders}},
		stmt{sql: "UPDATE public.orders SET discount = 0 WHERE id <= 100", kind: "update", targets: []string{orders}},
		stmt{sql: "CREATE INDEX orders_discount_idx ON public.orders (discount)", kind: "create_index", targets: []string{orders}},
	)
	rep, err := Run(testContext(t), conn, plan, Options{}, EndRollback, RunArg{})
	if err != nil {
		t.Fatal(err)
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("the dry run changed the database:\n%s", d)
	}
	if rep.Statements[1].RowsAffected != 100 {
		t.Errorf("update affected %d rows, want 100", rep.Statements[1].RowsAffected)
	}
	if len(rep.SchemaDiff.Changes) != 2 {
		t.Errorf("schema diff: %v", rep.SchemaDiff.Changes)
	}
}

// TestExtendedProtocolOnly proves that a text holding two statements is
// refused by the server on the path agent SQL takes (execOne), even with a
// leading comment: the second statement never runs. Run refuses such a
// text, and transaction control, before it reaches the server at all.
func TestExtendedProtocolOnly(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	ctx := testContext(t)
	before := pgtest.Fingerprint(t, url)
	texts := []string{
		"UPDATE public.orders SET status = 'x'; DROP TABLE public.orders",
		"/* leading comment */ SELECT 1; DROP TABLE public.orders",
		"-- comment\nCOMMIT; DROP TABLE public.orders",
	}
	for _, sql := range texts {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = execOne(ctx, conn, sql)
		if code := sqlstate(err); code != "42601" {
			t.Errorf("%q: SQLSTATE %q, want 42601 (cannot insert multiple commands into a prepared statement): %v", sql, code, err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, sql := range append(texts, "COMMIT", "/* c */ PREPARE TRANSACTION 'x'", "ROLLBACK") {
		plan := planOf(
			stmt{sql: "UPDATE public.orders SET status = 'x' WHERE id = 1", kind: "update", targets: []string{orders}},
			stmt{sql: sql, kind: "update", targets: []string{orders}},
		)
		_, err := Run(ctx, conn, plan, Options{}, EndPrepare, RunArg{GID: "airlock_" + uuid.NewString()})
		var se *StatementError
		if !errors.As(err, &se) || se.Index != 1 || sqlstate(err) != "" {
			t.Fatalf("%q: err = %v, want statement 1 refused before reaching the server", sql, err)
		}
		if conn.PgConn().TxStatus() != 'I' {
			t.Fatalf("connection not idle after the failure")
		}
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("the database changed:\n%s", d)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM pg_prepared_xacts"); n != 0 {
		t.Errorf("%d prepared transactions left", n)
	}
}

func TestStatementErrorRollsBack(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	before := pgtest.Fingerprint(t, url)
	plan := planOf(
		stmt{sql: "UPDATE public.orders SET status = 'shipped' WHERE id < 5", kind: "update", targets: []string{orders}},
		stmt{sql: "INSERT INTO public.products (id, name, price) VALUES (1, 'duplicate', 1)", kind: "insert", targets: []string{products}},
	)
	_, err := Run(testContext(t), conn, plan, Options{}, EndCommitIfSame, RunArg{Expected: &Effects{RowsAffected: []int64{4, 1}}})
	var se *StatementError
	if !errors.As(err, &se) || se.Index != 1 {
		t.Fatalf("err = %v, want a StatementError for statement 1", err)
	}
	msg := err.Error()
	for _, want := range []string{"statement 2 (insert) failed", "duplicate key", "SQLSTATE 23505"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "(id)=(1)") {
		t.Errorf("error %q quotes row values from DETAIL", msg)
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("the database changed:\n%s", d)
	}
	if conn.PgConn().TxStatus() != 'I' {
		t.Fatal("connection not idle")
	}
}

func TestPrepare(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	other := pgtest.Connect(t, url)
	ctx := testContext(t)
	gid := "airlock_" + uuid.NewString()
	plan := planOf(
		stmt{sql: "ALTER TABLE public.orders ADD COLUMN discount integer", kind: "add_column", targets: []string{orders}},
		stmt{sql: "UPDATE public.customers SET plan = 'pro' WHERE id = 1", kind: "update", targets: []string{customers}},
	)
	hook := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO airlock.changes (id, status) VALUES ($1, 'pending')", gid)
		return err
	}
	rep, err := Run(ctx, conn, plan, Options{AllowBlockingLocks: true}, EndPrepare, RunArg{GID: gid, BeforeCommit: hook})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !slices.ContainsFunc(rep.Warnings, func(f sqlguard.Finding) bool { return f.Code == "LK102" && f.Level == "danger" }) || rep.Risk != RiskHigh {
		t.Errorf("a prepared change holding ACCESS EXCLUSIVE is not reported LK102 and high risk:\n%s", rep.Text())
	}
	wantHeld := []Lock{{customers, "RowExclusiveLock"}, {orders, accessExclusive}}
	if !slices.Equal(rep.HeldLocks, wantHeld) {
		t.Errorf("held locks = %v, want %v", rep.HeldLocks, wantHeld)
	}
	if conn.PgConn().TxStatus() != 'I' {
		t.Fatal("connection not idle after PREPARE")
	}
	if n := queryInt(t, other, "SELECT count(*) FROM pg_prepared_xacts WHERE gid = $1", gid); n != 1 {
		t.Fatalf("prepared transaction %s not listed", gid)
	}
	// The prepared transaction keeps its locks (pid is NULL for them).
	n := queryInt(t, other, `SELECT count(*) FROM pg_locks l JOIN pg_prepared_xacts p ON p.transaction = l.transactionid OR l.virtualtransaction = '-1/' || p.transaction
		WHERE p.gid = $1`, gid)
	held := queryInt(t, other, `SELECT count(*) FROM pg_locks WHERE pid IS NULL AND relation = 'public.orders'::regclass AND mode = 'AccessExclusiveLock'`)
	if n == 0 || held != 1 {
		t.Errorf("prepared transaction holds %d locks, ACCESS EXCLUSIVE on orders %d times", n, held)
	}
	// Run's own catalog reads must leave no lock behind: the prepared
	// transaction holds locks on exactly the relations the report lists.
	rows, _ := other.Query(ctx, `SELECT DISTINCT n.nspname || '.' || c.relname FROM pg_locks l
		JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE l.pid IS NULL AND l.locktype = 'relation' AND c.relkind = 'r' AND n.nspname = 'public' ORDER BY 1`)
	locked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{customers, orders}; !slices.Equal(locked, want) {
		t.Errorf("prepared transaction locks tables %v, want %v", locked, want)
	}
	// Not visible before COMMIT PREPARED.
	if n := queryInt(t, other, "SELECT count(*) FROM airlock.changes"); n != 0 {
		t.Errorf("hook's row visible before commit")
	}
	if _, err := other.Exec(ctx, "COMMIT PREPARED '"+gid+"'"); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, other, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'discount'"); n != 1 {
		t.Error("column not added after COMMIT PREPARED")
	}
	if n := queryInt(t, other, "SELECT count(*) FROM public.customers WHERE id = 1 AND plan = 'pro'"); n != 1 {
		t.Error("update not applied after COMMIT PREPARED")
	}
	if n := queryInt(t, other, "SELECT count(*) FROM airlock.changes WHERE id = $1", gid); n != 1 {
		t.Error("hook's row not committed with the migration")
	}
}

func TestPrepareRefused(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	ctx := testContext(t)

	t.Run("invalid gid", func(t *testing.T) {
		for _, gid := range []string{"", "airlock_x'; DROP TABLE orders; --", "other_" + uuid.NewString()} {
			_, err := Run(ctx, conn, planOf(stmt{sql: "SELECT 1", kind: "insert"}), Options{}, EndPrepare, RunArg{GID: gid})
			if err == nil || !strings.Contains(err.Error(), "invalid prepared transaction id") {
				t.Errorf("gid %q: err = %v", gid, err)
			}
		}
	})
	t.Run("gid in use", func(t *testing.T) {
		gid := "airlock_" + uuid.NewString()
		for i, id := range []int{1, 2} {
			plan := planOf(stmt{sql: fmt.Sprintf("UPDATE public.products SET name = 'p' WHERE id = %d", id), kind: "update", targets: []string{products}})
			_, err := Run(ctx, conn, plan, Options{}, EndPrepare, RunArg{GID: gid})
			if i == 0 && err != nil {
				t.Fatal(err)
			}
			if i == 1 && (err == nil || !strings.Contains(err.Error(), "already in use")) {
				t.Fatalf("second prepare with the same gid: err = %v", err)
			}
		}
		if _, err := conn.Exec(ctx, "ROLLBACK PREPARED '"+gid+"'"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("temporary objects", func(t *testing.T) {
		before := pgtest.Fingerprint(t, url)
		plan := planOf(stmt{sql: "CREATE TEMP TABLE scratch (x int)", kind: "create_table"})
		_, err := Run(ctx, conn, plan, Options{}, EndPrepare, RunArg{GID: "airlock_" + uuid.NewString()})
		if err == nil || !strings.Contains(err.Error(), "cannot be prepared") || sqlstate(err) != "0A000" {
			t.Fatalf("err = %v, want a clear cannot-be-prepared error", err)
		}
		if conn.IsClosed() || conn.PgConn().TxStatus() != 'I' {
			t.Fatal("connection not idle")
		}
		if n := queryInt(t, conn, "SELECT count(*) FROM pg_prepared_xacts"); n != 0 {
			t.Errorf("%d prepared transactions left", n)
		}
		if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
			t.Fatalf("the database changed:\n%s", d)
		}
	})
}

func TestCommitIfSame(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	ctx := testContext(t)
	plan := planOf(
		stmt{sql: "ALTER TABLE public.orders ADD COLUMN discount integer", kind: "add_column", targets: []string{orders}},
		stmt{sql: "UPDATE public.orders SET discount = 5 WHERE status = 'paid'", kind: "update", targets: []string{orders}},
	)
	dry, err := Run(ctx, conn, plan, Options{}, EndRollback, RunArg{})
	if err != nil {
		t.Fatal(err)
	}
	expected := dry.Effects()
	marked := false
	hook := func(ctx context.Context, tx pgx.Tx) error {
		marked = true
		_, err := tx.Exec(ctx, "INSERT INTO airlock.changes (id, status) VALUES ('c1', 'committed')")
		return err
	}
	rep, err := Run(ctx, conn, plan, Options{}, EndCommitIfSame, RunArg{Expected: &expected, BeforeCommit: hook})
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if !marked {
		t.Error("BeforeCommit hook not run")
	}
	if got := rep.Effects().Fingerprint(); got != expected.Fingerprint() {
		t.Errorf("replay effects fingerprint %s, dry run %s", got, expected.Fingerprint())
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM public.orders WHERE discount = 5"); n != 100 {
		t.Errorf("%d rows updated after commit, want 100", n)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM airlock.changes"); n != 1 {
		t.Error("hook's row not committed")
	}
}

func TestCommitIfSameDrift(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	other := pgtest.Connect(t, url)
	ctx := testContext(t)
	plan := planOf(stmt{sql: "UPDATE public.orders SET note = 'late' WHERE status = 'new'", kind: "update", targets: []string{orders}})
	dry, err := Run(ctx, conn, plan, Options{}, EndRollback, RunArg{})
	if err != nil {
		t.Fatal(err)
	}
	expected := dry.Effects()

	// Someone changes the rows between the dry run and the replay.
	if _, err := other.Exec(ctx, "UPDATE public.orders SET status = 'new' WHERE id <= 4"); err != nil {
		t.Fatal(err)
	}
	before := pgtest.Fingerprint(t, url)
	hookRan := false
	_, err = Run(ctx, conn, plan, Options{}, EndCommitIfSame, RunArg{Expected: &expected, BeforeCommit: func(context.Context, pgx.Tx) error {
		hookRan = true
		return nil
	}})
	var drift *Drift
	if !errors.As(err, &drift) {
		t.Fatalf("err = %v, want *Drift", err)
	}
	want := []string{"statement 1 affected 102 rows, expected 100"}
	if !slices.Equal(drift.Differences, want) {
		t.Errorf("differences = %q, want %q", drift.Differences, want)
	}
	if drift.Report == nil || drift.Report.Statements[0].RowsAffected != 102 {
		t.Errorf("drift report missing or wrong: %+v", drift.Report)
	}
	if hookRan {
		t.Error("BeforeCommit ran although the effects drifted")
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("a drifted replay changed the database:\n%s", d)
	}
	if conn.PgConn().TxStatus() != 'I' {
		t.Fatal("connection not idle")
	}
}

func TestBeforeCommitError(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	before := pgtest.Fingerprint(t, url)
	plan := planOf(stmt{sql: "DELETE FROM public.orders WHERE id = 1", kind: "delete", targets: []string{orders}})
	expected := Effects{RowsAffected: []int64{1}}
	_, err := Run(testContext(t), conn, plan, Options{}, EndCommitIfSame, RunArg{Expected: &expected,
		BeforeCommit: func(context.Context, pgx.Tx) error { return errors.New("change already decided") }})
	if err == nil || !strings.Contains(err.Error(), "change already decided") {
		t.Fatalf("err = %v", err)
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("the database changed:\n%s", d)
	}
}

func TestTimeouts(t *testing.T) {
	url := fixtureDB(t)
	ctx := testContext(t)

	t.Run("statement_timeout", func(t *testing.T) {
		conn := pgtest.Connect(t, url)
		plan := planOf(
			stmt{sql: "UPDATE public.orders SET note = 'x' WHERE id = 1", kind: "update", targets: []string{orders}},
			stmt{sql: "INSERT INTO public.products (id, name, price) SELECT 1000, 'slow', 1 FROM pg_sleep(5)", kind: "insert", targets: []string{products}},
		)
		start := time.Now()
		_, err := Run(ctx, conn, plan, Options{StatementTimeout: time.Second}, EndRollback, RunArg{})
		if !errors.Is(err, ErrStatementTimeout) {
			t.Fatalf("err = %v, want ErrStatementTimeout", err)
		}
		if !strings.HasPrefix(err.Error(), "statement_timeout (1s) cut statement 2") {
			t.Errorf("message %q", err)
		}
		if time.Since(start) > 4*time.Second {
			t.Errorf("took %s", time.Since(start))
		}
		if conn.IsClosed() {
			return // closed is acceptable; usable is better
		}
		if conn.PgConn().TxStatus() != 'I' || queryInt(t, conn, "SELECT 1") != 1 {
			t.Error("connection neither usable nor closed")
		}
	})

	for _, tc := range []struct{ mode, where string }{
		// ACCESS EXCLUSIVE blocks even reading the table's catalog.
		{"ACCESS EXCLUSIVE", "reading the migration's tables"},
		// EXCLUSIVE lets reads through but not the UPDATE.
		{"EXCLUSIVE", "statement 1 (update) waited"},
	} {
		t.Run("lock_timeout "+tc.mode, func(t *testing.T) {
			conn := pgtest.Connect(t, url)
			holder := pgtest.Connect(t, url)
			tx, err := holder.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, "LOCK TABLE public.orders IN "+tc.mode+" MODE"); err != nil {
				t.Fatal(err)
			}
			plan := planOf(stmt{sql: "UPDATE public.orders SET note = 'x' WHERE id = 1", kind: "update", targets: []string{orders}})
			_, err = Run(ctx, conn, plan, Options{LockTimeout: 100 * time.Millisecond}, EndRollback, RunArg{})
			if !errors.Is(err, ErrLockTimeout) || errors.Is(err, ErrStatementTimeout) {
				t.Fatalf("err = %v, want ErrLockTimeout", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "lock_timeout: table is locked by another session") || !strings.Contains(msg, tc.where) {
				t.Errorf("message %q", msg)
			}
			if conn.PgConn().TxStatus() != 'I' {
				t.Error("connection not idle")
			}
		})
	}

	t.Run("a lock on another table does not matter", func(t *testing.T) {
		conn := pgtest.Connect(t, url)
		holder := pgtest.Connect(t, url)
		tx, err := holder.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "LOCK TABLE public.customers, public.products IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		plan := planOf(
			stmt{sql: "ALTER TABLE public.orders ADD COLUMN x int", kind: "add_column", targets: []string{orders}},
			stmt{sql: "UPDATE public.orders SET x = 1 WHERE id < 3", kind: "update", targets: []string{orders}},
		)
		rep, err := Run(ctx, conn, plan, Options{LockTimeout: 100 * time.Millisecond}, EndRollback, RunArg{})
		if err != nil {
			t.Fatalf("a dry run on orders waited for customers or products: %v", err)
		}
		if len(rep.SchemaDiff.Changes) != 1 {
			t.Errorf("schema diff %v", rep.SchemaDiff.Changes)
		}
	})

	t.Run("context canceled", func(t *testing.T) {
		conn := pgtest.Connect(t, url)
		plan := planOf(stmt{sql: "INSERT INTO public.products (id, name, price) SELECT 1000, 'slow', 1 FROM pg_sleep(5)", kind: "insert", targets: []string{products}})
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := Run(cctx, conn, plan, Options{}, EndRollback, RunArg{})
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrStatementTimeout) {
			t.Fatalf("err = %v, want the context's deadline", err)
		}
		if !conn.IsClosed() && conn.PgConn().TxStatus() != 'I' {
			t.Error("connection neither idle nor closed")
		}
	})
}

func TestRole(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	ctx := testContext(t)
	role := "airlock_migrate_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	admin := pgtest.Connect(t, pgtest.AdminURL(t))
	if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = admin.Exec(context.Background(), "DROP ROLE "+role)
	})
	if _, err := conn.Exec(ctx, "GRANT USAGE ON SCHEMA public TO "+role+"; GRANT SELECT, UPDATE ON public.products TO "+role); err != nil {
		t.Fatal(err)
	}

	ok := planOf(stmt{sql: "UPDATE public.products SET price = price + 1 WHERE id < 4", kind: "update", targets: []string{products}})
	rep, err := Run(ctx, conn, ok, Options{Role: role}, EndRollback, RunArg{})
	if err != nil {
		t.Fatalf("allowed update: %v", err)
	}
	if rep.Statements[0].RowsAffected != 3 {
		t.Errorf("rows = %d", rep.Statements[0].RowsAffected)
	}

	// The BeforeCommit hook runs with the connection's rights, not the
	// role's: the role cannot write airlock's bookkeeping.
	expected := rep.Effects()
	hook := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO airlock.changes (id, status) VALUES ('r1', 'committed')")
		return err
	}
	if _, err := Run(ctx, conn, ok, Options{Role: role}, EndCommitIfSame, RunArg{Expected: &expected, BeforeCommit: hook}); err != nil {
		t.Fatalf("replay as %s: %v", role, err)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM public.products WHERE id < 4 AND price = id * 2.5 + 1"); n != 3 {
		t.Errorf("replay as the role updated %d rows, want 3", n)
	}

	denied := planOf(stmt{sql: "UPDATE public.orders SET note = 'x' WHERE id = 1", kind: "update", targets: []string{orders}})
	_, err = Run(ctx, conn, denied, Options{Role: role}, EndRollback, RunArg{})
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != "42501" {
		t.Fatalf("err = %v, want permission denied", err)
	}
	var who string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who == role {
		t.Errorf("role leaked out of the transaction: current_user = %q (%v)", who, err)
	}
}

func TestProgress(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	var calls []string
	plan := planOf(
		stmt{sql: "UPDATE public.orders SET note = 'a' WHERE id = 1", kind: "update", targets: []string{orders}},
		stmt{sql: "UPDATE public.orders SET note = 'b' WHERE id <= 2", kind: "update", targets: []string{orders}},
	)
	opt := Options{Progress: func(done, total int, msg string) {
		calls = append(calls, fmt.Sprintf("%d|%d|%s", done, total, msg))
	}}
	if _, err := Run(testContext(t), conn, plan, opt, EndRollback, RunArg{}); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || !strings.HasPrefix(calls[0], "1|2|statement 1 (update): 1 rows") || !strings.HasPrefix(calls[1], "2|2|statement 2 (update): 2 rows") {
		t.Errorf("progress calls %q", calls)
	}
}

// TestDeferredConstraints: a dry run must fail where COMMIT would, on a
// deferred constraint.
func TestDeferredConstraints(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	ctx := testContext(t)
	if _, err := conn.Exec(ctx, `ALTER TABLE public.orders ADD CONSTRAINT orders_product_fk FOREIGN KEY (product_id)
		REFERENCES public.products (id) DEFERRABLE INITIALLY DEFERRED`); err != nil {
		t.Fatal(err)
	}
	plan := planOf(stmt{sql: "UPDATE public.orders SET product_id = 999 WHERE id = 1", kind: "update", targets: []string{orders}})
	_, err := Run(ctx, conn, plan, Options{}, EndRollback, RunArg{})
	if err == nil || sqlstate(err) != "23503" || !strings.Contains(err.Error(), "deferred constraint") {
		t.Fatalf("err = %v, want the deferred foreign key violation", err)
	}
	if conn.PgConn().TxStatus() != 'I' {
		t.Fatal("connection not idle")
	}
}

// TestCheckedPlan runs a plan made by sqlguard's classifier, as the tools
// do: kinds and qualified SQL must fit together.
func TestCheckedPlan(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	w := &sqlguard.WritePolicy{
		Tables: map[string]bool{orders: true},
		Allow:  map[string]bool{"add_column": true, "update": true, "create_index": true},
	}
	plan, err := w.CheckMigration("ALTER TABLE orders ADD COLUMN discount integer;\nUPDATE orders SET discount = 1 WHERE status = 'paid';\nCREATE INDEX orders_discount_idx ON orders (discount)")
	if err != nil {
		t.Fatalf("CheckMigration: %v", err)
	}
	before := pgtest.Fingerprint(t, url)
	rep, err := Run(testContext(t), conn, plan, Options{LargeTableRows: 100}, EndRollback, RunArg{})
	if err != nil {
		t.Fatal(err)
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("the dry run changed the database:\n%s", d)
	}
	var kinds []string
	for _, s := range rep.Statements {
		kinds = append(kinds, s.Kind)
	}
	if !slices.Equal(kinds, []string{"add_column", "update", "create_index"}) || rep.Statements[1].RowsAffected != 100 {
		t.Errorf("kinds %v, rows %d", kinds, rep.Statements[1].RowsAffected)
	}
	if f := hasCode(rep.Warnings, "PG101"); f == nil || f.Level != "warning" || f.Statement != 2 {
		t.Errorf("PG101 not raised to a warning on a large table: %+v", rep.Warnings)
	}
}

// TestUntargetedChange: a relation the plan does not name is read only as
// a signature, but a change to it still shows in the schema diff (and so
// in the effects a replay must match).
func TestUntargetedChange(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	plan := planOf(stmt{sql: "ALTER TABLE public.customers ADD COLUMN x int", kind: "add_column", targets: []string{orders}})
	rep, err := Run(testContext(t), conn, plan, Options{}, EndRollback, RunArg{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.SchemaDiff.Changes) != 1 {
		t.Fatalf("schema diff %v", rep.SchemaDiff.Changes)
	}
	c := rep.SchemaDiff.Changes[0]
	if c.Object != "table" || c.Name != customers || c.Action != "changed" ||
		!strings.HasPrefix(c.Before, "definition signature ") || c.Before == c.After {
		t.Errorf("change %+v", c)
	}
}

// TestLargeTableFindings: with a threshold below the fixture's 200 orders,
// the run raises the size-dependent findings, and only those that apply.
func TestLargeTableFindings(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	ctx := testContext(t)
	opt := Options{LargeTableRows: 100, RowsAffectedWarn: 150}
	tests := []struct {
		name string
		stmt stmt
		want []string // codes with their levels
	}{
		{"set_not_null", stmt{sql: "ALTER TABLE public.orders ALTER COLUMN note SET NOT NULL", kind: "set_not_null", targets: []string{orders}},
			[]string{"LK101 warning", "PG303 warning"}},
		{"check", stmt{sql: "ALTER TABLE public.orders ADD CONSTRAINT total_positive CHECK (total > 0)", kind: "add_constraint", targets: []string{orders},
			findings: []sqlguard.Finding{{Code: "PG305", Level: "info", Message: "adding CHECK constraint scans", Statement: 0}}},
			[]string{"PG305 warning", "LK101 warning"}},
		{"check not valid", stmt{sql: "ALTER TABLE public.orders ADD CONSTRAINT total_positive CHECK (total > 0) NOT VALID", kind: "add_constraint", targets: []string{orders}, notValid: true},
			[]string{"LK101 warning"}},
		{"create_index", stmt{sql: "CREATE INDEX ON public.orders (total)", kind: "create_index", targets: []string{orders}},
			[]string{"PG101 warning"}},
		{"rewrite", stmt{sql: "ALTER TABLE public.orders ALTER COLUMN total TYPE bigint", kind: "alter_column_type", targets: []string{orders}},
			[]string{"LK101 warning", "RW101 danger"}},
		{"rows", stmt{sql: "UPDATE public.orders SET note = 'x' WHERE id > 10", kind: "update", targets: []string{orders}},
			[]string{"RA101 warning"}},
		{"every row", stmt{sql: "UPDATE public.orders SET note = 'x' WHERE id > 0", kind: "update", targets: []string{orders}},
			[]string{"RA102 danger", "RA101 warning"}},
		{"small table", stmt{sql: "ALTER TABLE public.products ADD COLUMN x int DEFAULT random()", kind: "add_column", targets: []string{products}},
			[]string{"RW101 warning"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "set_not_null" {
				if _, err := conn.Exec(ctx, "UPDATE public.orders SET note = 'n' WHERE note IS NULL"); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := Run(ctx, conn, planOf(tt.stmt), opt, EndRollback, RunArg{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range rep.Warnings {
				got = append(got, f.Code+" "+f.Level)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings %q, want %q\n%s", got, tt.want, rep.Text())
			}
		})
	}
}
