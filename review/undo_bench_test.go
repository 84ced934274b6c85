package review

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/sqlguard"
)

// BenchmarkRevert100k times airlock revert of a committed change that
// touched 100,000 rows (BENCHMARKS.md, Undo: reverting 100,000 rows): the
// plan (Store.Revert: read the capture, compare every row with it, record
// the revert) and the restore (committing the revert: plan again under the
// lock, write the rows back, capture the revert itself). Run it with a
// small fixed count, each iteration reverts a fresh 100,000-row change:
//
//	go test -run '^$' -bench BenchmarkRevert100k -benchtime 3x ./review/
func BenchmarkRevert100k(b *testing.B) {
	const rows = 100_000
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	b.Cleanup(cancel)
	url := pgtest.NewEmptyDatabase(b)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := EnsureSchema(ctx, pool); err != nil {
		b.Fatal(err)
	}
	conn := pgtest.Connect(b, url)
	mustExec := func(sql string) {
		b.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	// Types whose JSON round trip (to_jsonb in the capture,
	// jsonb_populate_recordset in the restore) could lose something:
	// numeric scale, time zones, floats, arrays, NULLs, nested JSON.
	mustExec(`CREATE TABLE bench_rows (
		id bigint PRIMARY KEY,
		label text NOT NULL,
		qty integer NOT NULL,
		price numeric(12,2) NOT NULL,
		ratio double precision,
		active boolean NOT NULL,
		created_at timestamptz NOT NULL,
		tags text[],
		note text,
		attrs jsonb
	)`)
	mustExec(fmt.Sprintf(`INSERT INTO bench_rows
		SELECT i, 'item ' || md5(i::text), i %% 1000, (i * 7 %% 100000) / 100.0, i / 3.0,
			i %% 2 = 0, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second',
			ARRAY['t' || i %% 10, 't' || i %% 7],
			CASE WHEN i %% 5 = 0 THEN NULL ELSE repeat('n', i %% 40) END,
			jsonb_build_object('k', i, 'v', ARRAY[i %% 3, i %% 11])
		FROM generate_series(1, %d) i`, rows))
	mustExec("ANALYZE bench_rows")
	// roles installs these at scope apply, but roles imports review, so
	// this test cannot call it: the same triggers as roles.captureTriggers.
	for _, tr := range []string{
		"CREATE TRIGGER airlock_capture_ins AFTER INSERT ON public.bench_rows REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION airlock.capture_rows()",
		"CREATE TRIGGER airlock_capture_upd AFTER UPDATE ON public.bench_rows REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION airlock.capture_rows()",
		"CREATE TRIGGER airlock_capture_del AFTER DELETE ON public.bench_rows REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION airlock.capture_rows()",
		"CREATE TRIGGER airlock_capture_trunc BEFORE TRUNCATE ON public.bench_rows FOR EACH STATEMENT EXECUTE FUNCTION airlock.capture_rows()",
	} {
		mustExec(tr)
	}
	const scope = "bench_undo"
	// The superuser is the write role, as in the store's other tests: what
	// is timed is the store's own work, not privilege checks.
	if _, err := conn.Exec(ctx, `INSERT INTO airlock.scopes (name, document, version, read_role, write_role)
		VALUES ($1, $2::jsonb, 'bench', 'airlock_bench_undo_read', current_user)`, scope, `{"name": "bench_undo",
		"read": {"tables": {"public.bench_rows": {}}},
		"write": {"mode": "replay", "tables": ["public.bench_rows"], "allow": ["update", "delete"],
			"ticket_pattern": "^[A-Z]+-[0-9]+$", "undo": {"retention": "7d"}}}`); err != nil {
		b.Fatalf("register scope: %v", err)
	}
	store := NewStore(pool, nil)
	policy := &sqlguard.WritePolicy{
		Tables: map[string]bool{"public.bench_rows": true},
		Allow:  map[string]bool{"update": true, "delete": true},
	}
	checksum := func() (string, int64) {
		b.Helper()
		var sum string
		var n int64
		if err := conn.QueryRow(ctx, "SELECT md5(string_agg(t::text, E'\\n' ORDER BY id)), count(*) FROM bench_rows t").Scan(&sum, &n); err != nil {
			b.Fatal(err)
		}
		return sum, n
	}
	want, n := checksum()
	if n != rows {
		b.Fatalf("seeded %d rows, want %d", n, rows)
	}

	for _, bc := range []struct {
		name, sql string
		// counts picks what the revert plan must do to every row.
		counts func(RevertTable) int64
	}{
		{"delete", "DELETE FROM bench_rows", func(t RevertTable) int64 { return t.PutBack }},
		{"update", "UPDATE bench_rows SET qty = qty + 1, note = 'changed', attrs = NULL", func(t RevertTable) int64 { return t.Restored }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			plan, err := policy.CheckMigration(bc.sql)
			if err != nil {
				b.Fatal(err)
			}
			var planTime, restoreTime time.Duration
			for b.Loop() {
				b.StopTimer()
				orig := commitChange(ctx, b, store, url, scope, bc.sql, plan)
				b.StartTimer()

				t0 := time.Now()
				rev, err := store.Revert(ctx, orig.ID, "alice", false)
				if err != nil {
					b.Fatalf("Revert: %v", err)
				}
				t1 := time.Now()
				done, err := store.Commit(ctx, rev.ID, "alice")
				if err != nil {
					b.Fatalf("commit the revert: %v", err)
				}
				t2 := time.Now()

				b.StopTimer()
				planTime += t1.Sub(t0)
				restoreTime += t2.Sub(t1)
				if done.Status != StatusCommitted {
					b.Fatalf("revert %s is %s", rev.ID, done.Status)
				}
				if len(rev.Revert.Tables) != 1 || bc.counts(rev.Revert.Tables[0]) != rows {
					b.Fatalf("revert plan %+v, want all %d rows", rev.Revert.Tables, rows)
				}
				if got, n := checksum(); got != want || n != rows {
					b.Fatalf("after the revert: %d rows, md5 %s; before the change: %d rows, md5 %s", n, got, rows, want)
				}
				// Loose on purpose: shared CI machines vary, but a minute for
				// 100,000 rows means something went quadratic.
				if d := t2.Sub(t0); d > time.Minute {
					b.Fatalf("reverting %d rows took %v (plan %v, restore %v), over a minute", rows, d, t1.Sub(t0), t2.Sub(t1))
				}
				b.StartTimer()
			}
			b.ReportMetric(planTime.Seconds()/float64(b.N), "plan-s/op")
			b.ReportMetric(restoreTime.Seconds()/float64(b.N), "restore-s/op")
			b.ReportMetric(float64(rows)*float64(b.N)/(planTime+restoreTime).Seconds(), "rows/s")
		})
	}
}

// commitChange dry-runs sql, records it and commits it, as the service
// and a reviewer would: with undo on, the commit captures every row.
func commitChange(ctx context.Context, b testing.TB, store *Store, url, scope, sql string, plan *sqlguard.MigrationPlan) *Change {
	b.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	opt := migrate.Options{Undo: true}
	rep, err := migrate.Run(ctx, conn, plan, opt, migrate.EndRollback, migrate.RunArg{})
	if err != nil {
		b.Fatalf("dry run %q: %v", sql, err)
	}
	c := NewChange(plan, rep, opt)
	c.Ticket, c.Summary, c.SQL, c.Scope, c.Session = "OPS-100", "bench change", sql, scope, "bench"
	c.Mode, c.TTL = ModeReplay, time.Hour
	if err := store.Record(ctx, c); err != nil {
		b.Fatalf("Record: %v", err)
	}
	got, err := store.Commit(ctx, c.ID, "bob")
	if err != nil {
		b.Fatalf("Commit: %v", err)
	}
	if got.Status != StatusCommitted {
		b.Fatalf("change %s is %s", c.ID, got.Status)
	}
	return got
}
