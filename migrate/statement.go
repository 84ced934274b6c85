package migrate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/sqlguard"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pg "github.com/pganalyze/pg_query_go/v6"
)

// statement runs statement i alone and records what it did.
func (r *runner) statement(ctx context.Context, i int) error {
	st := &r.plan.Statements[i]
	sql := executedSQL(st)
	tree, err := checkStatement(sql)
	if err != nil {
		return &StatementError{Index: i, SQL: sql, Kind: st.Kind, Err: err}
	}
	img, err := r.planImage(ctx, i, tree)
	if err != nil {
		return r.ownQueryError(ctx, fmt.Sprintf("reading the columns of statement %d's table", i+1), err)
	}
	switch {
	case i < len(r.opt.CaptureEach):
		if _, err := r.tx.Exec(ctx, "SELECT pg_catalog.set_config('airlock.capture', $1, true), pg_catalog.set_config('airlock.capture_stmt', $2, true)",
			r.opt.CaptureEach[i], strconv.Itoa(i)); err != nil {
			return r.ownQueryError(ctx, "numbering the capture", err)
		}
	case r.opt.Capture != "":
		if _, err := r.tx.Exec(ctx, "SELECT pg_catalog.set_config('airlock.capture_stmt', $1, true)", strconv.Itoa(i)); err != nil {
			return r.ownQueryError(ctx, "numbering the capture", err)
		}
	}
	cascades, err := r.watchCascades(ctx, i, st)
	if err != nil {
		return r.ownQueryError(ctx, "reading foreign keys", err)
	}
	t0 := time.Now()
	tag, ran, err := r.trashStatement(ctx, i, st, sql, tree)
	switch {
	case err != nil || ran:
	case st.Kind == "do" && r.opt.Role != "":
		tag, err = r.execDo(ctx, st)
	case img != nil && img.sql != "":
		tag, err = execImage(ctx, r.conn, img)
	default:
		tag, err = execOne(ctx, r.conn, sql)
	}
	elapsed := time.Since(t0)
	if err != nil {
		return r.statementError(ctx, i, err)
	}
	if err := cascades.check(ctx, r, i); err != nil {
		var ce *CascadeError
		if errors.As(err, &ce) {
			return err
		}
		return r.ownQueryError(ctx, "reading the rows a cascade changed", err)
	}
	if s := r.conn.PgConn().TxStatus(); s != 'T' {
		// checkStatement makes this unreachable; if it ever is reached,
		// stop before anything else runs outside the transaction.
		return &StatementError{Index: i, SQL: sql, Kind: st.Kind,
			Err: fmt.Errorf("the statement ended the transaction (status %q)", s)}
	}
	locks, rewritten, err := r.obs.observe(ctx, r.tx)
	if err != nil {
		return r.ownQueryError(ctx, fmt.Sprintf("observing statement %d", i+1), err)
	}
	sr := StatementReport{
		SQL:           st.SQL,
		Kind:          st.Kind,
		Kinds:         st.Kinds,
		RowsAffected:  tag.RowsAffected(),
		ElapsedMS:     ms(elapsed),
		Locks:         locks,
		RewritesTable: len(rewritten) > 0,
		Rewritten:     rewritten,
	}
	if sql != st.SQL {
		sr.ExecutedSQL = sql
	}
	if img != nil {
		sr.Rows = &img.effect
		sr.Compared = img.effect.Compared
	}
	if sr.allRows, err = r.touchedEveryRow(ctx, st, sr.RowsAffected); err != nil {
		return r.ownQueryError(ctx, fmt.Sprintf("counting the rows of statement %d's table", i+1), err)
	}
	r.report.Statements = append(r.report.Statements, sr)
	if r.opt.Progress != nil {
		r.opt.Progress(i+1, len(r.plan.Statements), progressMessage(i, &sr))
	}
	return nil
}

// planImage plans statement i's row image: with a fresh salt in a dry
// run, and exactly as the dry run captured it in a replay. A replay of a
// change recorded before row images existed compares counts only.
func (r *runner) planImage(ctx context.Context, i int, tree *pg.ParseResult) (*imagePlan, error) {
	if r.end != EndCommitIfSame {
		return planImage(ctx, r.tx, tree, r.salt, nil)
	}
	if i >= len(r.arg.Expected.Rows) || r.arg.Expected.Rows[i].Salt == "" {
		return nil, nil
	}
	want := r.arg.Expected.Rows[i]
	return planImage(ctx, r.tx, tree, want.Salt, &want)
}

// touchedEveryRow reports whether an UPDATE or DELETE with a WHERE clause
// reached every row of its table (docs/architecture.md, Risk): such a
// predicate is as destructive as none. The count stops one row past what
// the statement touched, so it never reads more than the statement did.
// A table the role may read no column of is not counted.
func (r *runner) touchedEveryRow(ctx context.Context, st *sqlguard.MigrationStatement, affected int64) (bool, error) {
	if affected == 0 || !st.HasWhere || len(st.Targets) == 0 || (st.Kind != "update" && st.Kind != "delete") {
		return false, nil
	}
	schema, name, ok := strings.Cut(st.Targets[0], ".")
	if !ok {
		return false, nil
	}
	var readable bool
	err := r.tx.QueryRow(ctx, `SELECT coalesce(pg_catalog.has_any_column_privilege(c.oid, 'SELECT'), false)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2`, schema, name).Scan(&readable)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !readable) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var left int64
	table := pgx.Identifier{schema, name}.Sanitize()
	if st.Kind == "delete" {
		err = r.tx.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM "+table+" LIMIT 1) s").Scan(&left)
		return err == nil && left == 0, err
	}
	// An UPDATE leaves as many rows as it found: every row was touched when
	// the table holds exactly as many as it affected.
	err = r.tx.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM "+table+" LIMIT $1) s", affected+1).Scan(&left)
	return err == nil && left == affected, err
}

// executedSQL is the text Run sends for a statement: the guard's
// schema-qualified rendering when it has one, so that the statement hits
// exactly the tables the guard checked whatever the session's search_path.
func executedSQL(st *sqlguard.MigrationStatement) string {
	if st.QualifiedSQL != "" {
		return st.QualifiedSQL
	}
	return st.SQL
}

// execDo runs a DO block's body through the scope's runner, a SECURITY
// DEFINER function owned by the write role: PostgreSQL refuses SET ROLE,
// RESET ROLE and SET SESSION AUTHORIZATION inside one, so the block keeps
// exactly the write role's rights. The body is a bound parameter.
func (r *runner) execDo(ctx context.Context, st *sqlguard.MigrationStatement) (pgconn.CommandTag, error) {
	if r.opt.DoRunner == "" || st.DoBody == "" {
		return pgconn.CommandTag{}, errors.New("DO blocks run only through the scope's DO runner, which this scope does not have: an admin applies the scope (airlock scope apply) with \"do\" in write.allow")
	}
	return r.conn.PgConn().ExecParams(ctx, "SELECT "+r.opt.DoRunner+"($1)", [][]byte{[]byte(st.DoBody)}, []uint32{25}, nil, nil).Close()
}

// execOne is the only path agent SQL takes to the server. ExecParams forces
// the extended protocol: one Parse message holds one statement, and the
// server refuses a text with several. (conn.Exec without arguments would
// use the simple protocol whatever the QueryExecMode, and run them all.)
// Rows a statement returns are read and dropped, never buffered.
func execOne(ctx context.Context, conn *pgx.Conn, sql string) (pgconn.CommandTag, error) {
	return conn.PgConn().ExecParams(ctx, sql, nil, nil, nil, nil).Close()
}

// checkStatement refuses, on the parse tree, what must never reach the
// server inside Run's transaction whatever the guard decided: more than one
// statement, or transaction control (COMMIT would make a dry run permanent,
// PREPARE TRANSACTION would hide it). The guard refuses these too; this
// layer holds on its own.
func checkStatement(sql string) (*pg.ParseResult, error) {
	tree, err := pg.Parse(sql)
	if err != nil {
		return nil, fmt.Errorf("does not parse: %w", err)
	}
	if len(tree.Stmts) != 1 {
		return nil, fmt.Errorf("holds %d statements, want exactly one", len(tree.Stmts))
	}
	if tree.Stmts[0].Stmt.GetTransactionStmt() != nil {
		return nil, errors.New("transaction control is not allowed in a migration")
	}
	return tree, nil
}

func progressMessage(i int, sr *StatementReport) string {
	msg := fmt.Sprintf("statement %d (%s): %d rows, %.1f ms", i+1, sr.Kind, sr.RowsAffected, sr.ElapsedMS)
	if sr.RewritesTable {
		msg += ", rewrote a table"
	}
	return msg
}

func (r *runner) statementError(ctx context.Context, i int, err error) error {
	return &StatementError{
		Index:    i,
		SQL:      executedSQL(&r.plan.Statements[i]),
		Kind:     r.plan.Statements[i].Kind,
		Err:      err,
		timeout:  r.opt.StatementTimeout,
		lockWait: r.opt.LockTimeout,
		canceled: ctx.Err() != nil,
	}
}
