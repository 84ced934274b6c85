package tools

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func testEnv(t *testing.T) (*Env, string) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	return benchEnv(t, url), url
}

func newBenchDB(t testing.TB) string { return pgtest.NewDatabase(t) }

func benchEnv(t testing.TB, url string) *Env {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	scope, err := scopes.Parse([]byte(`{"name": "layer4", "read": {"tables": {"public.orders": {}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	return &Env{Pool: pool, Scope: scope, Audit: audit.NewLog(nil, logger), Log: logger}
}

// TestTransactionLayerAlone proves layer 4 without the guard: statements
// the guard would refuse are handed straight to the executor, and the
// extended protocol plus the READ ONLY transaction still contain them.
func TestTransactionLayerAlone(t *testing.T) {
	env, url := testEnv(t)
	q := NewQueryReadonly(env)
	before := pgtest.Fingerprint(t, url)
	for _, sql := range []string{
		"SELECT 1; DELETE FROM orders",
		"COMMIT; DROP TABLE orders",
		"/* leading comment */ COMMIT; DROP TABLE invoices",
		"-- leading comment\nROLLBACK; DELETE FROM orders",
		"DELETE FROM orders",
		"UPDATE orders SET total = 0",
		"DROP TABLE invoices",
		"CREATE TABLE pwned (x int)",
		"SELECT nextval('ticket_seq')",
		"INSERT INTO orders (customer_id, status, total) VALUES (1, 'x', 1)",
		"WITH d AS (DELETE FROM orders RETURNING 1) SELECT count(*) FROM d",
	} {
		t.Run(sql, func(t *testing.T) {
			if _, err := q.execute(context.Background(), &sqlguard.ReadPlan{SQL: sql}, nil, 10); err == nil {
				t.Fatalf("executed without error: %s", sql)
			}
		})
	}
	// READ ONLY is one layer, not a wall: these succeed inside it (as a
	// superuser) and are contained only by the rollback. The guard and the
	// scope's role are what refuse them.
	for _, sql := range []string{
		"SELECT lo_import('/etc/hostname')",
		"SELECT pg_advisory_xact_lock(42)",
	} {
		q.execute(context.Background(), &sqlguard.ReadPlan{SQL: sql}, nil, 10)
	}
	if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
		t.Fatalf("database changed with the guard bypassed:\n%s", d)
	}
	// The pool still serves clean connections afterwards.
	res, err := q.execute(context.Background(), &sqlguard.ReadPlan{SQL: "SELECT current_setting('transaction_read_only')"}, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Row(0)); got != `["on"]` {
		t.Fatalf("transaction not read only: %s", got)
	}
}
