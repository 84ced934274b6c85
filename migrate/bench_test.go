package migrate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// BenchmarkDryRunOverhead measures what Run adds to a plain transaction
// that runs the same statement and rolls back, on a database of 200 tables
// (the catalog snapshots grow with the schema). Target: < 50 ms.
func BenchmarkDryRunOverhead(b *testing.B) {
	url := pgtest.NewEmptyDatabase(b)
	conn := pgtest.Connect(b, url)
	ctx := context.Background()

	var ddl strings.Builder
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&ddl, `CREATE TABLE public.t%[1]d (id bigserial PRIMARY KEY, name text NOT NULL DEFAULT '', total numeric(10,2), created_at timestamptz DEFAULT now());
CREATE INDEX t%[1]d_name_idx ON public.t%[1]d (name);
INSERT INTO public.t%[1]d (name, total) SELECT 'row ' || g, g FROM generate_series(1, 20) AS g;
`, i)
	}
	if _, err := conn.Exec(ctx, ddl.String()); err != nil {
		b.Fatal(err)
	}
	const sql = "ALTER TABLE public.t1 ADD COLUMN x int"
	plan := planOf(stmt{sql: sql, kind: "add_column", targets: []string{"public.t1"}})

	var dry, plain time.Duration
	iterations := 0
	for b.Loop() {
		iterations++
		t0 := time.Now()
		if _, err := Run(ctx, conn, plan, Options{}, EndRollback, RunArg{}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := plainRollback(ctx, conn, sql); err != nil {
			b.Fatal(err)
		}
		dry += t1.Sub(t0)
		plain += time.Since(t1)
	}
	n := float64(iterations)
	b.ReportMetric(float64(dry.Microseconds())/1000/n, "dry-ms/op")
	b.ReportMetric(float64(plain.Microseconds())/1000/n, "plain-ms/op")
	b.ReportMetric(float64((dry-plain).Microseconds())/1000/n, "overhead-ms/op")
}

// plainRollback is the baseline: the statement alone in a transaction
// that rolls back.
func plainRollback(ctx context.Context, conn *pgx.Conn, sql string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	_, err = conn.PgConn().ExecParams(ctx, sql, nil, nil, nil, nil).Close()
	return err
}
