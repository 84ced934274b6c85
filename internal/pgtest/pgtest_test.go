package pgtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func queryInt(t *testing.T, conn *pgx.Conn, sql string) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestNewDatabaseParallel(t *testing.T) {
	names := make(chan string, 2)
	t.Run("group", func(t *testing.T) {
		for _, name := range []string{"first", "second"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				conn := Connect(t, NewDatabase(t))
				for table, want := range map[string]int64{
					"public.customers":  1000,
					"public.orders":     5000,
					"public.invoices":   3000,
					"public.products":   12,
					"public.secrets":    5,
					"internal.api_keys": 2,
				} {
					if got := queryInt(t, conn, "SELECT count(*) FROM "+table); got != want {
						t.Errorf("count(%s) = %d, want %d", table, got, want)
					}
				}
				var db string
				if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&db); err != nil {
					t.Fatal(err)
				}
				names <- db
			})
		}
	})
	close(names)
	var seen []string
	for n := range names {
		seen = append(seen, n)
	}
	if len(seen) != 2 || seen[0] == seen[1] {
		t.Errorf("databases = %v, want two different ones", seen)
	}
	// Both were dropped when their tests ended.
	admin := Connect(t, AdminURL(t))
	for _, db := range seen {
		var exists bool
		err := admin.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists)
		if err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("database %s still exists after its test ended", db)
		}
	}
}

func TestNewEmptyDatabase(t *testing.T) {
	conn := Connect(t, NewEmptyDatabase(t))
	if n := queryInt(t, conn, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"); n != 0 {
		t.Errorf("empty database has %d relations in public", n)
	}
}

func TestSeedValues(t *testing.T) {
	conn := Connect(t, NewDatabase(t))
	ctx := context.Background()
	var email, ssn string
	var phone *string
	if err := conn.QueryRow(ctx, "SELECT email, ssn, phone FROM customers WHERE id = 42").Scan(&email, &ssn, &phone); err != nil {
		t.Fatal(err)
	}
	if email != "customer42@example.com" || ssn != "900-00-0042" || phone == nil || *phone != "+1-555-0042" {
		t.Errorf("customer 42 = %q, %q, %v", email, ssn, phone)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM customers WHERE big_counter > 9007199254740992"); n < 10 {
		t.Errorf("%d customers have big_counter above 2^53, want at least 10", n)
	}
	if n := queryInt(t, conn, "SELECT count(DISTINCT tenant_id) FROM customers"); n != 5 {
		t.Errorf("%d tenants, want 5", n)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM leak_secrets() AS s WHERE s LIKE 'SENTINEL-SECRET-7f3a-%'"); n != 5 {
		t.Errorf("leak_secrets() returned %d sentinels, want 5", n)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM secret_view"); n != 5 {
		t.Errorf("secret_view has %d rows, want 5", n)
	}
	if n := queryInt(t, conn, "SELECT reltuples::bigint FROM pg_class WHERE oid = 'public.orders'::regclass"); n != 5000 {
		t.Errorf("orders' row estimate = %d, want 5000 (seed ends with ANALYZE)", n)
	}
	// The evil objects do what they say, so a test that blocks them proves
	// something.
	if n := queryInt(t, conn, "SELECT evil_write()"); n != 5000 {
		t.Errorf("evil_write() deleted %d rows, want 5000", n)
	}
	if _, err := conn.Exec(ctx, "CALL evil_proc()"); err != nil {
		t.Errorf("CALL evil_proc(): %v", err)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM invoices"); n != 0 {
		t.Errorf("invoices after evil_write = %d, want 0 (ON DELETE CASCADE)", n)
	}
}

func TestTestdata(t *testing.T) {
	p := Testdata("seed.sql")
	if !filepath.IsAbs(p) {
		t.Errorf("Testdata() = %s, not absolute", p)
	}
	if _, err := os.Stat(p); err != nil {
		t.Error(err)
	}
}

func TestDropRollsBackPreparedTransactions(t *testing.T) {
	url := NewDatabase(t)
	var name string
	t.Run("prepare", func(t *testing.T) {
		conn := Connect(t, NewDatabase(t))
		ctx := context.Background()
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		for _, sql := range []string{"BEGIN", "DELETE FROM orders WHERE id = 1", "PREPARE TRANSACTION 'pgtest_drop'"} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
	})
	// The subtest's cleanup dropped its database despite the prepared
	// transaction.
	conn := Connect(t, url)
	var n int64
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'pgtest_drop'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("prepared transaction of dropped database %s still exists", name)
	}
}

func TestSeedErrorLine(t *testing.T) {
	seed := "SELECT 1;\nSELECT\n  nope;\n"
	err := describeSeedError(seed, &pgconn.PgError{Message: "column does not exist", Position: 21})
	if err == nil || !strings.HasPrefix(err.Error(), "line 3:") {
		t.Errorf("describeSeedError = %v, want line 3", err)
	}
	plain := errors.New("boom")
	if got := describeSeedError(seed, plain); got != plain {
		t.Errorf("describeSeedError(non-PgError) = %v", got)
	}
}

func exec(t *testing.T, url string, sqls ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, sql := range sqls {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}
