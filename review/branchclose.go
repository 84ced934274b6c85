package review

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/audit"
)

// Closing a branch without merging it: a reviewer's discard, or the
// reaper's expiry past the branch's TTL.

// closeBranch decides live branch id (discarded or expired): its pending
// changes become rolled_back or expired in the same transaction, then the
// database is dropped. A branch already decided is a *BranchNotLiveError.
func (s *Store) closeBranch(ctx context.Context, id string, status BranchStatus, changeStatus Status, reviewer, reason string, onlyOverdue bool) (*Branch, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return nil, notFound(id)
	}
	var name string
	cond := ""
	if onlyOverdue {
		cond = " AND expires_at <= clock_timestamp()"
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE airlock.branches SET status = $2, reviewer = $3, decided_at = clock_timestamp(), reason = NULLIF($4, '')
			WHERE id = $1 AND status = 'live'`+cond+` RETURNING database`, u.String(), status, reviewer, reason).Scan(&name)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE airlock.changes SET status = $2, reviewer = $3, decided_at = clock_timestamp(), reason = NULLIF($4, '')
			WHERE branch_id = $1 AND status = 'pending'`, u.String(), changeStatus, reviewer, reason)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		b, gerr := s.GetBranch(ctx, id)
		if gerr != nil {
			return nil, gerr
		}
		return b, &BranchNotLiveError{Branch: b}
	}
	if err != nil {
		return nil, fmt.Errorf("%s branch %s: %w", status, id, err)
	}
	derr := s.finishDrop(ctx, u.String(), name)
	b, gerr := s.GetBranch(ctx, id)
	if gerr != nil {
		return nil, gerr
	}
	if derr != nil {
		return b, fmt.Errorf("branch %s is %s, but dropping its database failed (the next reap retries): %w", id, status, derr)
	}
	return b, nil
}

// Discard drops branch id for reviewer: its pending changes become
// rolled_back and its database is dropped. Exactly one of several racing
// reviewer actions wins; the others get a *BranchNotLiveError.
func (s *Store) Discard(ctx context.Context, id, reviewer, reason string) (*Branch, error) {
	reviewer = strings.TrimSpace(reviewer)
	if reviewer == "" {
		return nil, errors.New("discard: a reviewer name is required")
	}
	b, err := s.closeBranch(ctx, id, BranchDiscarded, StatusRolledBack, reviewer, strings.TrimSpace(reason), false)
	decision, why := audit.Reviewed, "discarded"+because(reason)
	if err != nil {
		decision, why = audit.Failed, err.Error()
	}
	s.recordBranch(b, reviewer, "discard", decision, why)
	return b, err
}

// reapBranches expires live branches past their TTL and retries the drop
// of decided branches whose database is still there.
func (s *Store) reapBranches(ctx context.Context) (int, error) {
	rows, err := s.pool.Query(ctx, "SELECT id::text FROM airlock.branches WHERE status = 'live' AND expires_at <= clock_timestamp()")
	if err != nil {
		return 0, fmt.Errorf("list expired branches: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("list expired branches: %w", err)
	}
	n := 0
	var errs []error
	for _, id := range ids {
		b, err := s.closeBranch(ctx, id, BranchExpired, StatusExpired, reaperName, "the branch passed its branch_ttl unmerged", true)
		var notLive *BranchNotLiveError
		switch {
		case errors.As(err, &notLive):
			continue
		case err != nil:
			errs = append(errs, err)
		default:
			n++
		}
		s.recordBranch(b, reaperName, actionReap, audit.Reviewed, "branch expired and dropped")
	}
	rows, err = s.pool.Query(ctx, "SELECT id::text, database FROM airlock.branches WHERE status <> 'live' AND NOT dropped")
	if err != nil {
		return n, errors.Join(append(errs, err)...)
	}
	type left struct{ id, name string }
	lingering, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (left, error) {
		var l left
		return l, r.Scan(&l.id, &l.name)
	})
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range lingering {
		if err := s.finishDrop(ctx, l.id, l.name); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}
