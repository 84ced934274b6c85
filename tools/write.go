package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// This file holds what migrate_dry_run and apply_migration_with_ticket
// share: checking a migration against the scope and running it.

// writePolicy builds the guard's write policy from the scope and the
// current read policy.
func writePolicy(w *scopes.Write, read *sqlguard.Policy) *sqlguard.WritePolicy {
	wp := &sqlguard.WritePolicy{Tables: map[string]bool{}, Allow: map[string]bool{}, Read: read}
	for _, t := range w.Tables {
		wp.Tables[t] = true
	}
	for _, k := range w.Allow {
		wp.Allow[k] = true
	}
	return wp
}

// migrateOptions are the run limits and search path the scope sets.
func migrateOptions(scope *scopes.Scope) migrate.Options {
	w := scope.Write
	return migrate.Options{
		DoRunner:           scopes.DoRunner(scope.Name),
		SearchPath:         slices.Clone(scope.Read.SearchPath),
		Prepared:           w.Mode == "prepared",
		AllowBlockingLocks: w.AllowBlockingLocks,
		StatementTimeout:   time.Duration(w.StatementTimeoutMS) * time.Millisecond,
		LockTimeout:        time.Duration(w.LockTimeoutMS) * time.Millisecond,
		LargeTableRows:     w.LargeTableRows,
		RowsAffectedWarn:   w.RowsAffectedWarn,
		Undo:               w.Undo.On(),
		WriteTables:        slices.Clone(w.Tables),
	}
}

// checkMigration runs the input checks and the guard, then makes sure every
// index the migration names belongs to a table it may write: the parse
// tree alone cannot tell which table an index is on.
func (e *Env) checkMigration(ctx context.Context, sql string) (*sqlguard.MigrationPlan, *sqlguard.Refusal, error) {
	if r := CheckInput(sql, e.Scope.Read.MaxSQLBytes); r != nil {
		return nil, r, nil
	}
	if e.UnsafeSkipGuard {
		plan, err := uncheckedPlan(sql)
		return plan, nil, err
	}
	pool, catalog := e.Target(ctx)
	policy, err := catalog.Policy(ctx)
	if err != nil {
		return nil, nil, err
	}
	wp := writePolicy(e.Scope.Write, policy)
	plan, err := wp.CheckMigration(sql)
	if err != nil {
		if ref, ok := err.(*sqlguard.Refusal); ok {
			return nil, ref, nil
		}
		return nil, nil, err
	}
	if e.noCatalogChecks {
		return plan, nil, nil
	}
	for _, st := range plan.Statements {
		for _, ix := range st.IndexTargets {
			var table *string
			err := pool.QueryRow(ctx, `
				SELECT n.nspname || '.' || c.relname
				FROM pg_catalog.pg_index i
				JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
				JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
				WHERE i.indexrelid = pg_catalog.to_regclass($1)`, ix).Scan(&table)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return nil, nil, fmt.Errorf("resolve index %s: %w", ix, err)
			}
			if table == nil || !wp.Tables[*table] {
				return nil, &sqlguard.Refusal{
					Code:   "index_not_writable",
					Reason: fmt.Sprintf("index %s is not on a table this scope may change", ix),
					Hint:   "writable tables: " + strings.Join(sortedKeys(wp.Tables), ", "),
				}, nil
			}
		}
	}
	if r, err := e.checkOperators(ctx, pool, plan); r != nil || err != nil {
		return nil, r, err
	}
	if r, err := e.checkSequences(ctx, pool, wp, plan); r != nil || err != nil {
		return nil, r, err
	}
	if r, err := e.checkKeys(ctx, pool, plan); r != nil || err != nil {
		return nil, r, err
	}
	return plan, nil, nil
}

// runMigration runs plan on a pooled connection of the session's target
// (its branch once it has one, else the source).
func (e *Env) runMigration(ctx context.Context, req mcp.CallToolRequest, plan *sqlguard.MigrationPlan, end migrate.Ending, arg migrate.RunArg) (*migrate.Report, error) {
	pool, _ := e.Target(ctx)
	return e.runMigrationOn(ctx, pool, req, plan, end, arg, "")
}

// runMigrationOn runs plan on a pooled connection of pool; capture, when
// set, is the id of the change whose rows the run captures for undo (a
// prepared apply: the capture commits with the prepared transaction).
func (e *Env) runMigrationOn(ctx context.Context, pool *pgxpool.Pool, req mcp.CallToolRequest, plan *sqlguard.MigrationPlan, end migrate.Ending, arg migrate.RunArg, capture string) (*migrate.Report, error) {
	opt := migrateOptions(e.Scope)
	opt.Capture = capture
	opt.Role = e.migrationRole(plan)
	opt.Progress = progressReporter(ctx, req)
	ctx, cancel := context.WithTimeout(ctx, opt.StatementTimeout*time.Duration(len(plan.Statements)+2)+10*time.Second)
	defer cancel()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := migrate.Run(ctx, conn.Conn(), plan, opt, end, arg)
	releaseClean(ctx, conn, runsCode(plan))
	return rep, err
}

// releaseClean returns a connection that ran agent SQL to the pool only
// clean (docs/architecture.md, Connections come back clean): idle, and
// without the session-level advisory locks a statement may have taken,
// which outlive any transaction (one that holds any is closed). A
// connection that ran procedural code (DO, CALL) is closed in any case:
// its session settings, prepared statements and listeners are more than
// a check can vouch for.
func releaseClean(ctx context.Context, conn *pgxpool.Conn, procedural bool) {
	c := conn.Conn()
	if procedural || c.IsClosed() || c.PgConn().TxStatus() != 'I' {
		conn.Hijack().Close(context.WithoutCancel(ctx))
		return
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var held bool
	if err := c.QueryRow(uctx, sessionLocksSQL).Scan(&held); err != nil || held {
		conn.Hijack().Close(uctx)
		return
	}
	conn.Release()
}

// runsCode reports whether a plan holds procedural code.
func runsCode(plan *sqlguard.MigrationPlan) bool {
	for _, st := range plan.Statements {
		if st.Kind == "do" || st.Kind == "call" || st.Kind == "unchecked" {
			return true
		}
	}
	return false
}

// progressReporter sends MCP progress notifications when the client asked
// for them with a progress token.
func progressReporter(ctx context.Context, req mcp.CallToolRequest) func(done, total int, msg string) {
	if req.Params.Meta == nil || req.Params.Meta.ProgressToken == nil {
		return nil
	}
	srv := mcpserver.ServerFromContext(ctx)
	if srv == nil {
		return nil
	}
	token := req.Params.Meta.ProgressToken
	return func(done, total int, msg string) {
		_ = srv.SendNotificationToClient(ctx, "notifications/progress", map[string]any{
			"progressToken": token, "progress": done, "total": total, "message": msg,
		})
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// migrationRole is the role a migration runs as: always the write role.
// Statements that change a table's definition then need the write role to
// own the table (write.own_tables); PostgreSQL refuses them otherwise.
func (e *Env) migrationRole(*sqlguard.MigrationPlan) string { return e.WriteRole }

// uncheckedPlan splits a migration into statements without checking them,
// for tests that switch the guard off.
func uncheckedPlan(sql string) (*sqlguard.MigrationPlan, error) {
	stmts, err := pg_query.SplitWithParser(sql, true)
	if err != nil {
		return nil, fmt.Errorf("split migration: %w", err)
	}
	plan := &sqlguard.MigrationPlan{}
	for _, s := range stmts {
		plan.Statements = append(plan.Statements, sqlguard.MigrationStatement{SQL: strings.TrimSpace(s), Kind: "unchecked", HasWhere: true})
	}
	return plan, nil
}

// rowKinds are the statement kinds whose rows a capture records.
var rowKinds = map[string]bool{"insert": true, "update": true, "delete": true, "truncate": true}

// checkKeys refuses, in a scope with undo on, row changes to a table with
// neither a primary key nor a replica identity index: a revert could not
// tell its rows apart (docs/architecture.md, Undo).
func (e *Env) checkKeys(ctx context.Context, pool *pgxpool.Pool, plan *sqlguard.MigrationPlan) (*sqlguard.Refusal, error) {
	if !e.Scope.Write.Undo.On() {
		return nil, nil
	}
	var tables []string
	for _, st := range plan.Statements {
		if rowKinds[st.Kind] {
			tables = append(tables, st.Targets...)
		}
	}
	if len(tables) == 0 {
		return nil, nil
	}
	rows, err := pool.Query(ctx, `
		SELECT t FROM unnest($1::text[]) AS t
		WHERE pg_catalog.to_regclass(t) IS NOT NULL AND NOT EXISTS (
			SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = pg_catalog.to_regclass(t) AND (i.indisprimary OR i.indisreplident))`, tables)
	if err != nil {
		return nil, fmt.Errorf("look up primary keys: %w", err)
	}
	keyless, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("look up primary keys: %w", err)
	}
	if len(keyless) > 0 {
		return &sqlguard.Refusal{
			Code:   "no_primary_key",
			Reason: fmt.Sprintf("%s has no primary key (or replica identity index), and this scope keeps every committed change revertible (write.undo): a revert could not tell its rows apart", strings.Join(keyless, ", ")),
			Hint:   "add a primary key to the table first, or ask an admin to turn write.undo off for this scope",
		}, nil
	}
	return nil, nil
}
