package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/migrate"
)

// gidPattern is the only shape of prepared transaction id airlock makes or
// finishes; it is also what makes a gid safe to put in a string literal.
var gidPattern = regexp.MustCompile(`^airlock_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// NewGID returns a fresh prepared transaction id for a prepared change.
func NewGID() string { return "airlock_" + uuid.NewString() }

// Store keeps changes in airlock.changes and carries out review actions.
// It is safe for concurrent use, also by several processes at once.
type Store struct {
	pool    *pgxpool.Pool
	log     *audit.Log
	logger  atomic.Pointer[slog.Logger]
	checker Checker
}

// NewStore returns a store over pool. Review actions are recorded in log;
// a nil log records nothing. Call EnsureSchema once before use.
func NewStore(pool *pgxpool.Pool, log *audit.Log) *Store {
	s := &Store{pool: pool, log: log}
	s.logger.Store(slog.Default())
	return s
}

// SetLogger sets where the background reaper reports errors (default
// slog.Default()).
func (s *Store) SetLogger(l *slog.Logger) { s.logger.Store(l) }

// querier is what both a pool and a transaction offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// changeColumns is the select list scanChange reads. The last column says
// whether the change is past its expiry on the database's clock, which is
// the only clock expiry is decided on.
const changeColumns = `id::text, ticket, summary, sql, sql_fingerprint, statements, scope, session,
	mode, COALESCE(gid, ''), report, effects, fingerprint, options, status, created_at, expires_at,
	COALESCE(reviewer, ''), decided_at, COALESCE(reason, ''), COALESCE(branch_id::text, ''), scope_version,
	applied_by::text, COALESCE(reverts::text, ''), revert, expires_at <= clock_timestamp()`

// row is a change as read, with what the database said about its expiry.
type row struct {
	*Change
	overdue bool
}

func scanChange(r pgx.Row, extra ...any) (row, error) {
	var (
		c                                   Change
		statements, report, effects, option []byte
		revertDoc                           []byte
		decided                             *time.Time
		overdue                             bool
	)
	dest := []any{&c.ID, &c.Ticket, &c.Summary, &c.SQL, &c.SQLFingerprint, &statements, &c.Scope, &c.Session,
		&c.Mode, &c.GID, &report, &effects, &c.Fingerprint, &option, &c.Status, &c.CreatedAt, &c.ExpiresAt,
		&c.Reviewer, &decided, &c.Reason, &c.BranchID, &c.ScopeVersion, &c.AppliedBy, &c.Reverts, &revertDoc, &overdue}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return row{}, err
	}
	if decided != nil {
		c.DecidedAt = *decided
	}
	var err error
	if c.Statements, err = decodeStatements(statements); err != nil {
		return row{}, err
	}
	c.Report = new(migrate.Report)
	if err := json.Unmarshal(report, c.Report); err != nil {
		return row{}, fmt.Errorf("decode report: %w", err)
	}
	if err := json.Unmarshal(effects, &c.Effects); err != nil {
		return row{}, fmt.Errorf("decode effects: %w", err)
	}
	if c.Options, err = decodeOptions(option); err != nil {
		return row{}, err
	}
	if revertDoc != nil {
		c.Revert = new(RevertPlan)
		if err := json.Unmarshal(revertDoc, c.Revert); err != nil {
			return row{}, fmt.Errorf("decode revert: %w", err)
		}
	}
	return row{Change: &c, overdue: overdue}, nil
}

// Record inserts c as a pending change. It fills in c.ID (a new UUID when
// empty), c.Effects (from c.Report when empty), c.Fingerprint, c.Status,
// c.CreatedAt and c.ExpiresAt (CreatedAt + TTL on the database's clock when
// ExpiresAt is zero).
//
// A prepared change must be recorded after its PREPARE TRANSACTION
// succeeded (see the package documentation).
func (s *Store) Record(ctx context.Context, c *Change) error {
	if err := prepareRecord(c); err != nil {
		return fmt.Errorf("record change: %w", err)
	}
	statements, err := encodeStatements(c.Statements)
	if err != nil {
		return fmt.Errorf("record change: encode statements: %w", err)
	}
	report, err := json.Marshal(c.Report)
	if err != nil {
		return fmt.Errorf("record change: encode report: %w", err)
	}
	effects, err := json.Marshal(c.Effects)
	if err != nil {
		return fmt.Errorf("record change: encode effects: %w", err)
	}
	options, err := encodeOptions(c.Options)
	if err != nil {
		return fmt.Errorf("record change: encode options: %w", err)
	}
	var gid, created, expires, branch, reverts any
	if c.Reverts != "" {
		reverts = c.Reverts
	}
	var revertJSON []byte
	if c.Revert != nil {
		if revertJSON, err = json.Marshal(c.Revert); err != nil {
			return fmt.Errorf("record change: encode revert: %w", err)
		}
	}
	if c.GID != "" {
		gid = c.GID
	}
	if c.BranchID != "" {
		branch = c.BranchID
	}
	if !c.CreatedAt.IsZero() {
		created = c.CreatedAt
	}
	if !c.ExpiresAt.IsZero() {
		expires = c.ExpiresAt
	}
	// A branch change joins its branch's log only while the branch is
	// live. FOR SHARE orders this against a merge's UPDATE of the branch
	// row: either the merge sees this change (and refuses to merge a log
	// it did not replay) or this insert sees the branch decided.
	insert := func(q querier) error {
		return q.QueryRow(ctx, `
		WITH live AS (SELECT 1 FROM airlock.branches WHERE id = $18::uuid AND status = 'live' FOR SHARE)
		INSERT INTO airlock.changes (id, ticket, summary, sql, sql_fingerprint, statements, scope, session,
			mode, gid, report, effects, fingerprint, options, status, created_at, expires_at, branch_id, scope_version, reverts, revert)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending',
			COALESCE($15::timestamptz, now()),
			COALESCE($16::timestamptz, COALESCE($15::timestamptz, now()) + $17::interval), $18::uuid, $19, $20::uuid, $21::jsonb
		WHERE $18::uuid IS NULL OR EXISTS (SELECT 1 FROM live)
		RETURNING status, created_at, expires_at`,
			c.ID, c.Ticket, c.Summary, c.SQL, c.SQLFingerprint, statements, c.Scope, c.Session,
			c.Mode, gid, report, effects, c.Fingerprint, options, created, expires, c.TTL, branch, c.ScopeVersion, reverts, revertJSON,
		).Scan(&c.Status, &c.CreatedAt, &c.ExpiresAt)
	}
	if c.Limits == (Limits{}) {
		err = insert(s.pool)
	} else {
		// Under the scope's lock, the count and the insert are one step:
		// racing sessions cannot both take the last slot.
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := lockPending(ctx, tx, c.Scope); err != nil {
				return err
			}
			if err := checkLimits(ctx, tx, c.Scope, c.Session, c.Limits); err != nil {
				return err
			}
			return insert(tx)
		})
	}
	var tooMany *TooManyPendingError
	if errors.As(err, &tooMany) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("record change %s: %w", c.ID, ErrBranchClosed)
	}
	if err != nil {
		return fmt.Errorf("record change %s: %w", c.ID, err)
	}
	return nil
}

// prepareRecord checks c and fills in what Record derives.
func prepareRecord(c *Change) error {
	if c.ID == "" {
		c.ID = uuid.NewString()
	} else if u, err := uuid.Parse(c.ID); err != nil {
		return fmt.Errorf("id %q is not a UUID", c.ID)
	} else {
		c.ID = u.String()
	}
	switch {
	case strings.TrimSpace(c.Ticket) == "":
		return errors.New("a ticket is required")
	case c.Scope == "":
		return errors.New("a scope is required")
	case len(c.Statements) == 0 && c.Reverts == "":
		return errors.New("the change has no statements")
	case c.Report == nil:
		return errors.New("the change has no report")
	case c.ExpiresAt.IsZero() && c.TTL <= 0:
		return errors.New("an expiry (ExpiresAt or a positive TTL) is required")
	}
	switch c.Mode {
	case ModeReplay:
		if c.GID != "" {
			return errors.New("a replay change has no prepared transaction id")
		}
	case ModeBranch:
		if c.GID != "" {
			return errors.New("a branch change has no prepared transaction id")
		}
		if _, err := uuid.Parse(c.BranchID); err != nil {
			return fmt.Errorf("a branch change needs its branch id, got %q", c.BranchID)
		}
	case ModePrepared:
		if !gidPattern.MatchString(c.GID) {
			return fmt.Errorf("invalid prepared transaction id %q: want airlock_<uuid>", c.GID)
		}
	default:
		return fmt.Errorf("unknown mode %q: want %s, %s or %s", c.Mode, ModeReplay, ModePrepared, ModeBranch)
	}
	if len(c.Effects.RowsAffected) == 0 && c.Reverts == "" {
		c.Effects = c.Report.Effects()
	}
	// A revert's effects are per table, from its plan.
	if len(c.Effects.RowsAffected) != len(c.Statements) && c.Reverts == "" {
		return fmt.Errorf("the effects cover %d statements, the change has %d", len(c.Effects.RowsAffected), len(c.Statements))
	}
	c.Fingerprint = c.Effects.Fingerprint()
	c.Options.Progress = nil
	return nil
}

// Get returns change id, whatever its scope.
func (s *Store) Get(ctx context.Context, id string) (*Change, error) {
	r, err := s.get(ctx, s.pool, id)
	return r.Change, err
}

// GetInScope returns change id if it belongs to scope. A change of another
// scope is reported exactly like a missing one (ErrNotFound).
func (s *Store) GetInScope(ctx context.Context, id, scope string) (*Change, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return nil, notFound(id)
	}
	r, err := scanChange(s.pool.QueryRow(ctx,
		"SELECT "+changeColumns+" FROM airlock.changes WHERE id = $1 AND scope = $2", u.String(), scope))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get change %s: %w", u, err)
	}
	return r.Change, nil
}

func (s *Store) get(ctx context.Context, q querier, id string) (row, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return row{}, notFound(id)
	}
	r, err := scanChange(q.QueryRow(ctx, "SELECT "+changeColumns+" FROM airlock.changes WHERE id = $1", u.String()))
	if errors.Is(err, pgx.ErrNoRows) {
		return row{}, notFound(id)
	}
	if err != nil {
		return row{}, fmt.Errorf("get change %s: %w", u, err)
	}
	return r, nil
}

// Pending lists the changes waiting for a reviewer, oldest first. It
// includes changes past their expiry that Reap has not expired yet.
func (s *Store) Pending(ctx context.Context) ([]*Change, error) {
	out, err := s.list(ctx, "status = 'pending'")
	if err != nil {
		return nil, fmt.Errorf("list pending changes: %w", err)
	}
	return out, nil
}

// record audits one review action.
func (s *Store) record(c *Change, id, actor, tool string, decision audit.Decision, reason string, rows int64, elapsed time.Duration) {
	if s.log == nil {
		return
	}
	ev := audit.Event{Actor: actor, Tool: tool, Decision: decision, Reason: reason, Rows: rows, Elapsed: elapsed}
	if c != nil {
		ev.Session, ev.Scope, ev.SQL, ev.Fingerprint, ev.ChangeID = c.Session, c.Scope, c.SQL, c.SQLFingerprint, c.ID
	} else if u, err := uuid.Parse(id); err == nil {
		// Only a valid UUID fits audit_log.change_id.
		ev.ChangeID = u.String()
	}
	s.log.Record(ev)
}

func sqlstate(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}
