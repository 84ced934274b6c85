package main

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/sqlguard"
)

// branchWith makes a schema-strategy branch and commits sql on it as the
// agent's tools would, recording the change in the source's log.
func (d *reviewDB) branchWith(sql string) (*review.Branch, *review.Change) {
	d.t.Helper()
	return d.branchWithText("OPS-8", "branch change", sql)
}

// branchWithText is branchWith with the change's ticket and summary given.
func (d *reviewDB) branchWithText(ticket, summary, sql string) (*review.Branch, *review.Change) {
	d.t.Helper()
	b, err := d.store.CreateBranch(d.ctx, review.BranchSpec{
		Scope: "support", Session: uuid.NewString(), Strategy: review.StrategySchema, TTL: time.Hour,
		MaxBranches: 5, WriteTables: []string{"public.orders"}, ReadTables: []string{"public.customers"},
	})
	if err != nil {
		d.t.Fatal(err)
	}
	w := &sqlguard.WritePolicy{
		Tables: map[string]bool{"public.orders": true},
		Allow:  map[string]bool{"update": true, "add_column": true},
	}
	plan, err := w.CheckMigration(sql)
	if err != nil {
		d.t.Fatal(err)
	}
	pool, err := d.store.OpenBranch(d.ctx, b)
	if err != nil {
		d.t.Fatal(err)
	}
	defer pool.Close()
	conn, err := pool.Acquire(d.ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	defer conn.Release()
	rep, err := migrate.Run(d.ctx, conn.Conn(), plan, migrate.Options{}, migrate.EndCommit, migrate.RunArg{})
	if err != nil {
		d.t.Fatal(err)
	}
	c := review.NewChange(plan, rep, migrate.Options{})
	c.Ticket, c.Summary, c.SQL, c.Scope, c.Session = ticket, summary, sql, "support", b.Session
	c.Mode, c.BranchID, c.ExpiresAt = review.ModeBranch, b.ID, b.ExpiresAt
	if err := d.store.Record(d.ctx, c); err != nil {
		d.t.Fatal(err)
	}
	return b, c
}

func TestBranchCommands(t *testing.T) {
	d := newReviewDB(t)
	merge, mc := d.branchWith("ALTER TABLE orders ADD COLUMN gift boolean")
	discard, dc := d.branchWith("ALTER TABLE orders ADD COLUMN wrap boolean")
	runSteps(t, d, []cliStep{
		{name: "branches", args: []string{"branches"}, stdout: []string{merge.ID, discard.ID, "CHANGES", " MB"}},
		{name: "show branch", args: []string{"show", merge.ID}, stdout: []string{"branch " + merge.ID, "OPS-8",
			"ADD COLUMN gift", "+ public.orders: column gift boolean"}},
		{name: "show change", args: []string{"show", mc.ID}, stdout: []string{"branch " + merge.ID}},
		{name: "commit a branch change", args: []string{"commit", mc.ID, "--reviewer", "alice"}, code: 1,
			stdout: []string{"airlock merge " + merge.ID}, wantStatus: map[string]review.Status{mc.ID: review.StatusPending}},
		{name: "merge", args: []string{"merge", merge.ID, "--reviewer", "alice"}, stdout: []string{"merged: branch " + merge.ID},
			wantStatus: map[string]review.Status{mc.ID: review.StatusCommitted}},
		{name: "merge again", args: []string{"merge", merge.ID, "--reviewer", "bob"}, code: 1, stdout: []string{"refused:", "merged by alice"}},
		{name: "discard", args: []string{"discard", discard.ID, "--reviewer", "alice"}, stdout: []string{"discarded: branch " + discard.ID},
			wantStatus: map[string]review.Status{dc.ID: review.StatusRolledBack}},
		{name: "no branches", args: []string{"branches"}, stdout: []string{"no live branches"}},
		{name: "merge usage", args: []string{"merge", merge.ID}, code: 2},
	})
	pool, err := pgxpool.New(d.ctx, d.url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var gift, wrap bool
	err = pool.QueryRow(d.ctx, `SELECT
		EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'gift'),
		EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'wrap')`).Scan(&gift, &wrap)
	if err != nil || !gift || wrap {
		t.Fatalf("source after merge and discard: gift %v wrap %v (%v); want the merged column only", gift, wrap, err)
	}
}
