package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/scopes"
)

// The watchdog holds what PostgreSQL cannot (docs/architecture.md, What the
// agent login can do with plain SQL): an agent login's session may raise
// its own statement_timeout and idle_in_transaction_session_timeout with
// SET, leave a prepared transaction holding its locks, or leave large
// objects behind. The service, a member of each agent login (airlock scope
// apply grants it), ends such sessions, rolls back such transactions and
// removes such objects, and audits each.

// agentLoginsSQL lists the agent logins the service may act for: the
// members of airlock_agents whose privileges the service has.
const agentLoginsSQL = `
SELECT r.rolname FROM pg_catalog.pg_roles r
JOIN pg_catalog.pg_auth_members m ON m.member = r.oid
JOIN pg_catalog.pg_roles g ON g.oid = m.roleid AND g.rolname = 'airlock_agents'
WHERE r.rolcanlogin AND pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')
ORDER BY 1`

// overdueSQL lists the agent logins' backends in this database that run a
// statement longer than $2 or sit idle in a transaction longer than $3.
const overdueSQL = `
SELECT pid, usename::text, state, coalesce(now() - query_start, '0')::text
FROM pg_catalog.pg_stat_activity
WHERE datname = current_database() AND usename = ANY($1) AND pid <> pg_catalog.pg_backend_pid()
  AND ((state = 'active' AND now() - query_start > $2::interval)
    OR (state LIKE 'idle in transaction%' AND now() - state_change > $3::interval))`

// watchdog ends what an agent login left running, idle or prepared.
type watchdog struct {
	pool   *pgxpool.Pool
	scope  *scopes.Scope
	audit  *audit.Log
	logger *slog.Logger
	// grace is added to the scope's limits (default watchdogGrace).
	grace time.Duration
}

// watchdogGrace is the time past the scope's statement_timeout an agent
// login's statement, or its idle transaction, is given, as airlock gives
// its own reads for idle_in_transaction_session_timeout.
const watchdogGrace = 5 * time.Second

// limits are how long an agent login's statement may run, and its
// transaction sit idle, before the watchdog ends its session.
func (w *watchdog) limits() (run, idle time.Duration) {
	grace := w.grace
	if grace == 0 {
		grace = watchdogGrace
	}
	d := time.Duration(w.scope.Read.StatementTimeoutMS)*time.Millisecond + grace
	return d, d
}

// sweep runs once.
func (w *watchdog) sweep(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	rows, err := w.pool.Query(ctx, agentLoginsSQL)
	if err != nil {
		w.logger.Warn("watchdog: list the agent logins", "err", err)
		return
	}
	agents, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(agents) == 0 {
		return
	}
	run, idle := w.limits()
	w.endOverdue(ctx, agents, run, idle)
	w.rollbackPrepared(ctx, agents)
	w.removeLargeObjects(ctx, agents)
}

func (w *watchdog) endOverdue(ctx context.Context, agents []string, run, idle time.Duration) {
	type backend struct {
		pid          int32
		login, state string
		running      string
	}
	rows, err := w.pool.Query(ctx, overdueSQL, agents, run.String(), idle.String())
	if err != nil {
		w.logger.Warn("watchdog: list overdue sessions", "err", err)
		return
	}
	overdue, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (backend, error) {
		var b backend
		err := r.Scan(&b.pid, &b.login, &b.state, &b.running)
		return b, err
	})
	if err != nil {
		w.logger.Warn("watchdog: list overdue sessions", "err", err)
		return
	}
	for _, b := range overdue {
		var ended bool
		if err := w.pool.QueryRow(ctx, "SELECT pg_catalog.pg_terminate_backend($1)", b.pid).Scan(&ended); err != nil || !ended {
			w.logger.Warn("watchdog: end an overdue agent session", "pid", b.pid, "login", b.login, "err", err)
			continue
		}
		w.record(b.login, fmt.Sprintf("ended backend %d of agent login %s: %s past the scope's limits (%s)", b.pid, b.login, b.state, b.running))
	}
}

// rollbackPrepared rolls back every prepared transaction an agent login
// left: an agent never has a reason to prepare one, and it holds its locks
// until someone ends it. PostgreSQL lets only its owner (or a superuser)
// finish it, so the service steps into the owner's role for the command.
func (w *watchdog) rollbackPrepared(ctx context.Context, agents []string) {
	rows, err := w.pool.Query(ctx, `SELECT gid, owner::text, format('ROLLBACK PREPARED %L', gid), format('SET ROLE %I', owner)
		FROM pg_catalog.pg_prepared_xacts WHERE database = current_database() AND owner = ANY($1)`, agents)
	if err != nil {
		w.logger.Warn("watchdog: list prepared transactions", "err", err)
		return
	}
	type prepared struct{ gid, owner, rollback, setRole string }
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (prepared, error) {
		var p prepared
		err := r.Scan(&p.gid, &p.owner, &p.rollback, &p.setRole)
		return p, err
	})
	if err != nil {
		return
	}
	for _, p := range list {
		if err := w.asRole(ctx, p.setRole, p.rollback); err != nil {
			w.logger.Warn("watchdog: roll back an agent's prepared transaction", "owner", p.owner, "err", err)
			continue
		}
		w.record(p.owner, fmt.Sprintf("rolled back prepared transaction %q of agent login %s", p.gid, p.owner))
	}
}

// removeLargeObjects removes the large objects an agent login owns: no
// scope gives an agent any, so any it made is a leftover (airlock scope
// apply --harden takes the functions from it in the first place).
func (w *watchdog) removeLargeObjects(ctx context.Context, agents []string) {
	rows, err := w.pool.Query(ctx, `SELECT m.oid::int8, r.rolname::text, format('SET ROLE %I', r.rolname)
		FROM pg_catalog.pg_largeobject_metadata m JOIN pg_catalog.pg_roles r ON r.oid = m.lomowner
		WHERE r.rolname = ANY($1) LIMIT 1000`, agents)
	if err != nil {
		return
	}
	type object struct {
		oid            int64
		owner, setRole string
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (object, error) {
		var o object
		err := r.Scan(&o.oid, &o.owner, &o.setRole)
		return o, err
	})
	if err != nil {
		return
	}
	for _, o := range list {
		if err := w.asRole(ctx, o.setRole, fmt.Sprintf("SELECT pg_catalog.lo_unlink(%d)", o.oid)); err != nil {
			w.logger.Warn("watchdog: remove an agent's large object", "owner", o.owner, "err", err)
			continue
		}
		w.record(o.owner, fmt.Sprintf("removed large object %d of agent login %s", o.oid, o.owner))
	}
}

// asRole runs stmt after setRole on a connection of its own, which is
// closed afterwards rather than returned to the pool in another role.
func (w *watchdog) asRole(ctx context.Context, setRole, stmt string) error {
	c, err := w.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := c.Hijack()
	defer conn.Close(context.Background())
	// Both statements were rendered by the database (format with %I and
	// %L): the names in them are quoted as PostgreSQL quotes them.
	if _, err := conn.Exec(ctx, setRole); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, stmt)
	return err
}

func (w *watchdog) record(login, what string) {
	w.logger.Warn("watchdog: "+what, "login", login)
	w.audit.Record(audit.Event{Actor: "watchdog", Scope: w.scope.Name, Tool: "watchdog", Decision: audit.Refused, Reason: what})
}

// run sweeps every interval until ctx ends.
func (w *watchdog) run(ctx context.Context, interval time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.sweep(ctx)
			}
		}
	}()
	return done
}
