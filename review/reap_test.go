package review

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/migrate"
)

func TestReapExpires(t *testing.T) {
	e := newEnv(t)
	sum := e.queryInt("SELECT sum(total)::bigint FROM orders")
	replay := e.record("UPDATE orders SET total = total + 1 WHERE id <= 10", "support", ModeReplay)
	prepared := e.record("UPDATE orders SET total = total + 1 WHERE id > 4990", "support", ModePrepared)
	fresh := e.record("UPDATE orders SET notes = 'z' WHERE id = 7", "support", ModeReplay)
	e.exec("UPDATE airlock.changes SET expires_at = now() - interval '1 minute' WHERE id IN ($1, $2)", replay.ID, prepared.ID)

	res, err := e.store.Reap(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res != (ReapResult{Expired: 2}) {
		t.Errorf("Reap = %+v, want 2 expired", res)
	}
	for _, c := range []*Change{replay, prepared} {
		if s := e.status(c.ID); s != StatusExpired {
			t.Errorf("%s change: status %q", c.Mode, s)
		}
	}
	if s := e.status(fresh.ID); s != StatusPending {
		t.Errorf("unexpired change: status %q", s)
	}
	if e.prepared(prepared.GID) {
		t.Error("the expired prepared transaction was not rolled back")
	}
	if n := e.queryInt("SELECT sum(total)::bigint FROM orders"); n != sum {
		t.Errorf("sum(total) %d, want %d", n, sum)
	}
	var np *NotPendingError
	for _, c := range []*Change{replay, prepared} {
		if _, err := e.store.Commit(e.ctx, c.ID, "alice"); !errors.As(err, &np) || !strings.Contains(err.Error(), "can never be committed") {
			t.Errorf("commit of an expired %s change: %v", c.Mode, err)
		}
	}
	if res, err := e.store.Reap(e.ctx); err != nil || res.Total() != 0 {
		t.Errorf("second Reap: %+v, %v", res, err)
	}
}

// TestReapExpiredGidGone: an expired prepared change whose transaction is
// already gone expires all the same.
func TestReapExpiredGidGone(t *testing.T) {
	e := newEnv(t)
	c := e.record("UPDATE orders SET notes = 'z' WHERE id = 7", "support", ModePrepared)
	e.exec("ROLLBACK PREPARED '" + c.GID + "'")
	e.exec("UPDATE airlock.changes SET expires_at = now() WHERE id = $1", c.ID)
	if res, err := e.store.Reap(e.ctx); err != nil || res.Expired != 1 {
		t.Fatalf("Reap: %+v, %v", res, err)
	}
	if s := e.status(c.ID); s != StatusExpired {
		t.Errorf("status %q", s)
	}
}

func TestReapOrphans(t *testing.T) {
	e := newEnv(t)
	before := pgtest.Fingerprint(t, e.url)
	// A crash between PREPARE TRANSACTION and Record.
	orphan := NewGID()
	conn := pgtest.Connect(t, e.url)
	plan := checkPlan(t, "UPDATE orders SET notes = 'orphan' WHERE id < 5")
	if _, err := migrate.Run(e.ctx, conn, plan, migrate.Options{}, migrate.EndPrepare, migrate.RunArg{GID: orphan}); err != nil {
		t.Fatal(err)
	}
	// Prepared transactions airlock did not make are left alone.
	for i, gid := range []string{"other_1", "airlock_not-a-uuid"} {
		other := pgtest.Connect(t, e.url)
		sql := fmt.Sprintf("BEGIN; UPDATE invoices SET paid = true WHERE id = %d; PREPARE TRANSACTION '%s'", i+1, gid)
		if _, err := other.Exec(e.ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	kept := e.record("UPDATE orders SET notes = 'kept' WHERE id = 9", "support", ModePrepared)

	if res, err := e.store.Reap(e.ctx); err != nil || res.Total() != 0 {
		t.Fatalf("Reap of a young orphan: %+v, %v", res, err)
	}
	if !e.prepared(orphan) {
		t.Fatal("an orphan younger than OrphanAge was rolled back")
	}

	defer func(old time.Duration) { orphanAge = old }(orphanAge)
	orphanAge = 0
	res, err := e.store.Reap(e.ctx)
	if err != nil || res != (ReapResult{Orphans: 1}) {
		t.Fatalf("Reap: %+v, %v", res, err)
	}
	if e.prepared(orphan) {
		t.Error("orphan not rolled back")
	}
	for _, gid := range []string{"other_1", "airlock_not-a-uuid", kept.GID} {
		if !e.prepared(gid) {
			t.Errorf("prepared transaction %s was rolled back", gid)
		}
	}
	for _, gid := range []string{"other_1", "airlock_not-a-uuid"} {
		e.exec("ROLLBACK PREPARED '" + gid + "'")
	}
	if _, err := e.store.Rollback(e.ctx, kept.ID, "bob", ""); err != nil {
		t.Fatal(err)
	}
	if d := before.Diff(pgtest.Fingerprint(t, e.url)); d != "" {
		t.Fatalf("the database changed:\n%s", d)
	}
	log := e.auditLog()
	if len(log) == 0 || log[0].Actor != "reaper" || !strings.Contains(log[0].Reason, "orphan prepared transaction "+orphan) {
		t.Errorf("audit: %+v", log)
	}
}

// TestReapFinishesInterrupted simulates a crash inside each two-step
// review action of prepared mode and checks that Reap completes it.
func TestReapFinishesInterrupted(t *testing.T) {
	defer func(old time.Duration) { committingGrace = old }(committingGrace)
	for _, tc := range []struct {
		name    string
		crash   func(e *env, c *Change) // leaves the state a crash would
		status  Status                  // after Reap
		applied bool
	}{
		{"committing, COMMIT PREPARED not run", func(e *env, c *Change) {
			e.exec("UPDATE airlock.changes SET status = 'committing', reviewer = 'alice', decided_at = now() WHERE id = $1", c.ID)
		}, StatusCommitted, true},
		{"committing, COMMIT PREPARED done", func(e *env, c *Change) {
			e.exec("UPDATE airlock.changes SET status = 'committing', reviewer = 'alice', decided_at = now() WHERE id = $1", c.ID)
			e.exec("COMMIT PREPARED '" + c.GID + "'")
		}, StatusCommitted, true},
		{"rolled back, ROLLBACK PREPARED not run", func(e *env, c *Change) {
			e.exec("UPDATE airlock.changes SET status = 'rolled_back', reviewer = 'bob', decided_at = now() WHERE id = $1", c.ID)
		}, StatusRolledBack, false},
		{"expired, ROLLBACK PREPARED not run", func(e *env, c *Change) {
			e.exec("UPDATE airlock.changes SET status = 'expired', reviewer = 'reaper', decided_at = now() WHERE id = $1", c.ID)
		}, StatusExpired, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			sum := e.queryInt("SELECT sum(total)::bigint FROM orders")
			c := e.record("UPDATE orders SET total = total + 1 WHERE id <= 10", "support", ModePrepared)
			tc.crash(e, c)

			committingGrace = time.Hour
			res, err := e.store.Reap(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tc.status == StatusCommitted {
				// A reviewer may still be finishing it: left alone at first.
				if res.Total() != 0 || e.status(c.ID) != StatusCommitting {
					t.Fatalf("Reap within the grace period: %+v, status %q", res, e.status(c.ID))
				}
				committingGrace = 0
				if res, err = e.store.Reap(e.ctx); err != nil {
					t.Fatal(err)
				}
			}
			if res != (ReapResult{Finished: 1}) {
				t.Errorf("Reap = %+v, want 1 finished", res)
			}
			got, err := e.store.Get(e.ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.status {
				t.Errorf("status %q, want %q", got.Status, tc.status)
			}
			if e.prepared(c.GID) {
				t.Error("prepared transaction left")
			}
			want := sum
			if tc.applied {
				want += 10
				if got.Reviewer != "alice" {
					t.Errorf("reviewer %q, want alice kept", got.Reviewer)
				}
			}
			if n := e.queryInt("SELECT sum(total)::bigint FROM orders"); n != want {
				t.Errorf("sum(total) %d, want %d", n, want)
			}
			if res, err := e.store.Reap(e.ctx); err != nil || res.Total() != 0 {
				t.Errorf("second Reap: %+v, %v", res, err)
			}
		})
	}
}

func TestStartReaper(t *testing.T) {
	e := newEnv(t)
	c := e.record("UPDATE orders SET notes = 'z' WHERE id = 7", "support", ModePrepared)
	e.exec("UPDATE airlock.changes SET expires_at = now() WHERE id = $1", c.ID)
	ctx, cancel := context.WithCancel(e.ctx)
	done := e.store.StartReaper(ctx, 20*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	// Expiry marks the row first, then rolls the transaction back.
	for e.status(c.ID) != StatusExpired || e.prepared(c.GID) {
		if time.Now().After(deadline) {
			t.Fatal("the reaper did not expire the change and roll it back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the reaper did not stop")
	}
}
