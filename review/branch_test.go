package review

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/airlock-dev/airlock/migrate"
)

func migrateOptions() migrate.Options { return migrate.Options{} }

// TestSchemaBranch: the schema strategy copies the in-scope tables'
// definitions (with pg_dump, and from the catalog without it) and sample
// rows; the branch's write tables then have the source's schema exactly,
// so an untouched branch shows no schema diff.
func TestSchemaBranch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pgDump bool
	}{{"pg_dump", true}, {"catalog", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if !tc.pgDump {
				findPgDump = func() (string, error) { return "", errors.New("no pg_dump here") }
				t.Cleanup(func() { findPgDump = lookPgDump })
			} else if _, err := lookPgDump(); err != nil {
				t.Fatalf("pg_dump not found next to initdb or on PATH: %v", err)
			}
			write := []string{"public.orders", "public.invoices"}
			b, err := e.store.CreateBranch(e.ctx, BranchSpec{
				Scope: "support", Session: uuid.NewString(), Strategy: StrategySchema, TTL: time.Hour, MaxBranches: 5,
				WriteTables: write, ReadTables: []string{"public.customers", "public.orders", "public.products"}, SampleRows: 20,
			})
			if err != nil {
				t.Fatalf("CreateBranch: %v", err)
			}
			diff, err := e.store.SchemaDiff(e.ctx, b)
			if err != nil || len(diff) != 0 {
				t.Fatalf("an untouched schema branch differs from the source: %q %v", diff, err)
			}
			pool, err := e.store.OpenBranch(e.ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			var customers, orders int
			var secrets bool
			err = pool.QueryRow(e.ctx, `SELECT (SELECT count(*) FROM public.customers), (SELECT count(*) FROM public.orders),
				pg_catalog.to_regclass('public.secrets') IS NOT NULL`).Scan(&customers, &orders, &secrets)
			if err != nil || customers != 20 || orders != 20 || secrets {
				t.Fatalf("branch content: customers %d orders %d secrets table %v (%v)", customers, orders, secrets, err)
			}
			// A new row takes the next id after the source's.
			var id int64
			if err := pool.QueryRow(e.ctx, "INSERT INTO public.orders (customer_id, status, total, created_at) VALUES (1, 'paid', 1, now()) RETURNING id").Scan(&id); err != nil || id != 5001 {
				t.Fatalf("insert on the branch: id %d, %v; want 5001", id, err)
			}
			var tables []string
			rows, _ := pool.Query(e.ctx, "SELECT relname::text FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1")
			for rows.Next() {
				var n string
				_ = rows.Scan(&n)
				tables = append(tables, n)
			}
			rows.Close()
			if !slices.Equal(tables, []string{"customers", "invoices", "orders", "products"}) {
				t.Fatalf("branch tables %v", tables)
			}
		})
	}
}

// TestBranchLogClosesWithTheBranch: once a branch is decided no change
// can join its log, and a merge refuses a log that grew after it read it.
func TestBranchLogClosesWithTheBranch(t *testing.T) {
	e := newEnv(t)
	b, err := e.store.CreateBranch(e.ctx, BranchSpec{
		Scope: "support", Session: uuid.NewString(), Strategy: StrategySchema, TTL: time.Hour, MaxBranches: 1,
		WriteTables: []string{"public.orders"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// max_branches 1: a second session is refused.
	var tooMany *TooManyBranchesError
	if _, err := e.store.CreateBranch(e.ctx, BranchSpec{Scope: "support", Session: uuid.NewString(), Strategy: StrategySchema,
		TTL: time.Hour, MaxBranches: 1}); !errors.As(err, &tooMany) {
		t.Fatalf("second branch past max_branches 1: %v", err)
	}
	branchChange := func() *Change {
		c := e.newChange("UPDATE orders SET notes = 'x' WHERE id = 1", "support", ModeReplay, migrateOptions())
		c.Mode, c.BranchID = ModeBranch, b.ID
		return c
	}
	first := branchChange()
	if err := e.store.Record(e.ctx, first); err != nil {
		t.Fatalf("Record on a live branch: %v", err)
	}
	if _, err := e.store.Discard(e.ctx, b.ID, "alice", "no"); err != nil {
		t.Fatalf("Discard: %v", err)
	}
	if e.status(first.ID) != StatusRolledBack {
		t.Fatalf("discarded branch's change is %s", e.status(first.ID))
	}
	if err := e.store.Record(e.ctx, branchChange()); !errors.Is(err, ErrBranchClosed) {
		t.Fatalf("Record on a discarded branch: %v", err)
	}
	var notLive *BranchNotLiveError
	if _, err := e.store.Discard(e.ctx, b.ID, "bob", ""); !errors.As(err, &notLive) || !strings.Contains(err.Error(), "discarded by alice") {
		t.Fatalf("second discard: %v", err)
	}
}
