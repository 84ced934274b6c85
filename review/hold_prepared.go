package review

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/airlock-dev/airlock/migrate"
)

// preparedHolder holds a change as a prepared transaction (write.mode
// "prepared"): the run ends in PREPARE TRANSACTION and keeps its locks
// until a reviewer commits or rolls it back (docs/architecture.md, Write
// modes; Held changes).
type preparedHolder struct{ HoldConfig }

// Hold fails with *PreparedSlotsError when the cluster's prepared
// transaction slots are (nearly) used up, and with
// *migrate.BlockingLockError when the change would keep a lock that
// blocks reads of a table in use; nothing is held then.
func (p *preparedHolder) Hold(ctx context.Context, h *Hold) (*migrate.Report, error) {
	if err := p.Store.checkHoldLimits(ctx, h); err != nil {
		return nil, err
	}
	slots, err := ReadPreparedSlots(ctx, p.Pool)
	if err != nil {
		return nil, err
	}
	if !slots.Available() {
		return nil, &PreparedSlotsError{Slots: slots}
	}
	// PREPARE first, then record: a crash in between leaves an orphan
	// prepared transaction, which the reaper rolls back; never a recorded
	// change whose transaction does not exist.
	c := h.Change
	c.GID = NewGID()
	arg, capture := migrate.RunArg{GID: c.GID}, ""
	if undo := p.Scope.Write.Undo; undo.On() {
		// The capture is part of the prepared transaction: it commits or
		// rolls back with the change itself (docs/architecture.md, Undo).
		c.ID = uuid.NewString()
		capture = c.ID
		arg.BeforeCommit, arg.Undo = PreparedCapture(c.ID, c.Scope, h.Plan.Statements, c.TTL, undo)
	}
	rep, err := h.Run(ctx, p.Pool, h.Plan, migrate.EndPrepare, arg, capture)
	if err != nil {
		return nil, err
	}
	if err := p.Store.recordHeld(ctx, h, rep); err != nil {
		p.rollbackOrphan(c.GID)
		return nil, err
	}
	return rep, nil
}

// rollbackOrphan undoes a prepared transaction whose change could not be
// recorded, so that nothing is held that no reviewer can see. It runs
// even when the call was canceled: that is often why the record failed.
func (p *preparedHolder) rollbackOrphan(gid string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// gid is NewGID's, never an agent's, so it is safe inside the literal.
	if _, err := p.Pool.Exec(ctx, "ROLLBACK PREPARED '"+gid+"'"); err != nil {
		p.Log.Error("could not roll back an unrecorded prepared transaction; the reaper will", "gid", gid, "err", err)
	}
}
