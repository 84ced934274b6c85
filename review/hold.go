package review

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// Holding a change (docs/architecture.md, Held changes; Write modes): the
// write tool checks a migration against the scope, then hands it to the
// Holder of the scope's write mode, which runs it so that nothing is
// permanent until a reviewer decides, and records it pending. Each mode
// holds differently:
//
//   - replay runs the migration and rolls it back; Commit replays the
//     recorded statements.
//   - prepared ends it in PREPARE TRANSACTION before recording it, and
//     rolls the prepared transaction back if the record fails.
//   - branch commits it on the session's own branch database, made on the
//     first change, and renews the branch's grants and catalog after it.
//
// What they share (the pending-change limits before anything runs, the
// record after) is here; how a mode holds is in its own file. The holders
// return review's own errors (*TooManyPendingError, *PreparedSlotsError,
// ErrSessionBranchClosed, ...) and migrate's; turning them into what an
// agent reads is the tool's part.

// Holder holds one checked migration for a reviewer.
type Holder interface {
	// Hold runs h.Plan the way the mode holds a change and records
	// h.Change pending. It returns the run's report.
	Hold(ctx context.Context, h *Hold) (*migrate.Report, error)
}

// Runner runs plan on a pooled connection of pool, ending as end says;
// capture, when set, is the id of the change whose rows the run captures
// for undo. The tool supplies it: running agent SQL on a pooled
// connection (its role, progress reports, giving the connection back
// clean) is the tool layer's, the same for a dry run as for a hold.
type Runner func(ctx context.Context, pool *pgxpool.Pool, plan *sqlguard.MigrationPlan, end migrate.Ending, arg migrate.RunArg, capture string) (*migrate.Report, error)

// Hold is one change to hold.
type Hold struct {
	// Change is the change as submitted: ticket, summary, SQL, scope,
	// scope version, session, mode, TTL and limits. Hold fills in the
	// rest (what NewChange fills, and the mode's GID, branch or id).
	Change *Change
	// Plan is the checked migration.
	Plan *sqlguard.MigrationPlan
	// Options are the scope's run options, stored with the change for
	// its replay.
	Options migrate.Options
	// Run runs Plan.
	Run Runner
}

// HoldConfig is what the holders are built from.
type HoldConfig struct {
	Store *Store
	// Pool is the source database: where replay and prepared changes
	// run, prepared slots are counted and orphans rolled back.
	Pool  *pgxpool.Pool
	Scope *scopes.Scope
	// Branch is the agent session's branch (write.mode "branch" only),
	// and Catalogs what reads its catalog.
	Branch   *SessionBranch
	Catalogs BranchCatalogs
	// Log takes what a hold only warns about.
	Log *slog.Logger
}

// NewHolder returns the holder of cfg.Scope's write mode.
func NewHolder(cfg HoldConfig) Holder {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	switch Mode(cfg.Scope.Write.Mode) {
	case ModeBranch:
		return &branchHolder{cfg}
	case ModePrepared:
		return &preparedHolder{cfg}
	}
	return &replayHolder{cfg}
}

// checkHoldLimits refuses, before anything runs, a change past the
// pending-change limits: a change over them costs no work. Record checks
// again, atomically.
func (s *Store) checkHoldLimits(ctx context.Context, h *Hold) error {
	c := h.Change
	return s.CheckLimits(ctx, c.Scope, c.Session, c.Limits)
}

// recordHeld fills h.Change from the plan and the run's report and
// records it pending.
func (s *Store) recordHeld(ctx context.Context, h *Hold, rep *migrate.Report) error {
	c := h.Change
	filled := NewChange(h.Plan, rep, h.Options)
	c.Statements, c.SQLFingerprint, c.Report = filled.Statements, filled.SQLFingerprint, filled.Report
	c.Effects, c.Fingerprint, c.Options = filled.Effects, filled.Fingerprint, filled.Options
	if err := s.Record(ctx, c); err != nil {
		return fmt.Errorf("record change: %w", err)
	}
	return nil
}
