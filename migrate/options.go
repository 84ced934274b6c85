package migrate

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Defaults applied by Run when an Options field is zero.
const (
	DefaultStatementTimeout = 30 * time.Second
	DefaultLockTimeout      = 2 * time.Second
	DefaultLargeTableRows   = 100000
	DefaultRowsAffectedWarn = 10000
)

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
