package review

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/scopes"
)

// Review actions as the audit log names them.
const (
	actionCommit   = "commit"
	actionRollback = "rollback"
	actionReap     = "reap"
	reaperName     = "reaper"
)

// errNoLongerPending is the replay hook's way of saying another action
// decided the change first (or it expired): the migration rolls back.
var errNoLongerPending = errors.New("the change is no longer pending")

// Commit makes change id permanent on behalf of reviewer.
//
// Only a pending change that has not expired (on the database's clock)
// can be committed; an expired one is marked expired and refused. A replay
// change is re-run on a connection from the store's pool (the reviewer's
// own database URL) and committed only if its effects equal the recorded
// ones; otherwise it is marked drifted and the error wraps the
// *migrate.Drift. A prepared change is finished with COMMIT PREPARED.
//
// When several reviewers race, exactly one wins; the others get a
// *NotPendingError that says who decided and when. A missing change is
// ErrNotFound. The returned change is its state after the action (also on
// a refusal), or nil when it could not be read.
func (s *Store) Commit(ctx context.Context, id, reviewer string) (*Change, error) {
	return s.CommitApproved(ctx, id, reviewer, Approval{})
}

// CommitApproved is Commit bound to an approval: before anything runs, the
// change must match a.Expect when set, and its stored statements must be
// what the Checker (SetChecker) makes of its SQL under the scope as
// applied now; otherwise it is refused with an *ApprovalMismatchError or a
// *RecheckError and stays pending. The stored content of a change never
// changes (the database refuses it), so checking before taking the
// change's locks is checking what runs.
func (s *Store) CommitApproved(ctx context.Context, id, reviewer string, a Approval) (*Change, error) {
	start := time.Now()
	reviewer = strings.TrimSpace(reviewer)
	if reviewer == "" {
		return nil, errors.New("commit: a reviewer name is required")
	}
	r, err := s.get(ctx, s.pool, id)
	c := r.Change
	if err == nil && r.Mode == ModeBranch {
		err = errBranchChange(r.Change)
	} else if err == nil && r.Status == StatusPending {
		err = s.verify(ctx, s.pool, r.Change, a, true)
	}
	if err != nil {
		s.recordOutcome(c, id, reviewer, actionCommit, err, time.Since(start))
		return c, err
	}
	switch {
	case r.Reverts != "":
		c, err = s.commitRevert(ctx, r.ID, reviewer)
	case r.Mode == ModePrepared:
		c, err = s.commitPrepared(ctx, r.ID, reviewer)
	default:
		c, err = s.commitReplay(ctx, r.ID, reviewer)
	}
	if c == nil {
		c = r.Change
	}
	s.recordOutcome(c, id, reviewer, actionCommit, err, time.Since(start))
	return c, err
}

func (s *Store) commitReplay(ctx context.Context, id, reviewer string) (*Change, error) {
	r, err := s.replay(ctx, id, reviewer)
	var drift *migrate.Drift
	switch {
	case r.Change == nil:
		return nil, err
	case errors.Is(err, errNotOpen):
		c, serr := s.settled(ctx, id, actionCommit)
		if serr == nil {
			// Cannot happen (a change never goes back to pending), but a
			// nil error would read as committed.
			serr = fmt.Errorf("commit change %s: it changed while being committed; nothing was committed, try again", id)
		}
		return c, serr
	case err == nil:
		if c, gerr := s.Get(ctx, id); gerr == nil {
			return c, nil
		}
		// Committed all the same; report what we know.
		r.Status, r.Reviewer, r.DecidedAt = StatusCommitted, reviewer, time.Now()
		return r.Change, nil
	case errors.As(err, &drift):
		return s.markDrifted(ctx, r.Change, reviewer, drift)
	}
	// Lost a race (the hook found the row decided, or the winner's locks
	// made a statement fail): say who won rather than how we lost.
	if c, serr := s.settled(ctx, id, actionCommit); serr != nil {
		return c, serr
	}
	if errors.Is(err, errNoLongerPending) {
		return r.Change, fmt.Errorf("commit change %s: it changed while being committed; nothing was committed, try again", id)
	}
	return r.Change, fmt.Errorf("commit change %s: %w; nothing was committed and the change is still pending", id, err)
}

// errNotOpen says replay found the change decided or overdue before
// running anything.
var errNotOpen = errors.New("the change is not open")

// replay runs change id on one connection of the pool, holding the
// change's advisory lock, and returns it before anything else uses the
// pool: reviewers queued on the lock each hold a connection, and the
// winner must not wait for one of theirs.
func (s *Store) replay(ctx context.Context, id, reviewer string) (row, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return row{}, fmt.Errorf("commit change %s: %w", id, err)
	}
	defer pc.Release()
	unlock, err := lockChange(ctx, pc.Conn(), id)
	if err != nil {
		return row{}, fmt.Errorf("commit change %s: wait for other reviewers of it: %w", id, err)
	}
	defer unlock()

	// Read again under the lock: the reviewer who held it may have decided.
	r, err := s.get(ctx, pc, id)
	if err != nil {
		return row{}, err
	}
	if r.Status != StatusPending || r.overdue {
		return r, errNotOpen
	}
	opt := r.Options
	if opt.Role, err = writeRole(ctx, pc, r.Scope); err != nil {
		return r, err
	}
	opt.DoRunner = scopes.DoRunner(r.Scope)
	if opt.WriteTables, err = writeTables(ctx, pc, r.Scope); err != nil {
		return r, err
	}
	undo, err := undoSettings(ctx, pc, r.Scope)
	if err != nil {
		return r, err
	}
	mark := markCommitted(id, reviewer, true)
	var log *migrate.UndoLog
	if undo != nil {
		log = &migrate.UndoLog{}
		// Capture what the commit does, in its own transaction
		// (docs/architecture.md, Undo).
		opt.Capture, opt.Undo = id, true
		mark = func(ctx context.Context, tx pgx.Tx) error {
			if err := markCommitted(id, reviewer, true)(ctx, tx); err != nil {
				return err
			}
			return recordCapture(ctx, tx, r.Change, undo, log)
		}
	}
	_, err = migrate.Run(ctx, pc.Conn(), r.Plan(), opt, migrate.EndCommitIfSame, migrate.RunArg{
		Expected:     &r.Effects,
		BeforeCommit: mark,
		Undo:         log,
	})
	return r, err
}

// markCommitted is the replay's BeforeCommit hook: inside the migration's
// transaction it marks the change committed, so both commit or neither
// does. A racing reviewer's UPDATE waits for this row lock and then
// matches no row. The migration may run under a scope role that has no
// rights on the airlock schema; its statements are done by now, so the
// hook goes back to the reviewer's own role.
func markCommitted(id, reviewer string, resetRole bool) func(context.Context, pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		if resetRole {
			if _, err := tx.Exec(ctx, "SET LOCAL ROLE NONE"); err != nil {
				return fmt.Errorf("reset role: %w", err)
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE airlock.changes
			SET status = 'committed', reviewer = $2, decided_at = clock_timestamp(), reason = NULL
			WHERE id = $1 AND status = 'pending' AND expires_at > clock_timestamp()`, id, reviewer)
		if err != nil {
			return fmt.Errorf("mark committed: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errNoLongerPending
		}
		return nil
	}
}

func (s *Store) markDrifted(ctx context.Context, c *Change, reviewer string, drift *migrate.Drift) (*Change, error) {
	reason := "drifted since the dry run: " + strings.Join(drift.Differences, "; ")
	r, ok, err := setDecided(ctx, s.pool, c.ID, StatusPending, StatusDrifted, reviewer, reason)
	if err != nil {
		return c, fmt.Errorf("change %s: %w (and marking it drifted failed: %v)", c.ID, drift, err)
	}
	if !ok {
		// Someone decided first; their decision is the news.
		if d, serr := s.settled(ctx, c.ID, actionCommit); serr != nil {
			return d, serr
		}
		return c, fmt.Errorf("change %s: %w", c.ID, drift)
	}
	return r.Change, fmt.Errorf("change %s: %w; the change is now marked drifted", c.ID, drift)
}

// commitPrepared decides under a row lock, then runs COMMIT PREPARED (which
// cannot run in a transaction block), then records that it happened.
func (s *Store) commitPrepared(ctx context.Context, id, reviewer string) (*Change, error) {
	var (
		r          row
		outcome    error
		expiredNow bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			exists bool
			err    error
		)
		if r, exists, err = lockRow(ctx, tx, id); err != nil {
			return err
		}
		move := func(to Status, who, why string) error {
			next, err := mustSetDecided(ctx, tx, id, StatusPending, to, who, why)
			r = next
			return err
		}
		switch {
		case r.Status != StatusPending:
		case r.overdue:
			expiredNow = true
			err = move(StatusExpired, reaperName, expiredReason(r.Change))
		case !exists:
			err = move(StatusDrifted, reviewer,
				"its prepared transaction "+r.GID+" no longer exists: it was committed or rolled back outside airlock")
		default:
			return move(StatusCommitting, reviewer, "")
		}
		outcome = &NotPendingError{Change: r.Change, Action: actionCommit}
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("commit change %s: %w", id, err)
	}
	if outcome != nil {
		if expiredNow {
			s.finishExpired(ctx, r.Change)
		}
		return s.awaitSettled(ctx, r.Change), outcome
	}
	if _, err := s.finishPrepared(ctx, "COMMIT", r.GID); err != nil {
		return r.Change, fmt.Errorf("commit change %s: it is marked committing but COMMIT PREPARED failed (airlock reap retries it): %w", id, err)
	}
	done, ok, err := setDecided(ctx, s.pool, id, StatusCommitting, StatusCommitted, reviewer, "")
	if err != nil || !ok {
		// The data is committed; the reaper fixes the mark.
		r.Status = StatusCommitted
		return r.Change, nil
	}
	return done.Change, nil
}

// Rollback discards pending change id on behalf of reviewer, with an
// optional reason. A prepared change's transaction is rolled back (its
// locks released); a replay change holds nothing, so only its status
// changes. A pending change past its expiry that Reap has not expired
// yet may still be rolled back. Races are settled as for Commit.
func (s *Store) Rollback(ctx context.Context, id, reviewer, reason string) (*Change, error) {
	start := time.Now()
	reviewer = strings.TrimSpace(reviewer)
	if reviewer == "" {
		return nil, errors.New("rollback: a reviewer name is required")
	}
	var c *Change
	u, err := uuid.Parse(id)
	if err != nil {
		err = notFound(id)
	} else if r, gerr := s.get(ctx, s.pool, u.String()); gerr == nil && r.Mode == ModeBranch {
		c, err = r.Change, errBranchChange(r.Change)
	} else {
		c, err = s.rollback(ctx, u.String(), reviewer, strings.TrimSpace(reason))
	}
	s.recordOutcome(c, id, reviewer, actionRollback, err, time.Since(start))
	return c, err
}

func (s *Store) rollback(ctx context.Context, id, reviewer, reason string) (*Change, error) {
	var (
		r       row
		outcome error
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if r, _, err = lockRow(ctx, tx, id); err != nil {
			return err
		}
		if r.Status != StatusPending {
			outcome = &NotPendingError{Change: r.Change, Action: actionRollback}
			return nil
		}
		r, err = mustSetDecided(ctx, tx, id, StatusPending, StatusRolledBack, reviewer, reason)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("roll back change %s: %w", id, err)
	}
	if outcome != nil {
		return s.awaitSettled(ctx, r.Change), outcome
	}
	if r.Mode == ModePrepared {
		if _, err := s.finishPrepared(ctx, "ROLLBACK", r.GID); err != nil {
			return r.Change, fmt.Errorf("change %s is marked rolled back, but ROLLBACK PREPARED failed (airlock reap retries it): %w", id, err)
		}
	}
	return r.Change, nil
}

// lockRow reads change id under a row lock, with whether its prepared
// transaction exists.
func lockRow(ctx context.Context, tx pgx.Tx, id string) (row, bool, error) {
	var exists bool
	r, err := scanChange(tx.QueryRow(ctx, "SELECT "+changeColumns+`,
		gid IS NOT NULL AND EXISTS (SELECT 1 FROM pg_prepared_xacts p WHERE p.gid = c.gid AND p.database = current_database())
		FROM airlock.changes c WHERE id = $1::uuid FOR UPDATE OF c`, id), &exists)
	if errors.Is(err, pgx.ErrNoRows) {
		return row{}, false, notFound(id)
	}
	if err != nil {
		return row{}, false, fmt.Errorf("lock change: %w", err)
	}
	return r, exists, nil
}

// setDecided moves change id from status from to status to, recording the
// reviewer, the time and the reason. ok is false when the change was not
// in status from.
func setDecided(ctx context.Context, q querier, id string, from, to Status, reviewer, reason string) (r row, ok bool, err error) {
	r, err = scanChange(q.QueryRow(ctx, `UPDATE airlock.changes
		SET status = $3, reviewer = NULLIF($4, ''), decided_at = clock_timestamp(), reason = NULLIF($5, '')
		WHERE id = $1::uuid AND status = $2
		RETURNING `+changeColumns, id, from, to, reviewer, reason))
	if errors.Is(err, pgx.ErrNoRows) {
		return row{}, false, nil
	}
	if err != nil {
		return row{}, false, fmt.Errorf("mark change %s %s: %w", id, to, err)
	}
	return r, true, nil
}

// mustSetDecided is setDecided on a row the caller has locked, where the
// status cannot have changed.
func mustSetDecided(ctx context.Context, tx pgx.Tx, id string, from, to Status, reviewer, reason string) (row, error) {
	r, ok, err := setDecided(ctx, tx, id, from, to, reviewer, reason)
	if err == nil && !ok {
		err = fmt.Errorf("change %s left status %s under a row lock", id, from)
	}
	return r, err
}

// settled returns a *NotPendingError when change id can no longer be acted
// on, expiring it first when it is pending but past its expiry; it
// returns a nil error when the change is still open.
func (s *Store) settled(ctx context.Context, id, action string) (*Change, error) {
	r, err := s.get(ctx, s.pool, id)
	if err != nil {
		return nil, err
	}
	if r.Status == StatusPending && r.overdue {
		if e, ok, err := s.expire(ctx, r.Change); err != nil {
			return r.Change, err
		} else if ok {
			r.Change = e
		} else if r, err = s.get(ctx, s.pool, id); err != nil {
			return nil, err
		}
	}
	if r.Status == StatusPending {
		return r.Change, nil
	}
	return s.awaitSettled(ctx, r.Change), &NotPendingError{Change: r.Change, Action: action}
}

// awaitSettled gives a change another reviewer is committing in prepared
// mode a moment to reach committed, so that the loser of a race reads
// "already committed" rather than "being committed".
func (s *Store) awaitSettled(ctx context.Context, c *Change) *Change {
	for i := 0; i < 50 && c.Status == StatusCommitting; i++ {
		select {
		case <-ctx.Done():
			return c
		case <-time.After(100 * time.Millisecond):
		}
		if now, err := s.Get(ctx, c.ID); err == nil {
			*c = *now
		}
	}
	return c
}

// lockClass is the first key of the advisory locks that serialize the
// reviewers of one change (audit.EnsureSchema uses a single-key lock,
// which never conflicts with a two-key one).
const lockClass int32 = 7262912

// lockChange waits until no other reviewer is replaying change id and
// holds a session advisory lock on conn until unlock. It is only a
// courtesy: the loser then reads the winner's outcome instead of failing
// on the winner's locks. Correctness comes from markCommitted alone.
func lockChange(ctx context.Context, conn *pgx.Conn, id string) (unlock func(), err error) {
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, hashtext($2))", lockClass, id); err != nil {
		return nil, err
	}
	return func() { unlockAll(ctx, conn) }, nil
}

// unlockAll drops every session-level advisory lock conn holds: the
// reviewers' lock, and any the replayed statements took, which outlive
// their transaction (docs/architecture.md, Connections come back clean).
// A connection that cannot be cleaned is closed, never pooled.
func unlockAll(ctx context.Context, conn *pgx.Conn) {
	if conn.IsClosed() {
		return
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(uctx, "SELECT pg_catalog.pg_advisory_unlock_all()"); err != nil {
		_ = conn.Close(uctx)
	}
}

// recordOutcome audits a commit or rollback.
func (s *Store) recordOutcome(c *Change, id, reviewer, action string, err error, elapsed time.Duration) {
	var (
		decision = audit.Reviewed
		reason   string
		rows     int64
		np       *NotPendingError
		drift    *migrate.Drift
		mismatch *ApprovalMismatchError
		recheck  *RecheckError
	)
	switch {
	case err == nil && action == actionCommit:
		reason = "committed"
		for _, n := range c.Effects.RowsAffected {
			rows += n
		}
	case err == nil:
		reason = "rolled back"
		if c.Reason != "" {
			reason += ": " + c.Reason
		}
	case errors.As(err, &np), errors.As(err, &drift), errors.Is(err, ErrNotFound),
		errors.As(err, &mismatch), errors.As(err, &recheck):
		decision, reason = audit.Refused, err.Error()
	default:
		decision, reason = audit.Failed, err.Error()
	}
	s.record(c, id, reviewer, action, decision, reason, rows, elapsed)
}
