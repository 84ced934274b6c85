package migrate

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/sqlguard"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pg "github.com/pganalyze/pg_query_go/v6"
)

// Defaults applied by Run when an Options field is zero.
const (
	DefaultStatementTimeout = 30 * time.Second
	DefaultLockTimeout      = 2 * time.Second
	DefaultLargeTableRows   = 100000
	DefaultRowsAffectedWarn = 10000
)

// airlockSchema holds airlock's own bookkeeping (pending changes, audit).
// Its tables are never part of a report: the BeforeCommit hook writes there.
const airlockSchema = "airlock"

// Options tune one Run. The zero value is usable.
type Options struct {
	// StatementTimeout is SET LOCAL statement_timeout (default 30s). It
	// also bounds how long the transaction may sit idle between commands.
	StatementTimeout time.Duration
	// LockTimeout is SET LOCAL lock_timeout (default 2s): a dry run takes
	// the same locks as the real thing and must not queue behind traffic.
	LockTimeout time.Duration
	// Role, if set, is assumed with SET LOCAL ROLE right after BEGIN, so
	// the database's own privileges bound what the migration can do.
	Role string
	// SearchPath lists the scope's schemas. The transaction's search_path
	// is pg_catalog, these (default public), pg_temp: pg_catalog first, so
	// that no same-named object of another schema shadows a built-in one
	// (docs/architecture.md, Write statements: the read rules everywhere).
	SearchPath []string
	// LargeTableRows is the estimated row count above which a table is
	// "large" for the lock, rewrite and scan findings (default 100000).
	LargeTableRows int64
	// RowsAffectedWarn is the per-statement row count above which RA101 is
	// reported (default 10000).
	RowsAffectedWarn int64
	// Prepared says the change will be held in a prepared transaction
	// until a reviewer acts (set it for a prepared-mode scope's dry runs
	// too): locks it keeps on pre-existing tables are then reported as
	// LK102, and EndPrepare refuses one that blocks reads unless
	// AllowBlockingLocks (docs/architecture.md, Held changes).
	Prepared           bool
	AllowBlockingLocks bool
	// DoRunner is the qualified name of the scope's DO runner
	// (scopes.DoRunner): with a Role set, a DO statement's body runs only
	// through it, never as a plain DO, because inside a plain DO a RESET
	// ROLE would give the block the login's own rights.
	DoRunner string
	// Undo says the scope reverts committed changes: statements a revert
	// could not undo are reported (UN101, danger).
	Undo bool
	// WriteTables, when not nil, lists the scope's write tables
	// ("schema.table"): a statement whose foreign key actions (ON DELETE or
	// ON UPDATE CASCADE, SET NULL, SET DEFAULT, which PostgreSQL runs with
	// the referencing table owner's rights) change rows of any other table
	// fails with *CascadeError, and nothing is applied.
	WriteTables []string
	// Capture, when set, is the id of the change being committed: the
	// write tables' capture triggers record the before and after images
	// of every row each statement touches under it (docs/architecture.md,
	// Undo). Empty for dry runs.
	Capture string
	// CaptureEach, when set, names the change each statement belongs to,
	// by index: a branch merge runs several changes in one transaction,
	// and each change's rows are captured under its own id. It overrides
	// Capture.
	CaptureEach []string
	// Progress, if set, is called after each statement with the number of
	// statements done, the total, and a one-line summary of the last one.
	Progress func(done, total int, message string)
}

func (o Options) withDefaults() Options {
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = DefaultStatementTimeout
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.LargeTableRows <= 0 {
		o.LargeTableRows = DefaultLargeTableRows
	}
	if o.RowsAffectedWarn <= 0 {
		o.RowsAffectedWarn = DefaultRowsAffectedWarn
	}
	return o
}

// Ending says how Run finishes the transaction once every statement ran.
type Ending int

const (
	// EndRollback always rolls back: a dry run.
	EndRollback Ending = iota
	// EndPrepare ends with PREPARE TRANSACTION RunArg.GID: the change
	// survives a crash and keeps its locks until a reviewer runs COMMIT
	// PREPARED or ROLLBACK PREPARED.
	EndPrepare
	// EndCommitIfSame commits only when the run's Effects equal
	// RunArg.Expected; otherwise it rolls back and returns a *Drift.
	EndCommitIfSame
	// EndCommit commits unconditionally (after RunArg.BeforeCommit): a
	// branch database, which is the agent's own copy, takes the change at
	// once and the reviewer merges it into the source later.
	EndCommit
)

// String names the ending as logs and errors show it.
func (e Ending) String() string {
	switch e {
	case EndRollback:
		return "rollback"
	case EndPrepare:
		return "prepare"
	case EndCommitIfSame:
		return "commit-if-same"
	case EndCommit:
		return "commit"
	}
	return fmt.Sprintf("Ending(%d)", int(e))
}

// RunArg carries what a particular Ending needs.
type RunArg struct {
	// GID names the prepared transaction for EndPrepare. It must be
	// "airlock_" followed by a UUID, built by the caller from uuid.New(),
	// never from user input.
	GID string
	// Expected is the dry run's Effects, required by EndCommitIfSame.
	Expected *Effects
	// IgnoreSchemaDiff makes EndCommitIfSame compare only the rows
	// affected: a caller replaying several changes at once compares the
	// resulting schema itself (in BeforeCommit), since the combined run's
	// diff need not equal the changes' diffs one by one.
	IgnoreSchemaDiff bool
	// BeforeCommit, if set, runs inside the transaction just before COMMIT
	// or PREPARE TRANSACTION (never for EndRollback, nor after a drift),
	// e.g. to mark the change committed atomically with it. It runs with
	// the connection's own rights: Options.Role is reset first. An error
	// rolls everything back.
	BeforeCommit func(ctx context.Context, tx pgx.Tx) error
	// Undo, in a run with Options.Capture or CaptureEach, collects what
	// the statements put into the trash (TrashSchema) for BeforeCommit to
	// record with the capture.
	Undo *UndoLog
}

var gidPattern = regexp.MustCompile(`^airlock_[0-9a-f-]{36}$`)

// rollbackGrace bounds the ROLLBACK sent after a failure, even when the
// caller's context is already done.
const rollbackGrace = 5 * time.Second

// Run executes plan on conn in one transaction and ends it as end says.
//
// conn must be idle (not inside a transaction). Each statement is sent
// alone through the extended query protocol, so a text holding several
// statements is rejected by the server rather than run. On any failure the
// transaction is rolled back; if even the rollback fails the connection is
// closed, so conn is always either idle or closed when Run returns.
//
// The report is nil on error, except that a *Drift carries the report of
// the run that drifted. A statement failure is a *StatementError.
func Run(ctx context.Context, conn *pgx.Conn, plan *sqlguard.MigrationPlan, opt Options, end Ending, arg RunArg) (*Report, error) {
	if err := checkArgs(conn, plan, end, arg); err != nil {
		return nil, err
	}
	r := &runner{conn: conn, plan: plan, opt: opt.withDefaults(), end: end, arg: arg, salt: newSalt()}
	return r.run(ctx)
}

func checkArgs(conn *pgx.Conn, plan *sqlguard.MigrationPlan, end Ending, arg RunArg) error {
	if conn == nil || conn.IsClosed() {
		return errors.New("migrate: connection is closed")
	}
	if plan == nil || len(plan.Statements) == 0 {
		return errors.New("migrate: the migration has no statements")
	}
	if s := conn.PgConn().TxStatus(); s != 'I' {
		return fmt.Errorf("migrate: connection is not idle (transaction status %q)", s)
	}
	switch end {
	case EndRollback, EndCommit:
	case EndPrepare:
		if !gidPattern.MatchString(arg.GID) {
			return fmt.Errorf("migrate: invalid prepared transaction id %q: want airlock_<uuid>", arg.GID)
		}
	case EndCommitIfSame:
		if arg.Expected == nil {
			return errors.New("migrate: commit-if-same needs the expected effects")
		}
	default:
		return fmt.Errorf("migrate: unknown ending %v", end)
	}
	return nil
}

// runner holds the state of one Run.
type runner struct {
	conn *pgx.Conn
	plan *sqlguard.MigrationPlan
	opt  Options
	end  Ending
	arg  RunArg

	tx      pgx.Tx
	salt    string   // the row images' HMAC key for a run without expected effects
	targets []string // every table (or index) the plan writes or alters
	before  *catalog
	rows    map[uint32]int64 // estimated rows of pre-existing relations, by oid
	obs     *observer
	report  *Report

	// trash holds each drop statement's trash entries, worked out before
	// it ran; trashBlocked why a statement's drop cannot be undone.
	trash        map[int][]TrashEntry
	trashBlocked map[int]string
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	start := time.Now()
	var err error
	r.tx, err = r.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	finished := false
	defer func() {
		if !finished {
			_ = r.rollback(ctx)
		}
	}()

	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	r.report = &Report{Statements: make([]StatementReport, 0, len(r.plan.Statements))}
	for i := range r.plan.Statements {
		if err := r.statement(ctx, i); err != nil {
			return nil, err
		}
	}
	// A dry run never reaches COMMIT, where deferred constraints are
	// checked: check them now so every ending sees the same failures.
	if _, err := r.tx.Exec(ctx, "SET CONSTRAINTS ALL IMMEDIATE"); err != nil {
		return nil, r.ownQueryError(ctx, "deferred constraint check", err)
	}
	after, err := snapshotAfter(ctx, r.tx, r.before, r.obs.lockedOIDs())
	if err != nil {
		return nil, r.ownQueryError(ctx, "reading the catalog after the statements", err)
	}
	r.finishReport(after)

	finished = true
	err = r.finish(ctx)
	r.report.ElapsedMS = ms(time.Since(start))
	if err != nil {
		var drift *Drift
		if errors.As(err, &drift) {
			drift.Report = r.report
		}
		return nil, err
	}
	return r.report, nil
}

// setup applies the transaction's limits and role, then takes the catalog
// snapshot everything else is compared against.
func (r *runner) setup(ctx context.Context) error {
	idle := r.opt.StatementTimeout
	if idle < 10*time.Second {
		idle = 10 * time.Second
	}
	cmds := []string{
		fmt.Sprintf("SET LOCAL statement_timeout = %d", r.opt.StatementTimeout.Milliseconds()),
		fmt.Sprintf("SET LOCAL lock_timeout = %d", r.opt.LockTimeout.Milliseconds()),
		fmt.Sprintf("SET LOCAL idle_in_transaction_session_timeout = %d", idle.Milliseconds()),
	}
	if r.opt.Role != "" {
		cmds = append(cmds, "SET LOCAL ROLE "+pgx.Identifier{r.opt.Role}.Sanitize())
	}
	cmds = append(cmds, "SET LOCAL search_path = "+searchPath(r.opt.SearchPath))
	// Our own fixed text, so one simple-protocol round trip is fine here.
	if _, err := r.tx.Exec(ctx, strings.Join(cmds, "; ")); err != nil {
		return fmt.Errorf("set up transaction: %w", err)
	}
	if r.opt.Capture != "" {
		if _, err := r.tx.Exec(ctx, "SELECT pg_catalog.set_config('airlock.capture', $1, true)", r.opt.Capture); err != nil {
			return fmt.Errorf("set up the capture: %w", err)
		}
	}
	var err error
	r.targets = targetTables(r.plan)
	if r.before, err = snapshotBefore(ctx, r.tx, r.targets); err != nil {
		return r.ownQueryError(ctx, "reading the migration's tables", err)
	}
	r.rows = estimateRows(ctx, r.tx, r.before, r.targets)
	r.obs = newObserver(r.before)
	// The baseline: locks taken so far (estimateRows's ACCESS SHARE) are
	// not the first statement's.
	if _, _, err := r.obs.observe(ctx, r.tx); err != nil {
		return r.ownQueryError(ctx, "observing locks", err)
	}
	return nil
}

// searchPath renders a write transaction's search_path.
func searchPath(schemas []string) string {
	if len(schemas) == 0 {
		schemas = []string{"public"}
	}
	parts := []string{"pg_catalog"}
	for _, s := range schemas {
		if s != "pg_catalog" && s != "pg_temp" {
			parts = append(parts, pgx.Identifier{s}.Sanitize())
		}
	}
	return strings.Join(append(parts, "pg_temp"), ", ")
}

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

func (r *runner) finishReport(after *catalog) {
	rep := r.report
	rep.SchemaDiff = diffCatalogs(r.before, after)
	rep.HeldLocks = r.obs.held()
	rep.Warnings = r.findings(after)
	rep.Risk = risk(r.plan, rep.Warnings)
	if r.arg.Undo == nil {
		return
	}
	// What the run found a revert could not undo marks the capture of
	// the change it belongs to (every change of the run for a
	// migration-wide finding).
	if r.arg.Undo.Irreversible == nil {
		r.arg.Undo.Irreversible = map[string]string{}
	}
	for _, f := range rep.Warnings {
		if f.Code != "UN101" {
			continue
		}
		for i := range r.plan.Statements {
			if f.Statement >= 0 && f.Statement != i {
				continue
			}
			msg := f.Message
			if f.Statement >= 0 {
				msg = fmt.Sprintf("statement %d: %s", i+1, f.Message)
			}
			if id := r.captureID(i); id != "" && r.arg.Undo.Irreversible[id] == "" {
				r.arg.Undo.Irreversible[id] = msg
			}
		}
	}
}

// finish ends the transaction as r.end says. The deferred rollback in run
// is disarmed before this is called: every path here leaves the
// connection idle or closed on its own.
func (r *runner) finish(ctx context.Context) error {
	switch r.end {
	case EndPrepare:
		if blocking := r.blockingLocks(); len(blocking) > 0 && !r.opt.AllowBlockingLocks {
			_ = r.rollback(ctx)
			return &BlockingLockError{Locks: blocking}
		}
		if err := r.beforeCommit(ctx); err != nil {
			return err
		}
		if _, err := r.tx.Exec(ctx, "PREPARE TRANSACTION '"+r.arg.GID+"'"); err != nil {
			// A failed PREPARE rolls the transaction back on the server;
			// the rollback only clears pgx's state (or closes a broken
			// connection).
			_ = r.rollback(ctx)
			return prepareError(err)
		}
		return nil
	case EndCommitIfSame, EndCommit:
		if r.end == EndCommitIfSame {
			got := r.report.Effects()
			if r.arg.IgnoreSchemaDiff {
				got.SchemaDiff = r.arg.Expected.SchemaDiff
			}
			if diffs := r.arg.Expected.Compare(got); diffs != nil {
				// Nothing is committed whether or not the rollback succeeds.
				_ = r.rollback(ctx)
				return &Drift{Differences: diffs}
			}
		}
		if err := r.beforeCommit(ctx); err != nil {
			return err
		}
		// pgx closes the connection if a failed COMMIT leaves it in a
		// transaction.
		if err := r.tx.Commit(ctx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	default:
		if err := r.rollback(ctx); err != nil {
			return fmt.Errorf("rollback: %w", err)
		}
		return nil
	}
}

// blockingLocks lists the locks a prepared transaction would keep on
// pre-existing relations that block their reads: ACCESS EXCLUSIVE. A
// relation the migration created is invisible to everyone else until the
// commit, whatever it holds on it.
func (r *runner) blockingLocks() []Lock {
	var out []Lock
	for oid, mode := range r.obs.strongest {
		if _, existed := r.before.rels[oid]; existed && mode == accessExclusive {
			out = append(out, Lock{Relation: r.obs.names[oid], Mode: mode})
		}
	}
	sortLocks(out)
	return out
}

func (r *runner) beforeCommit(ctx context.Context) error {
	if r.arg.BeforeCommit == nil {
		return nil
	}
	if r.opt.Role != "" {
		// The migration's role is scoped to the agent's tables; airlock's
		// bookkeeping runs with the connection's own rights.
		if _, err := r.tx.Exec(ctx, "RESET ROLE"); err != nil {
			_ = r.rollback(ctx)
			return fmt.Errorf("before commit: reset role: %w", err)
		}
	}
	if err := r.arg.BeforeCommit(ctx, r.tx); err != nil {
		_ = r.rollback(ctx)
		return fmt.Errorf("before commit: %w", err)
	}
	return nil
}

// rollback ends the transaction. It runs even when ctx is done, and leaves
// the connection idle or closed: pgx closes it when the ROLLBACK itself
// fails, and a connection still out of step with the server afterwards is
// closed here.
func (r *runner) rollback(ctx context.Context) error {
	if r.conn.IsClosed() {
		return errors.New("connection closed")
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackGrace)
	defer cancel()
	err := r.tx.Rollback(rctx)
	if errors.Is(err, pgx.ErrTxClosed) {
		err = nil
	}
	if err == nil && r.conn.PgConn().TxStatus() != 'I' {
		err = fmt.Errorf("connection left in transaction status %q", r.conn.PgConn().TxStatus())
		_ = r.conn.Close(rctx)
	}
	return err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
