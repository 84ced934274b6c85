package review

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Held changes have limits (docs/architecture.md, Held changes): each one
// costs a reviewer's attention, and a prepared one keeps locks and one of
// the cluster's max_prepared_transactions slots until it is decided.

// Limits bounds the pending changes Record accepts. Zero fields do not
// limit.
type Limits struct {
	// PerScope bounds the pending changes of the change's scope, and
	// PerSession those of its agent session.
	PerScope, PerSession int
}

// TooManyPendingError refuses a change past a pending-change limit.
type TooManyPendingError struct {
	// Scope is true when the scope's limit was reached, false for the
	// session's.
	Scope   bool
	Pending int
	Limit   int
}

func (e *TooManyPendingError) Error() string {
	if e.Scope {
		return fmt.Sprintf("this scope already has %d changes waiting for a reviewer (write.max_pending is %d)", e.Pending, e.Limit)
	}
	return fmt.Sprintf("this session already has %d changes waiting for a reviewer (write.max_pending_per_session is %d)", e.Pending, e.Limit)
}

// pendingLockClass keys the advisory lock that serializes Record per scope,
// so that two sessions cannot both take the last slot.
const pendingLockClass int32 = 7262913

// pendingCountsSQL counts the changes still waiting for a reviewer: pending
// (or being committed) and not past their expiry, which the reaper turns
// into expired.
const pendingCountsSQL = `
SELECT count(*), count(*) FILTER (WHERE session = $2)
FROM airlock.changes
WHERE scope = $1 AND status IN ('pending', 'committing') AND expires_at > clock_timestamp()`

// CheckLimits reports, without reserving anything, whether one more change
// of scope and session fits lim: the service asks before running a
// migration, so that a change over the limit costs no work. Record checks
// again, atomically.
func (s *Store) CheckLimits(ctx context.Context, scope, session string, lim Limits) error {
	return checkLimits(ctx, s.pool, scope, session, lim)
}

func checkLimits(ctx context.Context, q querier, scope, session string, lim Limits) error {
	if lim.PerScope <= 0 && lim.PerSession <= 0 {
		return nil
	}
	var inScope, inSession int
	if err := q.QueryRow(ctx, pendingCountsSQL, scope, session).Scan(&inScope, &inSession); err != nil {
		return fmt.Errorf("count pending changes: %w", err)
	}
	switch {
	case lim.PerScope > 0 && inScope >= lim.PerScope:
		return &TooManyPendingError{Scope: true, Pending: inScope, Limit: lim.PerScope}
	case lim.PerSession > 0 && session != "" && inSession >= lim.PerSession:
		return &TooManyPendingError{Pending: inSession, Limit: lim.PerSession}
	}
	return nil
}

// lockPending takes the scope's Record lock for the rest of tx.
func lockPending(ctx context.Context, tx pgx.Tx, scope string) error {
	_, err := tx.Exec(ctx, "SELECT pg_catalog.pg_advisory_xact_lock($1, pg_catalog.hashtext($2))", pendingLockClass, scope)
	return err
}

// PreparedSlots is how the cluster's prepared transaction slots are used.
type PreparedSlots struct {
	// Used counts the prepared transactions of every database of the
	// cluster (they all share max_prepared_transactions), Max is the
	// setting, and Headroom the slots airlock leaves free for everyone
	// else: it prepares a change only while Used < Max - Headroom.
	Used, Max, Headroom int
}

// Available reports whether airlock may prepare one more transaction.
func (p PreparedSlots) Available() bool { return p.Used < p.Max-p.Headroom }

// preparedHeadroom is a fifth of the slots, at least one.
func preparedHeadroom(n int) int { return max(1, (n+4)/5) }

// ReadPreparedSlots reads the cluster's prepared transaction slots.
func ReadPreparedSlots(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) (PreparedSlots, error) {
	var p PreparedSlots
	err := q.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_catalog.pg_prepared_xacts)::int,
		pg_catalog.current_setting('max_prepared_transactions')::int`).Scan(&p.Used, &p.Max)
	if err != nil {
		return p, fmt.Errorf("read prepared transaction slots: %w", err)
	}
	p.Headroom = preparedHeadroom(p.Max)
	return p, nil
}

// PreparedSlotsError refuses to prepare a change when the cluster's slots
// are (nearly) used up.
type PreparedSlotsError struct{ Slots PreparedSlots }

func (e *PreparedSlotsError) Error() string {
	return fmt.Sprintf("%d of the cluster's %d prepared transaction slots (max_prepared_transactions) are in use, and airlock leaves %d free for others: no more changes can be held until reviewers decide some",
		e.Slots.Used, e.Slots.Max, e.Slots.Headroom)
}
