package review

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/migrate"
)

// TestReplayCommitIsExact: committing a replay change leaves the database
// exactly as running the same SQL directly does.
func TestReplayCommitIsExact(t *testing.T) {
	e := newEnv(t)
	const sql = `ALTER TABLE orders ADD COLUMN discount integer;
UPDATE orders SET discount = 5 WHERE status = 'paid';
CREATE INDEX orders_discount_idx ON orders (discount);
UPDATE invoices SET paid = true WHERE amount > 100`
	before := pgtest.Fingerprint(t, e.url)
	c := e.record(sql, "support", ModeReplay)
	if d := before.Diff(pgtest.Fingerprint(t, e.url)); d != "" {
		t.Fatalf("recording a replay change changed the database:\n%s", d)
	}

	got, err := e.store.Commit(e.ctx, c.ID, "alice")
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got.Status != StatusCommitted || got.Reviewer != "alice" || got.DecidedAt.IsZero() {
		t.Errorf("after commit: status %q, reviewer %q, decided %v", got.Status, got.Reviewer, got.DecidedAt)
	}

	twin := pgtest.NewDatabase(t)
	// airlock's schema made the (empty) trash on the store's database.
	if _, err := pgtest.Connect(t, twin).Exec(e.ctx, "CREATE SCHEMA airlock_trash; REVOKE ALL ON SCHEMA airlock_trash FROM PUBLIC; "+sql); err != nil {
		t.Fatal(err)
	}
	if d := withoutDatabases(pgtest.Fingerprint(t, twin)).Diff(withoutDatabases(pgtest.Fingerprint(t, e.url))); d != "" {
		t.Errorf("the committed change differs from running its SQL directly:\n%s", d)
	}

	_, err = e.store.Commit(e.ctx, c.ID, "bob")
	var np *NotPendingError
	if !errors.As(err, &np) || !strings.Contains(err.Error(), "already committed by alice at") {
		t.Errorf("second commit: %v, want already committed by alice", err)
	}
	if _, err := e.store.Rollback(e.ctx, c.ID, "bob", ""); !errors.As(err, &np) {
		t.Errorf("rollback of a committed change: %v", err)
	}
}

func TestReplayDrift(t *testing.T) {
	e := newEnv(t)
	c := e.record("UPDATE orders SET status = 'shipped' WHERE status = 'paid'", "support", ModeReplay)
	// Someone else changes the data the change depends on.
	e.exec("UPDATE orders SET status = 'paid' WHERE id IN (SELECT id FROM orders WHERE status <> 'paid' ORDER BY id LIMIT 3)")
	before := pgtest.Fingerprint(t, e.url)

	got, err := e.store.Commit(e.ctx, c.ID, "alice")
	var drift *migrate.Drift
	if !errors.As(err, &drift) {
		t.Fatalf("Commit: %v, want a drift", err)
	}
	want := fmt.Sprintf("statement 1 affected %d rows, expected %d", c.Effects.RowsAffected[0]+3, c.Effects.RowsAffected[0])
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if got.Status != StatusDrifted || !strings.Contains(got.Reason, want) || got.Reviewer != "alice" {
		t.Errorf("after drift: status %q, reason %q, reviewer %q", got.Status, got.Reason, got.Reviewer)
	}
	if d := before.Diff(pgtest.Fingerprint(t, e.url)); d != "" {
		t.Fatalf("a drifted commit changed the database:\n%s", d)
	}
	var np *NotPendingError
	if _, err := e.store.Commit(e.ctx, c.ID, "bob"); !errors.As(err, &np) || !strings.Contains(err.Error(), "drifted") {
		t.Errorf("commit after drift: %v", err)
	}
}

// TestReplayFailureStaysPending: a replay that fails for a reason other
// than drift commits nothing and leaves the change for another try.
func TestReplayFailureStaysPending(t *testing.T) {
	e := newEnv(t)
	c := e.record("ALTER TABLE orders ADD COLUMN discount integer", "support", ModeReplay)
	e.exec("ALTER TABLE orders ADD COLUMN discount integer")
	before := pgtest.Fingerprint(t, e.url)
	_, err := e.store.Commit(e.ctx, c.ID, "alice")
	if err == nil || !strings.Contains(err.Error(), "still pending") || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("Commit: %v", err)
	}
	if s := e.status(c.ID); s != StatusPending {
		t.Errorf("status %q", s)
	}
	if d := before.Diff(pgtest.Fingerprint(t, e.url)); d != "" {
		t.Fatalf("a failed commit changed the database:\n%s", d)
	}
}

func TestRollbackReplay(t *testing.T) {
	e := newEnv(t)
	before := pgtest.Fingerprint(t, e.url)
	c := e.record("DELETE FROM invoices WHERE id < 100", "support", ModeReplay)
	got, err := e.store.Rollback(e.ctx, c.ID, "bob", "  not during business hours ")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusRolledBack || got.Reviewer != "bob" || got.Reason != "not during business hours" {
		t.Errorf("after rollback: %q by %q: %q", got.Status, got.Reviewer, got.Reason)
	}
	var np *NotPendingError
	_, err = e.store.Commit(e.ctx, c.ID, "alice")
	if !errors.As(err, &np) || !strings.Contains(err.Error(), "already rolled back by bob at") {
		t.Errorf("commit after rollback: %v", err)
	}
	if _, err := e.store.Rollback(e.ctx, c.ID, "carol", ""); !errors.As(err, &np) {
		t.Errorf("second rollback: %v", err)
	}
	if d := before.Diff(pgtest.Fingerprint(t, e.url)); d != "" {
		t.Fatalf("the database changed:\n%s", d)
	}
	for _, who := range []string{"", "  "} {
		if _, err := e.store.Commit(e.ctx, c.ID, who); err == nil || !strings.Contains(err.Error(), "reviewer") {
			t.Errorf("commit by %q: %v", who, err)
		}
	}
	if _, err := e.store.Commit(e.ctx, uuid.NewString(), "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("commit of a missing change: %v", err)
	}
	if _, err := e.store.Rollback(e.ctx, "nope", "alice", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("rollback of a missing change: %v", err)
	}
}

func TestExpiredNeverCommits(t *testing.T) {
	for _, mode := range []Mode{ModeReplay, ModePrepared} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t)
			sum := e.queryInt("SELECT sum(total)::bigint FROM orders")
			c := e.record("UPDATE orders SET total = total + 1 WHERE id <= 10", "support", mode)
			e.exec("UPDATE airlock.changes SET expires_at = now() - interval '1 second' WHERE id = $1", c.ID)

			got, err := e.store.Commit(e.ctx, c.ID, "alice")
			var np *NotPendingError
			if !errors.As(err, &np) || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "can never be committed") {
				t.Fatalf("Commit of an expired change: %v", err)
			}
			if got.Status != StatusExpired || got.Reviewer != reaperName || !strings.HasPrefix(got.Reason, "expired") {
				t.Errorf("after commit attempt: %q by %q: %q", got.Status, got.Reviewer, got.Reason)
			}
			if mode == ModePrepared && e.prepared(c.GID) {
				t.Error("the expired change's prepared transaction is still there")
			}
			if n := e.queryInt("SELECT sum(total)::bigint FROM orders"); n != sum {
				t.Errorf("sum(total) %d, want %d: an expired change was applied", n, sum)
			}
			if res, err := e.store.Reap(e.ctx); err != nil || res.Total() != 0 {
				t.Errorf("Reap after: %+v, %v", res, err)
			}
		})
	}
}

func TestPreparedCommit(t *testing.T) {
	e := newEnv(t)
	sum := e.queryInt("SELECT sum(total)::bigint FROM orders")
	c := e.record("UPDATE orders SET total = total + 1 WHERE id <= 10", "support", ModePrepared)
	if !e.prepared(c.GID) {
		t.Fatal("no prepared transaction")
	}
	if n := e.queryInt("SELECT sum(total)::bigint FROM orders"); n != sum {
		t.Fatal("prepared change visible before commit")
	}
	if len(c.Report.HeldLocks) == 0 {
		t.Error("the report shows no held locks")
	}
	got, err := e.store.Commit(e.ctx, c.ID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusCommitted || got.Reviewer != "alice" {
		t.Errorf("after commit: %q by %q", got.Status, got.Reviewer)
	}
	if n := e.queryInt("SELECT sum(total)::bigint FROM orders"); n != sum+10 {
		t.Errorf("sum(total) %d, want %d", n, sum+10)
	}
	if e.prepared(c.GID) {
		t.Error("prepared transaction left after commit")
	}
	var np *NotPendingError
	if _, err := e.store.Rollback(e.ctx, c.ID, "bob", ""); !errors.As(err, &np) || !strings.Contains(err.Error(), "already committed by alice") {
		t.Errorf("rollback after commit: %v", err)
	}
}

func TestPreparedRollback(t *testing.T) {
	e := newEnv(t)
	before := pgtest.Fingerprint(t, e.url)
	c := e.record("ALTER TABLE orders ADD COLUMN discount integer;\nUPDATE invoices SET paid = true WHERE id < 10", "support", ModePrepared)
	got, err := e.store.Rollback(e.ctx, c.ID, "bob", "wrong table")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusRolledBack || e.prepared(c.GID) {
		t.Errorf("after rollback: status %q, prepared transaction there: %v", got.Status, e.prepared(c.GID))
	}
	// The fingerprint's airlock-free view of the database, locks included.
	if d := before.Diff(pgtest.Fingerprint(t, e.url)); d != "" {
		t.Fatalf("the database changed:\n%s", d)
	}
	var np *NotPendingError
	if _, err := e.store.Commit(e.ctx, c.ID, "alice"); !errors.As(err, &np) {
		t.Errorf("commit after rollback: %v", err)
	}
}

// TestPreparedGone: a prepared transaction finished outside airlock can
// never be committed through it.
func TestPreparedGone(t *testing.T) {
	e := newEnv(t)
	c := e.record("UPDATE orders SET total = total + 1 WHERE id <= 10", "support", ModePrepared)
	e.exec("ROLLBACK PREPARED '" + c.GID + "'")
	got, err := e.store.Commit(e.ctx, c.ID, "alice")
	var np *NotPendingError
	if !errors.As(err, &np) || !strings.Contains(err.Error(), "no longer exists") {
		t.Fatalf("Commit: %v", err)
	}
	if got.Status != StatusDrifted {
		t.Errorf("status %q", got.Status)
	}
}

// TestRacingReviewers: however many reviewers act on one change at once,
// exactly one wins and the change is applied at most once.
func TestRacingReviewers(t *testing.T) {
	for _, tc := range []struct {
		mode      Mode
		rollbacks int // how many of the racers roll back instead
	}{
		{ModeReplay, 0}, {ModePrepared, 0}, {ModeReplay, 2}, {ModePrepared, 2},
	} {
		t.Run(fmt.Sprintf("%s/%d rollbacks", tc.mode, tc.rollbacks), func(t *testing.T) {
			e := newEnv(t)
			sum := e.queryInt("SELECT sum(total)::bigint FROM orders")
			c := e.record("UPDATE orders SET total = total + 1 WHERE id <= 10", "support", tc.mode)

			const racers = 5
			errs := make([]error, racers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					who := fmt.Sprintf("reviewer%d", i)
					if i < tc.rollbacks {
						_, errs[i] = e.store.Rollback(e.ctx, c.ID, who, "race")
					} else {
						_, errs[i] = e.store.Commit(e.ctx, c.ID, who)
					}
				}()
			}
			close(start)
			wg.Wait()

			winner := -1
			for i, err := range errs {
				var np *NotPendingError
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("reviewer%d and reviewer%d both won", winner, i)
				case err == nil:
					winner = i
				case !errors.As(err, &np):
					t.Errorf("reviewer%d: %v, want a NotPendingError", i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("nobody won: %v", errs)
			}
			final, err := e.store.Get(e.ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if final.Reviewer != fmt.Sprintf("reviewer%d", winner) {
				t.Errorf("change decided by %q, the winner was reviewer%d", final.Reviewer, winner)
			}
			committed := winner >= tc.rollbacks
			want, wantStatus, verb := sum, StatusRolledBack, "rolled back"
			if committed {
				want, wantStatus, verb = sum+10, StatusCommitted, "committed"
			}
			if final.Status != wantStatus {
				t.Errorf("status %q, want %q", final.Status, wantStatus)
			}
			if n := e.queryInt("SELECT sum(total)::bigint FROM orders"); n != want {
				t.Errorf("sum(total) = %d, want %d (before: %d)", n, want, sum)
			}
			for i, err := range errs {
				if i != winner && !strings.Contains(err.Error(), fmt.Sprintf("already %s by reviewer%d at", verb, winner)) {
					t.Errorf("loser reviewer%d reads %q", i, err)
				}
			}
			if tc.mode == ModePrepared && e.prepared(c.GID) {
				t.Error("prepared transaction left")
			}
		})
	}
}

// TestAuditTrail: every review action leaves a row.
func TestAuditTrail(t *testing.T) {
	e := newEnv(t)
	a := e.record("UPDATE orders SET notes = 'a' WHERE id = 1", "support", ModeReplay)
	b := e.record("UPDATE orders SET notes = 'b' WHERE id = 2", "support", ModePrepared)
	x := e.record("UPDATE orders SET notes = 'x' WHERE id = 3", "support", ModeReplay)
	if _, err := e.store.Commit(e.ctx, a.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Commit(e.ctx, a.ID, "bob"); err == nil {
		t.Fatal("second commit succeeded")
	}
	if _, err := e.store.Rollback(e.ctx, b.ID, "bob", "nope"); err != nil {
		t.Fatal(err)
	}
	e.exec("UPDATE airlock.changes SET expires_at = now() WHERE id = $1", x.ID)
	if res, err := e.store.Reap(e.ctx); err != nil || res.Expired != 1 {
		t.Fatalf("Reap: %+v, %v", res, err)
	}
	missing := uuid.NewString()
	if _, err := e.store.Commit(e.ctx, missing, "carol"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	want := []auditEvent{
		{Actor: "alice", Tool: "commit", Decision: "reviewed", Reason: "committed", ChangeID: a.ID, Rows: 1},
		{Actor: "bob", Tool: "commit", Decision: "refused", Reason: "change " + a.ID + " was already committed by alice at", ChangeID: a.ID},
		{Actor: "bob", Tool: "rollback", Decision: "reviewed", Reason: "rolled back: nope", ChangeID: b.ID},
		{Actor: "reaper", Tool: "reap", Decision: "reviewed", Reason: "expired: nobody reviewed it before", ChangeID: x.ID},
		{Actor: "carol", Tool: "commit", Decision: "refused", Reason: "change " + missing + ": no such change", ChangeID: missing},
	}
	got := e.auditLog()
	if len(got) != len(want) {
		t.Fatalf("audit log has %d rows, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Actor != w.Actor || g.Tool != w.Tool || g.Decision != w.Decision || g.ChangeID != w.ChangeID ||
			g.Rows != w.Rows || !strings.HasPrefix(g.Reason, w.Reason) {
			t.Errorf("audit row %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// withoutDatabases drops the server-wide list of databases from s, so that
// two databases' fingerprints can be compared: each lists itself.
func withoutDatabases(s pgtest.Snapshot) pgtest.Snapshot {
	for k := range s.Items {
		if strings.HasPrefix(k, "database ") {
			delete(s.Items, k)
		}
	}
	return s
}

// TestScopeRole: a change run under a scope role (SET LOCAL ROLE) is
// committed by a reviewer who is not a superuser but a member of that
// role. Replay: the hook must step out of the scope role to mark the
// change. Prepared: the transaction belongs to the scope role, so COMMIT
// PREPARED runs as it.
func TestScopeRole(t *testing.T) {
	for _, mode := range []Mode{ModeReplay, ModePrepared} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t)
			suffix := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
			scopeRole, reviewerRole := "review_test_scope_"+suffix, "review_test_reviewer_"+suffix
			e.exec("CREATE ROLE " + scopeRole + " NOLOGIN")
			e.exec("CREATE ROLE " + reviewerRole + " LOGIN IN ROLE " + scopeRole)
			t.Cleanup(func() {
				admin := pgtest.Connect(t, e.url)
				for _, sql := range []string{
					"DROP OWNED BY " + scopeRole + ", " + reviewerRole,
					"DROP ROLE " + reviewerRole, "DROP ROLE " + scopeRole,
				} {
					if _, err := admin.Exec(context.Background(), sql); err != nil {
						t.Errorf("%s: %v", sql, err)
					}
				}
			})
			e.exec("GRANT SELECT, UPDATE ON public.orders TO " + scopeRole)
			e.exec("GRANT USAGE ON SCHEMA airlock TO " + reviewerRole)
			e.exec("GRANT SELECT, UPDATE ON airlock.changes TO " + reviewerRole)
			e.exec("GRANT SELECT ON airlock.scopes TO " + reviewerRole)

			sum := e.queryInt("SELECT sum(total)::bigint FROM orders")
			c := e.newChange("UPDATE orders SET total = total + 1 WHERE id <= 10", "support", mode, migrate.Options{Role: scopeRole})
			e.register("support", scopeRole)
			if err := e.store.Record(e.ctx, c); err != nil {
				t.Fatal(err)
			}
			if mode == ModePrepared {
				if owner := e.queryText("SELECT owner FROM pg_prepared_xacts WHERE gid = $1", c.GID); owner != scopeRole {
					t.Fatalf("prepared transaction owned by %q, want the scope role", owner)
				}
			}

			u, err := url.Parse(e.url)
			if err != nil {
				t.Fatal(err)
			}
			u.User = url.User(reviewerRole)
			reviewer := NewStore(newPool(t, u.String()), nil)
			got, err := reviewer.Commit(e.ctx, c.ID, "alice")
			if err != nil {
				t.Fatalf("Commit as a non-superuser member of the scope role: %v", err)
			}
			if got.Status != StatusCommitted {
				t.Errorf("status %q", got.Status)
			}
			if n := e.queryInt("SELECT sum(total)::bigint FROM orders"); n != sum+10 {
				t.Errorf("sum(total) %d, want %d", n, sum+10)
			}
			// The pool's connections came back as the reviewer.
			if who := e.queryTextOn(reviewer.pool, "SELECT current_user"); who != reviewerRole {
				t.Errorf("pooled connection left as %q", who)
			}
		})
	}
}
