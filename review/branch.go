package review

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/audit"
)

// Branch mode (docs/architecture.md, Write modes): each agent session gets its own
// database, cloned from the source, that its migrations commit to at once.
// The registry airlock.branches (in the source database) records every
// branch; the session's change log is the branch's rows in airlock.changes.
// A reviewer merges the log into the source in one transaction through the
// replay path, or discards the branch; the reaper drops branches past their
// TTL. Every decision is one conditional UPDATE of the branch's row, so
// exactly one reviewer action wins when several race.

// Branch is one row of airlock.branches.
type Branch struct {
	ID       string   `json:"id"`
	Session  string   `json:"session"`
	Scope    string   `json:"scope"`
	Database string   `json:"database"`
	Strategy Strategy `json:"strategy"`
	// Tables are the scope's write tables when the branch was made: the
	// tables whose schema a merge compares.
	Tables    []string     `json:"tables"`
	Status    BranchStatus `json:"status"`
	CreatedAt time.Time    `json:"created_at"`
	ExpiresAt time.Time    `json:"expires_at"`
	Reviewer  string       `json:"reviewer,omitempty"`
	DecidedAt time.Time    `json:"decided_at,omitzero"`
	Reason    string       `json:"reason,omitempty"`
	// Changes counts the branch's changes (all statuses); SizeBytes is
	// pg_database_size of its database, -1 when it is gone. Both are
	// filled by Branches and GetBranch.
	Changes   int   `json:"changes"`
	SizeBytes int64 `json:"size_bytes"`
}

// BranchSpec says what branch CreateBranch makes.
type BranchSpec struct {
	Scope string
	// Session is the agent session, a UUID made by airlock; the branch
	// database is named after it.
	Session  string
	Strategy Strategy
	TTL      time.Duration
	// MaxBranches bounds the scope's live branches.
	MaxBranches int
	// WriteTables are compared at merge; ReadTables (with WriteTables)
	// are the tables the schema strategy copies.
	WriteTables, ReadTables []string
	// SampleRows is how many rows per table the schema strategy copies.
	SampleRows int
}

// TooManyBranchesError is CreateBranch's refusal when the scope already
// has its maximum of live branches.
type TooManyBranchesError struct {
	Scope string
	Max   int
}

func (e *TooManyBranchesError) Error() string {
	return fmt.Sprintf("scope %s already has %d live branches (write.branch.max_branches); a reviewer must merge or discard one (airlock branches)", e.Scope, e.Max)
}

// SourceInUseError is the template strategy's failure when other sessions
// stay connected to the source database.
type SourceInUseError struct {
	Source      string
	Connections int
}

func (e *SourceInUseError) Error() string {
	return fmt.Sprintf("cannot create a branch by copying database %q as a template: %d other session(s) are connected to it, and PostgreSQL copies a database only while nobody else is connected. "+
		`Close those sessions, or set write.branch.strategy to "schema" (an empty copy of the in-scope tables that works while the source is in use)`,
		e.Source, e.Connections)
}

// BranchNotLiveError is a reviewer action's refusal on a branch that was
// already decided: it says who decided and when.
type BranchNotLiveError struct{ Branch *Branch }

func (e *BranchNotLiveError) Error() string {
	b := e.Branch
	msg := fmt.Sprintf("branch %s is %s", b.ID, b.Status)
	if b.Reviewer != "" {
		msg += " by " + b.Reviewer
	}
	if !b.DecidedAt.IsZero() {
		msg += " at " + stamp(b.DecidedAt)
	}
	return msg + because(b.Reason)
}

func errBranchChange(c *Change) error {
	return fmt.Errorf("change %s was committed on branch %s: a branch is reviewed as a whole, with airlock merge %s or airlock discard %s", c.ID, c.BranchID, c.BranchID, c.BranchID)
}

var branchDBPattern = regexp.MustCompile(`^airlock_br_[0-9a-f]{32}$`)

// branchDatabase names the branch database of session: the session's UUID
// without dashes, so two sessions can never collide and the agent never
// chooses any part of it.
func branchDatabase(session string) (string, error) {
	u, err := uuid.Parse(session)
	if err != nil {
		return "", fmt.Errorf("session %q is not a UUID", session)
	}
	return "airlock_br_" + strings.ReplaceAll(u.String(), "-", ""), nil
}

const branchColumns = `b.id::text, b.session, b.scope, b.database, b.strategy, b.tables, b.status, b.created_at, b.expires_at,
	COALESCE(b.reviewer, ''), b.decided_at, COALESCE(b.reason, ''),
	(SELECT count(*) FROM airlock.changes c WHERE c.branch_id = b.id),
	CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_database d WHERE d.datname = b.database)
		THEN pg_catalog.pg_database_size(b.database) ELSE -1 END`

func scanBranch(r pgx.Row) (*Branch, error) {
	var b Branch
	var decided *time.Time
	if err := r.Scan(&b.ID, &b.Session, &b.Scope, &b.Database, &b.Strategy, &b.Tables, &b.Status, &b.CreatedAt, &b.ExpiresAt,
		&b.Reviewer, &decided, &b.Reason, &b.Changes, &b.SizeBytes); err != nil {
		return nil, err
	}
	if decided != nil {
		b.DecidedAt = *decided
	}
	return &b, nil
}

// Branches lists the live branches, oldest first.
func (s *Store) Branches(ctx context.Context) ([]*Branch, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+branchColumns+" FROM airlock.branches b WHERE b.status = 'live' ORDER BY b.created_at, b.id")
	if err != nil {
		return nil, fmt.Errorf("list branches: %w", err)
	}
	defer rows.Close()
	var out []*Branch
	for rows.Next() {
		b, err := scanBranch(rows)
		if err != nil {
			return nil, fmt.Errorf("list branches: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// GetBranch returns branch id, or ErrNotFound.
func (s *Store) GetBranch(ctx context.Context, id string) (*Branch, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return nil, notFound(id)
	}
	b, err := scanBranch(s.pool.QueryRow(ctx, "SELECT "+branchColumns+" FROM airlock.branches b WHERE b.id = $1", u.String()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get branch %s: %w", u, err)
	}
	return b, nil
}

// BranchChanges returns branch id's change log, in the order it was
// applied.
func (s *Store) BranchChanges(ctx context.Context, id string) ([]*Change, error) {
	out, err := s.list(ctx, "branch_id = $1", id)
	if err != nil {
		return nil, fmt.Errorf("list changes of branch %s: %w", id, err)
	}
	return out, nil
}

// CreateBranch registers and creates the branch database of spec.Session.
// It fails with *TooManyBranchesError past spec.MaxBranches and, for the
// template strategy, with *SourceInUseError when other sessions stay
// connected to the source. The template strategy closes the store pool's
// idle connections first (they count as users of the source).
func (s *Store) CreateBranch(ctx context.Context, spec BranchSpec) (*Branch, error) {
	name, err := branchDatabase(spec.Session)
	if err != nil {
		return nil, fmt.Errorf("create branch: %w", err)
	}
	if spec.Strategy != StrategyTemplate && spec.Strategy != StrategySchema {
		return nil, fmt.Errorf("create branch: unknown strategy %q", spec.Strategy)
	}
	id := uuid.NewString()
	// The count and the insert run under a per-scope lock, so that racing
	// sessions cannot both take the last slot.
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(7262912, hashtext($1))", spec.Scope); err != nil {
			return err
		}
		var live int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM airlock.branches WHERE scope = $1 AND status = 'live'", spec.Scope).Scan(&live); err != nil {
			return err
		}
		if spec.MaxBranches > 0 && live >= spec.MaxBranches {
			return &TooManyBranchesError{Scope: spec.Scope, Max: spec.MaxBranches}
		}
		_, err := tx.Exec(ctx, `INSERT INTO airlock.branches (id, session, scope, database, strategy, tables, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval)`,
			id, spec.Session, spec.Scope, name, spec.Strategy, spec.WriteTables, spec.TTL)
		return err
	})
	if err != nil {
		var tooMany *TooManyBranchesError
		if errors.As(err, &tooMany) {
			return nil, err
		}
		if sqlstate(err) == pgerrcode.UniqueViolation {
			return nil, fmt.Errorf("create branch: session %s already had a branch; a session gets one branch, start a new session", spec.Session)
		}
		return nil, fmt.Errorf("create branch: register: %w", err)
	}
	if err := s.createDatabase(ctx, name, spec); err != nil {
		// Nothing else knows the branch yet: forget it.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = s.dropDatabase(cctx, name)
		_, _ = s.pool.Exec(cctx, "DELETE FROM airlock.branches WHERE id = $1", id)
		return nil, err
	}
	b, err := s.GetBranch(ctx, id)
	if err != nil {
		return nil, err
	}
	s.recordBranch(b, "agent", "create_branch", audit.Allowed, "created "+b.Database+" ("+string(b.Strategy)+")")
	return b, nil
}

// OpenBranch returns a pool on branch b's database with the store pool's
// connection settings.
func (s *Store) OpenBranch(ctx context.Context, b *Branch) (*pgxpool.Pool, error) {
	if !branchDBPattern.MatchString(b.Database) {
		return nil, fmt.Errorf("open branch: unexpected database name %q", b.Database)
	}
	cfg := s.pool.Config()
	cfg.ConnConfig.Database = b.Database
	cfg.MaxConns = min(cfg.MaxConns, 4)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open branch %s: %w", b.ID, err)
	}
	return pool, nil
}

// BranchLive reports whether branch id is still live.
func (s *Store) BranchLive(ctx context.Context, id string) (bool, error) {
	var live bool
	err := s.pool.QueryRow(ctx, "SELECT status = 'live' AND expires_at > clock_timestamp() FROM airlock.branches WHERE id = $1", id).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return live, err
}

// ErrBranchClosed is Record's refusal of a change for a branch that is no
// longer live.
var ErrBranchClosed = errors.New("the branch is no longer live (merged, discarded or expired)")

// recordBranch audits a branch action.
func (s *Store) recordBranch(b *Branch, actor, tool string, decision audit.Decision, reason string) {
	s.recordBranchElapsed(b, actor, tool, decision, reason, 0)
}

func (s *Store) recordBranchElapsed(b *Branch, actor, tool string, decision audit.Decision, reason string, elapsed time.Duration) {
	if s.log == nil || b == nil {
		return
	}
	s.log.Record(audit.Event{Actor: actor, Tool: tool, Decision: decision, Session: b.Session, Scope: b.Scope,
		Reason: "branch " + b.ID + ": " + reason, Elapsed: elapsed})
}
