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

func TestZZPhases(t *testing.T) {
	url := pgtest.NewEmptyDatabase(t)
	conn := pgtest.Connect(t, url)
	ctx := context.Background()
	var ddl strings.Builder
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&ddl, `CREATE TABLE public.t%[1]d (id bigserial PRIMARY KEY, name text NOT NULL DEFAULT '', total numeric(10,2), created_at timestamptz DEFAULT now());
CREATE INDEX t%[1]d_name_idx ON public.t%[1]d (name);
INSERT INTO public.t%[1]d (name, total) SELECT 'row ' || g, g FROM generate_series(1, 20) AS g;
`, i)
	}
	conn.Exec(ctx, ddl.String())
	targets := []string{"public.t1"}
	for it := 0; it < 4; it++ {
		var marks []string
		last := time.Now()
		mark := func(s string) {
			marks = append(marks, fmt.Sprintf("%s %.1f", s, float64(time.Since(last).Microseconds())/1000))
			last = time.Now()
		}
		tx, _ := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		tx.Exec(ctx, "SET LOCAL statement_timeout = 30000; SET LOCAL lock_timeout = 2000; SET LOCAL idle_in_transaction_session_timeout = 30000")
		mark("begin+set")
		var raw []byte
		tx.QueryRow(ctx, snapshotSQL, airlockSchema, targets, nil, nil).Scan(&raw)
		mark("snapshot query")
		before, _ := snapshotBefore(ctx, tx, targets)
		mark("snapshot+decode")
		rows := estimateRows(ctx, tx, before, targets)
		_ = rows
		mark("estimate")
		o := newObserver(before)
		o.observe(ctx, tx)
		mark("baseline")
		conn.PgConn().ExecParams(ctx, "ALTER TABLE public.t1 ADD COLUMN x int", nil, nil, nil, nil).Close()
		mark("stmt")
		o.observe(ctx, tx)
		mark("observe")
		tx.Exec(ctx, "SET CONSTRAINTS ALL IMMEDIATE")
		mark("constraints")
		after, _ := snapshotAfter(ctx, tx, targets, before, o.lockedOIDs())
		mark("after")
		diffCatalogs(before, after)
		mark("diff")
		tx.Rollback(ctx)
		mark("rollback")
		t.Log(strings.Join(marks, " | "))
	}
}
