package review

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/sqlguard"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// env is a fresh seeded database with airlock's schema, a store over it
// and a plain connection for checks.
type env struct {
	t     *testing.T
	ctx   context.Context
	url   string
	pool  *pgxpool.Pool
	log   *audit.Log
	store *Store
	conn  *pgx.Conn
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ctx: testContext(t), url: pgtest.NewDatabase(t)}
	e.pool = newPool(t, e.url)
	if err := EnsureSchema(e.ctx, e.pool); err != nil {
		t.Fatal(err)
	}
	e.log = audit.NewLog(e.pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(e.log.Close) // before the pool closes
	e.store = NewStore(e.pool, e.log)
	e.store.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	e.conn = pgtest.Connect(t, e.url)
	return e
}

func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// writePolicy lets a migration do anything to orders and invoices.
func writePolicy() *sqlguard.WritePolicy {
	allow := map[string]bool{}
	for _, k := range sqlguard.MigrationKinds {
		allow[k] = true
	}
	return &sqlguard.WritePolicy{
		Tables: map[string]bool{"public.orders": true, "public.invoices": true},
		Allow:  allow,
	}
}

func checkPlan(t testing.TB, sql string) *sqlguard.MigrationPlan {
	t.Helper()
	plan, err := writePolicy().CheckMigration(sql)
	if err != nil {
		t.Fatalf("CheckMigration(%q): %v", sql, err)
	}
	return plan
}

// newChange dry-runs sql (replay) or prepares it (prepared) and returns
// the change, not yet recorded.
func (e *env) newChange(sql, scope string, mode Mode, opt migrate.Options) *Change {
	e.t.Helper()
	plan := checkPlan(e.t, sql)
	conn := pgtest.Connect(e.t, e.url)
	end, arg := migrate.EndRollback, migrate.RunArg{}
	if mode == ModePrepared {
		end, arg = migrate.EndPrepare, migrate.RunArg{GID: NewGID()}
		// These tests hold DDL locks on purpose, to review around them.
		opt.AllowBlockingLocks = true
	}
	rep, err := migrate.Run(e.ctx, conn, plan, opt, end, arg)
	if err != nil {
		e.t.Fatalf("run %q: %v", sql, err)
	}
	c := NewChange(plan, rep, opt)
	c.Ticket, c.Summary, c.SQL, c.Scope, c.Session = "OPS-1", "test change", sql, scope, "session-1"
	e.registerIfMissing(scope, "postgres")
	c.Mode, c.GID, c.TTL = mode, arg.GID, time.Hour
	return c
}

// register records scope in airlock.scopes, as airlock scope apply would,
// with writeRole as the role its changes are committed as. These tests run
// as the superuser and give it that role, so that the store's own
// mechanics are what they test; server, cmd and e2e tests commit as real
// write roles.
func (e *env) register(scope, writeRole string) {
	e.t.Helper()
	if _, err := e.pool.Exec(e.ctx, `INSERT INTO airlock.scopes (name, document, version, read_role, write_role)
		VALUES ($1, $4::jsonb, 'test', $2, $3) ON CONFLICT (name) DO UPDATE SET write_role = EXCLUDED.write_role`,
		scope, "airlock_"+scope+"_read", writeRole, testScopeDoc(scope)); err != nil {
		e.t.Fatalf("register scope %s: %v", scope, err)
	}
}

// registerIfMissing is register for a scope not registered yet.
func (e *env) registerIfMissing(scope, writeRole string) {
	e.t.Helper()
	if _, err := e.pool.Exec(e.ctx, `INSERT INTO airlock.scopes (name, document, version, read_role, write_role)
		VALUES ($1, $4::jsonb, 'test', $2, $3) ON CONFLICT (name) DO NOTHING`, scope, "airlock_"+scope+"_read", writeRole, testScopeDoc(scope)); err != nil {
		e.t.Fatalf("register scope %s: %v", scope, err)
	}
}

// record makes and records a change.
func (e *env) record(sql, scope string, mode Mode) *Change {
	e.t.Helper()
	c := e.newChange(sql, scope, mode, migrate.Options{})
	if err := e.store.Record(e.ctx, c); err != nil {
		e.t.Fatalf("Record: %v", err)
	}
	return c
}

func (e *env) queryInt(sql string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.conn.QueryRow(e.ctx, sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.conn.Exec(e.ctx, sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

func (e *env) status(id string) Status {
	e.t.Helper()
	c, err := e.store.Get(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Get(%s): %v", id, err)
	}
	return c.Status
}

func (e *env) prepared(gid string) bool {
	e.t.Helper()
	return e.queryInt("SELECT count(*) FROM pg_prepared_xacts WHERE gid = $1", gid) == 1
}

// auditEvent is one row of airlock.audit_log.
type auditEvent struct {
	Actor, Tool, Decision, Reason, ChangeID string
	Rows                                    int64
}

// auditLog flushes the log and returns its rows, oldest first. The store
// may not audit anything afterwards.
func (e *env) auditLog() []auditEvent {
	e.t.Helper()
	e.log.Close()
	rows, err := e.conn.Query(e.ctx, `SELECT actor, tool, decision, COALESCE(reason, ''), COALESCE(change_id::text, ''), COALESCE(rows, 0)
		FROM airlock.audit_log ORDER BY id`)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (auditEvent, error) {
		var a auditEvent
		err := r.Scan(&a.Actor, &a.Tool, &a.Decision, &a.Reason, &a.ChangeID, &a.Rows)
		return a, err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) queryText(sql string, args ...any) string {
	e.t.Helper()
	var s string
	if err := e.conn.QueryRow(e.ctx, sql, args...).Scan(&s); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func (e *env) queryTextOn(pool *pgxpool.Pool, sql string) string {
	e.t.Helper()
	var s string
	if err := pool.QueryRow(e.ctx, sql).Scan(&s); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// testScopeDoc is a registry document for scope that loads: the store's
// own tests keep undo off (the undo tests run through the binary).
func testScopeDoc(scope string) string {
	return fmt.Sprintf(`{"name": %q, "read": {"tables": {"public.orders": {}}},
		"write": {"mode": "replay", "tables": ["public.orders"], "allow": ["update"], "ticket_pattern": "^[A-Z]+-[0-9]+$",
		"undo": {"enabled": false}}}`, scope)
}
