package review

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/migrate"
)

// principals makes non-superuser logins for one test: a service that
// records changes, an agent, and reviewers (one of them a member of the
// service), with the grants airlock scope apply gives each group.
type principals struct {
	e                                  *env
	scopeRole                          string
	service, agent, reviewer, sidekick string
	servicePool                        *Store
	suffix                             string
}

func newPrincipals(t *testing.T, e *env) *principals {
	t.Helper()
	s := strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
	p := &principals{e: e, suffix: s, scopeRole: "rp_scope_" + s, service: "rp_service_" + s, agent: "rp_agent_" + s,
		reviewer: "rp_reviewer_" + s, sidekick: "rp_sidekick_" + s}
	for _, g := range []string{"airlock_agents", "airlock_services", "airlock_reviewers"} {
		// Cluster-wide and shared by the package's tests: made once.
		e.conn.Exec(e.ctx, "CREATE ROLE "+g+" NOLOGIN")
	}
	stmts := []string{
		"CREATE ROLE " + p.scopeRole + " NOLOGIN",
		"GRANT SELECT, UPDATE ON public.orders TO " + p.scopeRole,
		"CREATE ROLE " + p.service + " LOGIN IN ROLE " + p.scopeRole + ", airlock_services",
		"CREATE ROLE " + p.agent + " LOGIN IN ROLE airlock_agents",
		"CREATE ROLE " + p.reviewer + " LOGIN IN ROLE " + p.scopeRole + ", airlock_reviewers",
		"CREATE ROLE " + p.sidekick + " LOGIN IN ROLE " + p.service + ", airlock_reviewers",
		"GRANT USAGE ON SCHEMA airlock TO airlock_agents, airlock_services, airlock_reviewers",
		"GRANT SELECT, INSERT, UPDATE ON airlock.changes, airlock.branches TO airlock_services",
		"GRANT SELECT, UPDATE ON airlock.changes TO airlock_reviewers, airlock_agents",
		"GRANT SELECT ON airlock.scopes TO airlock_reviewers",
		"GRANT INSERT ON airlock.audit_log TO airlock_agents, airlock_services, airlock_reviewers",
	}
	for _, sql := range stmts {
		e.exec(sql)
	}
	t.Cleanup(func() {
		admin := pgtest.Connect(t, e.url)
		for _, r := range []string{p.sidekick, p.reviewer, p.agent, p.service, p.scopeRole} {
			admin.Exec(context.Background(), "DROP OWNED BY "+r)
			admin.Exec(context.Background(), "DROP ROLE "+r)
		}
	})
	p.servicePool = NewStore(newPool(t, p.as(p.service)), nil)
	return p
}

func (p *principals) as(login string) string {
	u, err := url.Parse(p.e.url)
	if err != nil {
		p.e.t.Fatal(err)
	}
	u.User = url.User(login)
	return u.String()
}

// record has the service login record a change of scope "support".
func (p *principals) record(sql string) *Change {
	p.e.t.Helper()
	c := p.e.newChange(sql, "support", ModeReplay, migrate.Options{Role: p.scopeRole})
	p.e.register("support", p.scopeRole)
	if err := p.servicePool.Record(p.e.ctx, c); err != nil {
		p.e.t.Fatal(err)
	}
	return c
}

// TestDecisionGuard: the database itself refuses a decision by the login
// that applied the change, by a member of it, and by an agent or service
// login, however the UPDATE is written; a reviewer login of its own may
// decide. The change stays pending and its data unchanged.
func TestDecisionGuard(t *testing.T) {
	e := newEnv(t)
	p := newPrincipals(t, e)
	sum := e.queryInt("SELECT sum(total)::bigint FROM orders")
	c := p.record("UPDATE orders SET total = total + 1 WHERE id <= 10")
	if got := e.queryText("SELECT applied_by::text FROM airlock.changes WHERE id = $1", c.ID); got != p.service {
		t.Fatalf("applied_by %q, want the service login %q", got, p.service)
	}
	for _, login := range []string{p.service, p.sidekick, p.agent} {
		conn := pgtest.Connect(t, p.as(login))
		for _, sql := range []string{
			"UPDATE airlock.changes SET status = 'committed', reviewer = 'x', decided_at = now() WHERE id = $1",
			"UPDATE airlock.changes SET status = 'rolled_back' WHERE id = $1",
			"UPDATE airlock.changes SET status = 'committing' WHERE id = $1",
		} {
			_, err := conn.Exec(e.ctx, sql, c.ID)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "42501" || !strings.Contains(pe.Message, "may not decide on it") {
				t.Errorf("%s: %s: %v, want the decision guard's refusal", login, sql, err)
			}
		}
		// Nor through the store.
		store := NewStore(newPool(t, p.as(login)), nil)
		if _, err := store.Commit(e.ctx, c.ID, "me"); err == nil {
			t.Errorf("%s committed its own change", login)
		}
		if err := store.CheckReviewer(e.ctx); login != p.sidekick && err == nil {
			t.Errorf("CheckReviewer(%s) = nil", login)
		}
	}
	// A recorded change cannot be rewritten, nor kept past its window.
	for _, sql := range []string{
		`UPDATE airlock.changes SET statements = '[{"sql":"DELETE FROM orders","kind":"delete","targets":["public.orders"]}]' WHERE id = $1`,
		"UPDATE airlock.changes SET expires_at = expires_at + interval '1 day' WHERE id = $1",
		"UPDATE airlock.changes SET applied_by = 'someone' WHERE id = $1",
	} {
		if _, err := pgtest.Connect(t, p.as(p.reviewer)).Exec(e.ctx, sql, c.ID); err == nil {
			t.Errorf("the reviewer ran %s", sql)
		}
	}
	// A service cannot record a decided change either.
	forged := e.newChange("UPDATE orders SET total = 0", "support", ModeReplay, migrate.Options{Role: p.scopeRole})
	forged.ID = uuid.NewString()
	if err := p.servicePool.Record(e.ctx, forged); err != nil {
		t.Fatal(err)
	}
	if got := e.queryText("SELECT status FROM airlock.changes WHERE id = $1", forged.ID); got != string(StatusPending) {
		t.Fatalf("recorded as %s", got)
	}
	if e.status(c.ID) != StatusPending || e.queryInt("SELECT sum(total)::bigint FROM orders") != sum {
		t.Fatal("the refused decisions changed something")
	}

	reviewer := NewStore(newPool(t, p.as(p.reviewer)), nil)
	if err := reviewer.CheckReviewer(e.ctx); err != nil {
		t.Fatalf("CheckReviewer(reviewer) = %v", err)
	}
	got, err := reviewer.Commit(e.ctx, c.ID, "alice")
	if err != nil || got.Status != StatusCommitted {
		t.Fatalf("the reviewer's commit: %v %+v", err, got)
	}
	if n := e.queryInt("SELECT sum(total)::bigint FROM orders"); n != sum+10 {
		t.Errorf("sum %d, want %d", n, sum+10)
	}
}

// TestReplayRunsAsTheScopeWriteRole: a commit runs every stored statement
// as the write role airlock.scopes records for the change's scope, not as
// the reviewer (a superuser here) nor as the stored options say; a scope
// never applied cannot be committed.
func TestReplayRunsAsTheScopeWriteRole(t *testing.T) {
	e := newEnv(t)
	p := newPrincipals(t, e)
	e.exec("GRANT UPDATE (notes) ON public.orders TO " + p.scopeRole)
	c := e.newChange("UPDATE orders SET notes = current_user WHERE id = 1", "support", ModeReplay, migrate.Options{})
	e.register("support", p.scopeRole)
	if err := e.store.Record(e.ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Commit(e.ctx, c.ID, "root"); err != nil {
		t.Fatal(err)
	}
	if who := e.queryText("SELECT notes FROM orders WHERE id = 1"); who != p.scopeRole {
		t.Fatalf("the statement ran as %q, want the scope's write role %q", who, p.scopeRole)
	}

	// Rights the write role lacks are not lent by a superuser reviewer.
	denied := e.newChange("UPDATE invoices SET amount = 0 WHERE id = 1", "support", ModeReplay, migrate.Options{})
	e.register("support", p.scopeRole)
	if err := e.store.Record(e.ctx, denied); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Commit(e.ctx, denied.ID, "root"); err == nil || e.queryText("SELECT amount::text FROM invoices WHERE id = 1") == "0.00" {
		t.Fatalf("a superuser's commit ran what the write role may not: %v", err)
	}

	unregistered := e.newChange("UPDATE orders SET total = 0 WHERE id = 2", "never-applied", ModeReplay, migrate.Options{})
	e.exec("DELETE FROM airlock.scopes WHERE name = 'never-applied'")
	if err := e.store.Record(e.ctx, unregistered); err != nil {
		t.Fatal(err)
	}
	_, err := e.store.Commit(e.ctx, unregistered.ID, "root")
	var na *ScopeNotAppliedError
	if !errors.As(err, &na) || e.status(unregistered.ID) != StatusPending {
		t.Fatalf("commit of an unapplied scope's change: %v", err)
	}
	var total string
	if err := e.conn.QueryRow(e.ctx, "SELECT total::text FROM orders WHERE id = 2").Scan(&total); err != nil || total == "0.00" {
		t.Fatalf("total %s, %v", total, err)
	}
}
