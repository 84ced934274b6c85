package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// rollbackGrace bounds the ROLLBACK sent after a failure, even when the
// caller's context is already done.
const rollbackGrace = 5 * time.Second

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
