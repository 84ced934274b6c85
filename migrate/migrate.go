package migrate

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/sqlguard"
	"github.com/jackc/pgx/v5"
)

// airlockSchema holds airlock's own bookkeeping (pending changes, audit).
// Its tables are never part of a report: the BeforeCommit hook writes there.
const airlockSchema = "airlock"

var gidPattern = regexp.MustCompile(`^airlock_[0-9a-f-]{36}$`)

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

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
