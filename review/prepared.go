package review

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/audit"
)

// finishPrepared runs COMMIT PREPARED or ROLLBACK PREPARED (verb "COMMIT"
// or "ROLLBACK") for gid on a connection of the pool. gone is true when
// there was no such prepared transaction in this database.
//
// Only a superuser or the role that prepared a transaction may finish it.
// A migration run under a scope role (SET LOCAL ROLE) is owned by that
// role, so a reviewer who is neither is switched to it with SET ROLE for
// the one command, which works when the reviewer is a member of it.
func (s *Store) finishPrepared(ctx context.Context, verb, gid string) (gone bool, err error) {
	if !gidPattern.MatchString(gid) {
		return false, fmt.Errorf("%s PREPARED %q: not an airlock prepared transaction id", verb, gid)
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("%s PREPARED %s: %w", verb, gid, err)
	}
	defer pc.Release()

	var (
		owner     string
		mayFinish bool
	)
	err = pc.QueryRow(ctx, `SELECT p.owner, p.owner = current_user OR r.rolsuper
		FROM pg_prepared_xacts p, pg_roles r
		WHERE p.gid = $1 AND p.database = current_database() AND r.rolname = current_user`, gid).Scan(&owner, &mayFinish)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s PREPARED %s: %w", verb, gid, err)
	}
	if !mayFinish {
		if _, err := pc.Exec(ctx, "SET ROLE "+pgx.Identifier{owner}.Sanitize()); err != nil {
			return false, fmt.Errorf("%s PREPARED %s: it was prepared by role %s; review as a superuser, as %s or as a member of it: %w",
				verb, gid, owner, owner, err)
		}
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, err := pc.Exec(rctx, "RESET ROLE"); err != nil {
				// The role must not stay on a pooled connection.
				_ = pc.Conn().Close(rctx)
			}
		}()
	}
	// The gid matched gidPattern, so it is safe inside the literal.
	_, err = pc.Exec(ctx, verb+" PREPARED '"+gid+"'")
	if sqlstate(err) == pgerrcode.UndefinedObject {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s PREPARED %s: %w", verb, gid, err)
	}
	return false, nil
}

// expire marks pending change c expired. ok is false when it was no
// longer pending. The prepared transaction, if any, is rolled back and
// the expiry audited.
func (s *Store) expire(ctx context.Context, c *Change) (expired *Change, ok bool, err error) {
	r, ok, err := setDecided(ctx, s.pool, c.ID, StatusPending, StatusExpired, reaperName, expiredReason(c))
	if err != nil || !ok {
		return nil, ok, err
	}
	s.finishExpired(ctx, r.Change)
	return r.Change, true, nil
}

// finishExpired rolls back an expired change's prepared transaction and
// audits the expiry. A failed rollback is left to Reap, which retries it.
func (s *Store) finishExpired(ctx context.Context, c *Change) {
	reason := expiredReason(c)
	decision := audit.Reviewed
	if c.Mode == ModePrepared {
		if _, err := s.finishPrepared(ctx, "ROLLBACK", c.GID); err != nil {
			decision = audit.Failed
			reason += "; ROLLBACK PREPARED failed, retried by the next reap: " + err.Error()
			s.logger.Load().Error("review: roll back an expired change", "change_id", c.ID, "err", err)
		}
	}
	s.record(c, c.ID, reaperName, actionReap, decision, reason, 0, 0)
}

func expiredReason(c *Change) string {
	return "expired: nobody reviewed it before " + stamp(c.ExpiresAt)
}
