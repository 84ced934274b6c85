package review

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// registerApprovals records scope in airlock.scopes with a document that
// asks for approvals reviewers, as airlock scope apply of such a scope would.
func (e *env) registerApprovals(scope, writeRole string, approvals int) {
	e.t.Helper()
	doc := fmt.Sprintf(`{"name": %q, "read": {"tables": {"public.orders": {}}},
		"write": {"mode": "replay", "tables": ["public.orders"], "allow": ["update"], "ticket_pattern": "^[A-Z]+-[0-9]+$", "approvals": %d, "undo": {"enabled": false}}}`, scope, approvals)
	if _, err := e.pool.Exec(e.ctx, `INSERT INTO airlock.scopes (name, document, version, read_role, write_role)
		VALUES ($1, $2::jsonb, 'test', $3, $4) ON CONFLICT (name) DO UPDATE SET document = EXCLUDED.document, write_role = EXCLUDED.write_role`,
		scope, doc, "airlock_"+scope+"_read", writeRole); err != nil {
		e.t.Fatalf("register scope %s: %v", scope, err)
	}
}

// TestTwoPersonRule: with write.approvals 2, one approval commits nothing,
// the same reviewer cannot count twice, the applier and agent and service
// logins cannot approve at all (the database refuses them, whatever the
// SQL), approvals cannot be altered or withdrawn, and of two reviewers
// approving at the same moment exactly one commits.
func TestTwoPersonRule(t *testing.T) {
	e := newEnv(t)
	p := newPrincipals(t, e)
	e.exec("GRANT SELECT, INSERT ON airlock.approvals TO airlock_reviewers")
	e.exec("GRANT SELECT ON airlock.approvals TO airlock_services")
	sum := e.queryInt("SELECT sum(total)::bigint FROM orders")
	c := p.record("UPDATE orders SET total = total + 1 WHERE id <= 10")
	e.registerApprovals("support", p.scopeRole, 2)
	hash := c.ApprovalHash()

	for _, login := range []string{p.service, p.sidekick, p.agent} {
		conn := pgtest.Connect(t, p.as(login))
		_, err := conn.Exec(e.ctx, "INSERT INTO airlock.approvals (subject, kind, reviewer, approval) VALUES ($1, 'change', 'alice', $2)", c.ID, hash)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s recorded an approval: %v", login, err)
		}
		if _, _, err := NewStore(newPool(t, p.as(login)), nil).Approve(e.ctx, c.ID, "alice", Approval{}); err == nil {
			t.Errorf("%s approved through the store", login)
		}
	}
	if n := e.queryInt("SELECT count(*) FROM airlock.approvals WHERE subject = $1", c.ID); n != 0 {
		t.Fatalf("%d approvals recorded by logins that may not approve", n)
	}

	rv := NewStore(newPool(t, p.as(p.reviewer)), nil)
	got, st, err := rv.Approve(e.ctx, c.ID, "alice", Approval{Expect: hash})
	if err != nil || st.Done || st.Waiting() != 1 || got.Status != StatusPending {
		t.Fatalf("first approval: %v %+v", err, st)
	}
	if e.queryInt("SELECT sum(total)::bigint FROM orders") != sum || e.status(c.ID) != StatusPending {
		t.Fatal("one approval of two changed something")
	}
	_, _, err = rv.Approve(e.ctx, c.ID, " alice ", Approval{})
	var already *AlreadyApprovedError
	if !errors.As(err, &already) || already.Waiting != 1 {
		t.Fatalf("alice again: %v", err)
	}
	if _, _, err := rv.Approve(e.ctx, c.ID, "bob", Approval{Expect: strings.Repeat("0", 64)}); err == nil {
		t.Fatal("an approval of other content was recorded")
	}
	for _, sql := range []string{
		"UPDATE airlock.approvals SET reviewer = 'bob' WHERE subject = $1",
		"DELETE FROM airlock.approvals WHERE subject = $1",
	} {
		if _, err := pgtest.Connect(t, p.as(p.reviewer)).Exec(e.ctx, sql, c.ID); err == nil {
			t.Errorf("the reviewer ran %s", sql)
		}
		// Not even a superuser, short of dropping the trigger.
		if _, err := e.conn.Exec(e.ctx, sql, c.ID); err == nil {
			t.Errorf("a superuser ran %s", sql)
		}
	}
	got, st, err = rv.Approve(e.ctx, c.ID, "bob", Approval{})
	if err != nil || !st.Done || got.Status != StatusCommitted || strings.Join(st.Names(), ",") != "alice,bob" {
		t.Fatalf("second approval: %v %+v %+v", err, st, got)
	}
	if n := e.queryInt("SELECT sum(total)::bigint FROM orders"); n != sum+10 {
		t.Fatalf("sum %d, want %d", n, sum+10)
	}
	if _, err := pgtest.Connect(t, p.as(p.reviewer)).Exec(e.ctx,
		"INSERT INTO airlock.approvals (subject, kind, reviewer, approval) VALUES ($1, 'change', 'carol', $2)", c.ID, hash); err == nil {
		t.Fatal("an approval of a decided change was recorded")
	}

	// Two reviewers at the same moment: exactly one commits, once.
	c2 := p.record("UPDATE orders SET total = total + 1 WHERE id <= 10")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		commits int
		errs    []error
	)
	for _, name := range []string{"carol", "dave"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := NewStore(newPool(t, p.as(p.reviewer)), nil)
			_, st, err := s.Approve(e.ctx, c2.ID, name, Approval{})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if st.Done {
				commits++
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 || commits != 1 || e.status(c2.ID) != StatusCommitted {
		t.Fatalf("concurrent approvals: %d commits, errors %v, status %s", commits, errs, e.status(c2.ID))
	}
	if n := e.queryInt("SELECT sum(total)::bigint FROM orders"); n != sum+20 {
		t.Fatalf("sum %d, want %d: the change committed more or less than once", n, sum+20)
	}

	// One rejection ends it.
	c3 := p.record("UPDATE orders SET total = 0 WHERE id = 1")
	if _, _, err := rv.Approve(e.ctx, c3.ID, "alice", Approval{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rv.Rollback(e.ctx, c3.ID, "erin", "no"); err != nil {
		t.Fatal(err)
	}
	var np *NotPendingError
	if _, _, err := rv.Approve(e.ctx, c3.ID, "bob", Approval{}); !errors.As(err, &np) || e.queryInt("SELECT count(*) FROM orders WHERE id = 1 AND total = 0") != 0 {
		t.Fatalf("approval after a rejection: %v", err)
	}
}
