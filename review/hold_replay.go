package review

import (
	"context"

	"github.com/airlock-dev/airlock/migrate"
)

// replayHolder holds a change as the record of a run that was rolled
// back (write.mode "replay"): nothing stays in the database, and Commit
// replays the recorded statements, committing only if their effects are
// the same (docs/architecture.md, Write modes).
type replayHolder struct{ HoldConfig }

func (r *replayHolder) Hold(ctx context.Context, h *Hold) (*migrate.Report, error) {
	if err := r.Store.checkHoldLimits(ctx, h); err != nil {
		return nil, err
	}
	rep, err := h.Run(ctx, r.Pool, h.Plan, migrate.EndRollback, migrate.RunArg{}, "")
	if err != nil {
		return nil, err
	}
	if err := r.Store.recordHeld(ctx, h, rep); err != nil {
		return nil, err
	}
	return rep, nil
}
