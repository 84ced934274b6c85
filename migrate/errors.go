package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinels a StatementError matches with errors.Is, for callers that
// branch on why a statement was cut.
var (
	// ErrStatementTimeout: the statement ran longer than
	// Options.StatementTimeout.
	ErrStatementTimeout = errors.New("statement_timeout")
	// ErrLockTimeout: the statement waited longer than Options.LockTimeout
	// for a lock another session holds.
	ErrLockTimeout = errors.New("lock_timeout")
)

// StatementError is a statement that failed. The transaction was rolled
// back; nothing it did remains.
type StatementError struct {
	// Index is the zero-based index of the statement in the plan. Messages
	// count from one.
	Index int
	SQL   string
	Kind  string
	// Err is the server's error (a *pgconn.PgError, SQLSTATE included) or
	// the connection's.
	Err error

	timeout  time.Duration // the statement_timeout in force
	lockWait time.Duration // the lock_timeout in force
	canceled bool          // the caller's context was done
}

func (e *StatementError) Error() string {
	n := e.Index + 1
	switch {
	case e.canceled:
		return fmt.Sprintf("statement %d (%s) canceled: %v", n, e.Kind, e.Err)
	case e.Is(ErrStatementTimeout):
		return fmt.Sprintf("statement_timeout (%s) cut statement %d (%s): %s", e.timeout, n, e.Kind, pgMessage(e.Err))
	case e.Is(ErrLockTimeout):
		return fmt.Sprintf("lock_timeout: table is locked by another session; statement %d (%s) waited %s: %s", n, e.Kind, e.lockWait, pgMessage(e.Err))
	}
	return fmt.Sprintf("statement %d (%s) failed: %s", n, e.Kind, pgMessage(e.Err))
}

// Unwrap returns the underlying error, so errors.As finds the
// *pgconn.PgError.
func (e *StatementError) Unwrap() error { return e.Err }

// Is reports whether the statement was cut by a timeout: errors.Is(err,
// ErrStatementTimeout) or errors.Is(err, ErrLockTimeout).
func (e *StatementError) Is(target error) bool {
	if e.canceled {
		return false
	}
	code := sqlstate(e.Err)
	switch target {
	case ErrStatementTimeout:
		// 57014 is also a cancel from pg_cancel_backend or the caller's
		// context; the latter is ruled out above.
		return code == pgerrcode.QueryCanceled
	case ErrLockTimeout:
		return code == pgerrcode.LockNotAvailable
	}
	return false
}

// pgMessage renders a server error as "ERROR: message (SQLSTATE x)" plus
// its hint. The DETAIL is left out on purpose: it often quotes row values
// ("Key (email)=(...) already exists", "Failing row contains ..."), which
// the agent may not be allowed to read.
func pgMessage(err error) string {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return err.Error()
	}
	msg := fmt.Sprintf("%s: %s (SQLSTATE %s)", pg.Severity, pg.Message, pg.Code)
	if pg.Hint != "" {
		msg += "; hint: " + pg.Hint
	}
	return msg
}

func sqlstate(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}

// ownQueryError explains a failure of one of Run's own queries (catalog
// snapshots, lock observation), which run under the same timeouts as the
// statements: what says what Run was doing.
func (r *runner) ownQueryError(ctx context.Context, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", what, err)
	case sqlstate(err) == pgerrcode.LockNotAvailable:
		return fmt.Errorf("%w: table is locked by another session; %s waited %s: %w", ErrLockTimeout, what, r.opt.LockTimeout, err)
	case sqlstate(err) == pgerrcode.QueryCanceled:
		return fmt.Errorf("%w (%s) cut %s: %w", ErrStatementTimeout, r.opt.StatementTimeout, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// prepareError explains why PREPARE TRANSACTION failed. The server has
// rolled the transaction back by then.
func prepareError(err error) error {
	var why string
	switch sqlstate(err) {
	case pgerrcode.ObjectNotInPrerequisiteState:
		why = "prepared transactions are disabled on this server (max_prepared_transactions = 0; changing it needs a restart); use replay mode"
	case pgerrcode.FeatureNotSupported:
		why = "this migration cannot be prepared: it touched temporary objects, or used LISTEN/NOTIFY, WITH HOLD cursors or an exported snapshot; use replay mode"
	case pgerrcode.DuplicateObject:
		why = "the transaction id is already in use"
	default:
		why = "the server refused"
	}
	return fmt.Errorf("prepare transaction: %s: %s: %w", why, pgMessage(err), err)
}

// CascadeError says statement Index's foreign key actions changed rows of
// tables outside the scope's write tables (Options.WriteTables). Tables
// is for the logs and reviewers only: the agent must not learn the names
// of tables it may not see.
type CascadeError struct {
	Index  int
	Tables []string
}

func (e *CascadeError) Error() string {
	return fmt.Sprintf("statement %d: a foreign key's ON DELETE or ON UPDATE action changed rows of a table outside the scope's write tables; nothing was applied", e.Index+1)
}

// BlockingLockError refuses to prepare a change that would keep a lock
// blocking reads of a table in use until a reviewer acts. Nothing was
// prepared: the transaction was rolled back.
type BlockingLockError struct {
	Locks []Lock
}

func (e *BlockingLockError) Error() string {
	parts := make([]string, len(e.Locks))
	for i, l := range e.Locks {
		parts[i] = l.Relation + " " + l.Mode
	}
	return "the change would hold " + strings.Join(parts, ", ") +
		" until a reviewer acts, and every read of those tables would wait that long; nothing was prepared"
}

// Drift is returned by EndCommitIfSame when the replay's effects differ
// from the expected ones. Nothing was committed.
type Drift struct {
	// Differences lists each difference in words.
	Differences []string
	// Report is the replay's full report.
	Report *Report
}

func (d *Drift) Error() string {
	return "migration drifted since the dry run, nothing committed: " + strings.Join(d.Differences, "; ")
}
