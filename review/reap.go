package review

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/airlock-dev/airlock/audit"
)

// OrphanAge is how old a prepared transaction named airlock_* must be
// before Reap rolls it back for having no change row. The write tool
// records the row right after PREPARE TRANSACTION, so a younger one may
// simply not be recorded yet.
const OrphanAge = time.Minute

// orphanAge and committingGrace are variables so that tests need not wait
// a minute. committingGrace is how long Reap leaves a 'committing' change
// to the reviewer who is finishing it before finishing it itself.
var (
	orphanAge       = OrphanAge
	committingGrace = time.Minute
)

// ReapResult counts what one Reap did.
type ReapResult struct {
	// Expired counts pending changes past their expiry now marked expired
	// (a prepared one's transaction rolled back).
	Expired int
	// Orphans counts prepared transactions named airlock_* that had no
	// change row and were rolled back.
	Orphans int
	// Finished counts interrupted review actions Reap completed: prepared
	// transactions of rolled back, expired or drifted changes rolled back,
	// and 'committing' changes committed and marked committed.
	Finished int
	// Purged counts undo captures past their retention now deleted.
	Purged int
	// Branches counts live branches past their branch_ttl now expired and
	// dropped.
	Branches int
}

// Total is the number of things Reap did.
func (r ReapResult) Total() int { return r.Expired + r.Orphans + r.Finished + r.Branches }

// Reap expires every pending change past its expiry (rolling back a
// prepared one's transaction; a transaction already gone is fine), rolls
// back orphan prepared transactions (named airlock_*, no change row,
// older than OrphanAge), and completes review actions a crash cut short
// (see the package documentation). Every action is audited with the actor
// "reaper". It goes on after a failure and returns all failures joined;
// what failed is retried by the next Reap.
func (s *Store) Reap(ctx context.Context) (ReapResult, error) {
	var res ReapResult
	var errs []error
	// Branches first, so their changes expire with the branch's reason.
	n, err := s.reapBranches(ctx)
	res.Branches += n
	errs = append(errs, err)
	n, err = s.reapExpired(ctx)
	res.Expired += n
	errs = append(errs, err)
	orphans, finished, err := s.reapPrepared(ctx)
	res.Orphans += orphans
	res.Finished += finished
	errs = append(errs, err)
	n, err = s.reapCommitted(ctx)
	res.Finished += n
	errs = append(errs, err)
	purged, err := s.purgeUndo(ctx)
	res.Purged += int(purged)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("reap: %w", err)
	}
	return res, nil
}

func (s *Store) reapExpired(ctx context.Context) (int, error) {
	overdue, err := s.list(ctx, "status = 'pending' AND expires_at <= clock_timestamp()")
	if err != nil {
		return 0, fmt.Errorf("list expired changes: %w", err)
	}
	n := 0
	var errs []error
	for _, c := range overdue {
		_, ok, err := s.expire(ctx, c)
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// lingering is a prepared transaction named airlock_* and its change, if
// any.
type lingering struct {
	gid, id, reviewer string
	status            Status // "" when no change names the gid
	old               bool   // older than OrphanAge
	stale             bool   // decided longer than committingGrace ago
}

// reapPrepared finishes the prepared transactions whose change was decided
// (or never recorded).
func (s *Store) reapPrepared(ctx context.Context) (orphans, finished int, err error) {
	rows, err := s.pool.Query(ctx, `
		SELECT p.gid, COALESCE(c.id::text, ''), COALESCE(c.status, ''), COALESCE(c.reviewer, ''),
			p.prepared < clock_timestamp() - $1::interval,
			COALESCE(c.decided_at < clock_timestamp() - $2::interval, false)
		FROM pg_prepared_xacts p LEFT JOIN airlock.changes c ON c.gid = p.gid
		WHERE p.database = current_database() AND starts_with(p.gid, 'airlock_')
		ORDER BY p.prepared`, orphanAge, committingGrace)
	if err != nil {
		return 0, 0, fmt.Errorf("list prepared transactions: %w", err)
	}
	var all []lingering
	for rows.Next() {
		var l lingering
		if err := rows.Scan(&l.gid, &l.id, &l.status, &l.reviewer, &l.old, &l.stale); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("list prepared transactions: %w", err)
		}
		all = append(all, l)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("list prepared transactions: %w", err)
	}

	var errs []error
	for _, l := range all {
		if !gidPattern.MatchString(l.gid) {
			continue // not one airlock made
		}
		var reason string
		switch {
		case l.id == "" && l.old:
			reason = "rolled back orphan prepared transaction " + l.gid + ": no change was recorded for it"
			err = s.reapFinish(ctx, "ROLLBACK", l, reason)
			if err == nil {
				orphans++
			}
		case l.status == StatusRolledBack || l.status == StatusExpired || l.status == StatusDrifted:
			reason = "rolled back prepared transaction " + l.gid + " of a change marked " + string(l.status)
			err = s.reapFinish(ctx, "ROLLBACK", l, reason)
			if err == nil {
				finished++
			}
		case l.status == StatusCommitting && l.stale:
			reason = "finished the commit " + l.reviewer + " decided: COMMIT PREPARED " + l.gid
			err = s.reapFinish(ctx, "COMMIT", l, reason)
			if err == nil {
				_, _, err = setDecided(ctx, s.pool, l.id, StatusCommitting, StatusCommitted, l.reviewer, "")
			}
			if err == nil {
				finished++
			}
		default:
			continue
		}
		errs = append(errs, err)
	}
	return orphans, finished, errors.Join(errs...)
}

// reapFinish finishes one prepared transaction and audits it.
func (s *Store) reapFinish(ctx context.Context, verb string, l lingering, reason string) error {
	var c *Change
	if l.id != "" {
		c, _ = s.Get(ctx, l.id)
	}
	_, err := s.finishPrepared(ctx, verb, l.gid)
	decision := audit.Reviewed
	if err != nil {
		decision, reason = audit.Failed, reason+": "+err.Error()
	}
	s.record(c, l.id, reaperName, actionReap, decision, reason, 0, 0)
	return err
}

// reapCommitted marks committed the 'committing' changes whose prepared
// transaction is gone: airlock only ever commits those.
func (s *Store) reapCommitted(ctx context.Context) (int, error) {
	done, err := s.list(ctx, `status = 'committing' AND decided_at < clock_timestamp() - $1::interval
		AND NOT EXISTS (SELECT 1 FROM pg_prepared_xacts p WHERE p.gid = c.gid AND p.database = current_database())`,
		committingGrace)
	if err != nil {
		return 0, fmt.Errorf("list committing changes: %w", err)
	}
	n := 0
	var errs []error
	for _, c := range done {
		r, ok, err := setDecided(ctx, s.pool, c.ID, StatusCommitting, StatusCommitted, c.Reviewer, "")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			n++
			s.record(r.Change, r.ID, reaperName, actionReap, audit.Reviewed,
				"marked committed: its prepared transaction "+c.GID+" was committed for "+c.Reviewer+" but not recorded", 0, 0)
		}
	}
	return n, errors.Join(errs...)
}

// list returns the changes matching where (a fixed condition on
// airlock.changes c), oldest first.
func (s *Store) list(ctx context.Context, where string, args ...any) ([]*Change, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+changeColumns+" FROM airlock.changes c WHERE "+where+" ORDER BY created_at, id", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Change
	for rows.Next() {
		r, err := scanChange(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r.Change)
	}
	return out, rows.Err()
}

// DefaultReapInterval is StartReaper's interval when given zero.
const DefaultReapInterval = 30 * time.Second

// StartReaper runs Reap now and then every interval in the background
// until ctx ends, logging failures to the store's logger. The returned
// channel is closed when it has stopped.
func (s *Store) StartReaper(ctx context.Context, interval time.Duration) <-chan struct{} {
	if interval <= 0 {
		interval = DefaultReapInterval
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			res, err := s.Reap(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				s.logger.Load().Error("review: reap failed", "err", err,
					"expired", res.Expired, "orphans", res.Orphans, "finished", res.Finished)
			case res.Total() > 0:
				s.logger.Load().Info("review: reaped", "expired", res.Expired, "orphans", res.Orphans, "finished", res.Finished)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return done
}
