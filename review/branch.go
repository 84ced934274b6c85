package review

// Branch mode (docs/architecture.md, Write modes): each agent session gets its own
// database, cloned from the source, that its migrations commit to at once.
// The registry airlock.branches (in the source database) records every
// branch; the session's change log is the branch's rows in airlock.changes.
// A reviewer merges the log into the source in one transaction through the
// replay path, or discards the branch; the reaper drops branches past their
// TTL. Every decision is one conditional UPDATE of the branch's row, so
// exactly one reviewer action wins when several race.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// Branch statuses. A branch starts live and ends in exactly one of the
// others; its database exists only while it is live (or until a failed
// drop is retried by Reap).
const (
	BranchLive      = "live"
	BranchMerged    = "merged"
	BranchDiscarded = "discarded"
	BranchExpired   = "expired"
)

// Branch strategies (scope write.branch.strategy).
const (
	StrategyTemplate = "template"
	StrategySchema   = "schema"
)

// Branch is one row of airlock.branches.
type Branch struct {
	ID       string `json:"id"`
	Session  string `json:"session"`
	Scope    string `json:"scope"`
	Database string `json:"database"`
	Strategy string `json:"strategy"`
	// Tables are the scope's write tables when the branch was made: the
	// tables whose schema a merge compares.
	Tables    []string  `json:"tables"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Reviewer  string    `json:"reviewer,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Reason    string    `json:"reason,omitempty"`
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
	Strategy string
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
	s.recordBranch(b, "agent", "create_branch", audit.Allowed, "created "+b.Database+" ("+b.Strategy+")")
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

// admin connects to the maintenance database of the store's cluster:
// CREATE DATABASE ... TEMPLATE must not run from a session on the source.
func (s *Store) admin(ctx context.Context) (*pgx.Conn, error) {
	cfg := s.pool.Config().ConnConfig
	var errs []error
	for _, db := range []string{"postgres", "template1"} {
		c := cfg.Copy()
		c.Database = db
		conn, err := pgx.ConnectConfig(ctx, c)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("connect to the maintenance database: %w", errors.Join(errs...))
}

// sourceName is the source database's name.
func (s *Store) sourceName(ctx context.Context) (string, error) {
	var name string
	err := s.pool.QueryRow(ctx, "SELECT current_database()").Scan(&name)
	return name, err
}

// templateRetries bounds how often the template strategy tries again
// after PostgreSQL found the source in use; PostgreSQL itself waits up to
// five seconds for other sessions to leave before it reports that.
const (
	templateRetries = 1
	templateWait    = 200 * time.Millisecond
)

func (s *Store) createDatabase(ctx context.Context, name string, spec BranchSpec) error {
	source, err := s.sourceName(ctx)
	if err != nil {
		return fmt.Errorf("create branch: %w", err)
	}
	admin, err := s.admin(ctx)
	if err != nil {
		return fmt.Errorf("create branch: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if spec.Strategy == StrategySchema {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
			return fmt.Errorf("create branch database: %w", err)
		}
		if err := s.copySchema(ctx, name, spec); err != nil {
			return fmt.Errorf("create branch: %w", err)
		}
		return nil
	}
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE " + pgx.Identifier{source}.Sanitize()
	for attempt := 0; ; attempt++ {
		// Our own idle connections count as users of the source.
		s.pool.Reset()
		_, err := admin.Exec(ctx, stmt)
		if err == nil {
			return nil
		}
		if sqlstate(err) != pgerrcode.ObjectInUse {
			return fmt.Errorf("create branch database: %w", err)
		}
		if attempt == templateRetries {
			var n int
			_ = admin.QueryRow(ctx, "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = $1", source).Scan(&n)
			return &SourceInUseError{Source: source, Connections: n}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(templateWait):
		}
	}
}

// dropDatabase drops a branch database, ending its sessions.
func (s *Store) dropDatabase(ctx context.Context, name string) error {
	if !branchDBPattern.MatchString(name) {
		return fmt.Errorf("drop branch: unexpected database name %q", name)
	}
	admin, err := s.admin(ctx)
	if err != nil {
		return fmt.Errorf("drop branch: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop branch database %s: %w", name, err)
	}
	return nil
}

// closeBranch decides live branch id (discarded or expired): its pending
// changes become rolled_back or expired in the same transaction, then the
// database is dropped. A branch already decided is a *BranchNotLiveError.
func (s *Store) closeBranch(ctx context.Context, id, status, changeStatus, reviewer, reason string, onlyOverdue bool) (*Branch, error) {
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

// finishDrop drops a decided branch's database and notes it.
func (s *Store) finishDrop(ctx context.Context, id, name string) error {
	if err := s.dropDatabase(ctx, name); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, "UPDATE airlock.branches SET dropped = true WHERE id = $1", id)
	return err
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

// MergeResult is what Merge did.
type MergeResult struct {
	Branch *Branch
	// Changes are the merged (or drifted) changes, in order.
	Changes []*Change
	// Report is the replay's report on the source.
	Report *migrate.Report
}

// Merge replays branch id's pending change log on the source in one
// transaction through the replay path: every statement must affect exactly
// the rows it affected on the branch, and the schema of the branch's write
// tables after the replay must equal the branch's. Then, in that same
// transaction, the changes are marked committed and the branch merged;
// after the commit the branch database is dropped. On a difference
// nothing is committed, the branch is kept, its pending changes are marked
// drifted and the error wraps the *migrate.Drift. Exactly one of several
// racing reviewer actions wins; the others get a *BranchNotLiveError.
func (s *Store) Merge(ctx context.Context, id, reviewer string) (*MergeResult, error) {
	return s.MergeApproved(ctx, id, reviewer, Approval{})
}

// MergeApproved is Merge bound to an approval: a.Expect, when set, must be
// the branch's approval hash (BranchApprovalHash over the pending changes
// airlock show lists), and every pending change must pass the Checker as
// CommitApproved requires.
func (s *Store) MergeApproved(ctx context.Context, id, reviewer string, a Approval) (*MergeResult, error) {
	start := time.Now()
	reviewer = strings.TrimSpace(reviewer)
	if reviewer == "" {
		return nil, errors.New("merge: a reviewer name is required")
	}
	res, err := s.merge(ctx, id, reviewer, a)
	decision, why := audit.Reviewed, "merged"
	if err != nil {
		decision, why = audit.Failed, err.Error()
	}
	if res != nil {
		s.recordBranchElapsed(res.Branch, reviewer, "merge", decision, why, time.Since(start))
	}
	return res, err
}

func (s *Store) merge(ctx context.Context, id, reviewer string, a Approval) (*MergeResult, error) {
	b, err := s.GetBranch(ctx, id)
	if err != nil {
		return nil, err
	}
	res := &MergeResult{Branch: b}
	if b.Status != BranchLive {
		return res, &BranchNotLiveError{Branch: b}
	}
	all, err := s.BranchChanges(ctx, b.ID)
	if err != nil {
		return res, err
	}
	for _, c := range all {
		if c.Status == StatusPending {
			res.Changes = append(res.Changes, c)
		}
	}
	if len(res.Changes) == 0 {
		return res, fmt.Errorf("merge branch %s: it has no pending changes to merge", b.ID)
	}
	if a.Expect != "" {
		if h := BranchApprovalHash(b, res.Changes); !matchesApproval(h, a.Expect) {
			return res, &ApprovalMismatchError{ID: b.ID, Expected: strings.TrimSpace(a.Expect), Actual: h}
		}
	}
	for _, c := range res.Changes {
		if err := s.verify(ctx, s.pool, c, Approval{}, false); err != nil {
			return res, fmt.Errorf("merge branch %s: %w", b.ID, err)
		}
	}
	plan, opt, expected := mergePlan(res.Changes, b.Strategy == StrategyTemplate)
	if opt.Role, err = writeRole(ctx, s.pool, b.Scope); err != nil {
		return res, err
	}
	opt.DoRunner = scopes.DoRunner(b.Scope)
	if opt.WriteTables, err = writeTables(ctx, s.pool, b.Scope); err != nil {
		return res, err
	}
	undo, err := undoSettings(ctx, s.pool, b.Scope)
	if err != nil {
		return res, err
	}
	var undoLog *migrate.UndoLog
	if undo != nil {
		// Each change's rows are captured under its own id, so each can
		// be reverted alone (docs/architecture.md, Undo).
		opt.Undo, undoLog = true, &migrate.UndoLog{}
		for _, c := range res.Changes {
			for range c.Statements {
				opt.CaptureEach = append(opt.CaptureEach, c.ID)
			}
		}
	}

	bpool, err := s.OpenBranch(ctx, b)
	if err != nil {
		return res, err
	}
	branchSchema, err := describeSchema(ctx, bpool, b.Tables)
	bpool.Close()
	if err != nil {
		return res, fmt.Errorf("merge branch %s: read the branch's schema: %w", b.ID, err)
	}

	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("merge branch %s: %w", b.ID, err)
	}
	ids := make([]string, len(res.Changes))
	for i, c := range res.Changes {
		ids[i] = c.ID
	}
	rep, err := migrate.Run(ctx, pc.Conn(), plan, opt, migrate.EndCommitIfSame, migrate.RunArg{
		Expected:         &expected,
		IgnoreSchemaDiff: true,
		Undo:             undoLog,
		BeforeCommit: func(ctx context.Context, tx pgx.Tx) error {
			sourceSchema, err := describeSchema(ctx, tx, b.Tables)
			if err != nil {
				return fmt.Errorf("read the source's schema: %w", err)
			}
			if diffs := schemaDifferences(branchSchema, sourceSchema); diffs != nil {
				return &migrate.Drift{Differences: diffs}
			}
			tag, err := tx.Exec(ctx, `UPDATE airlock.branches SET status = 'merged', reviewer = $2, decided_at = clock_timestamp()
				WHERE id = $1 AND status = 'live' AND expires_at > clock_timestamp()`, b.ID, reviewer)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return errBranchDecided
			}
			// Holding the branch row now, no change can join the log
			// (Record takes it FOR SHARE): the log must be what we replayed.
			var more bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM airlock.changes
				WHERE branch_id = $1 AND status = 'pending' AND NOT (id = ANY($2::uuid[])))`, b.ID, ids).Scan(&more); err != nil {
				return err
			}
			if more {
				return errLogGrew
			}
			tag, err = tx.Exec(ctx, `UPDATE airlock.changes SET status = 'committed', reviewer = $2, decided_at = clock_timestamp(), reason = 'merged with branch ' || $3
				WHERE id = ANY($1::uuid[]) AND status = 'pending'`, ids, reviewer, b.ID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != int64(len(ids)) {
				return errBranchDecided
			}
			if undo != nil {
				for _, c := range res.Changes {
					if err := recordCapture(ctx, tx, c, undo, undoLog); err != nil {
						return err
					}
				}
			}
			return nil
		},
	})
	unlockAll(ctx, pc.Conn())
	pc.Release()
	res.Report = rep
	var drift *migrate.Drift
	switch {
	case err == nil:
	case errors.As(err, &drift):
		if drift.Report != nil {
			res.Report = drift.Report
		}
		reason := "drifted: " + strings.Join(drift.Differences, "; ")
		if _, uerr := s.pool.Exec(ctx, `UPDATE airlock.changes SET status = 'drifted', reviewer = $2, decided_at = clock_timestamp(), reason = $3
			WHERE id = ANY($1::uuid[]) AND status = 'pending'`, ids, reviewer, reason); uerr != nil {
			return res, fmt.Errorf("merge branch %s: %w; marking the changes drifted failed: %v", b.ID, err, uerr)
		}
		_, _ = s.pool.Exec(ctx, "UPDATE airlock.branches SET reason = $2 WHERE id = $1 AND status = 'live'", b.ID, reason)
		s.refresh(ctx, res)
		return res, fmt.Errorf("merge branch %s: nothing was committed and the branch is kept: %w", b.ID, err)
	case errors.Is(err, errLogGrew):
		return res, fmt.Errorf("merge branch %s: %w", b.ID, errLogGrew)
	default:
		if nb, gerr := s.GetBranch(ctx, b.ID); gerr == nil && nb.Status != BranchLive {
			res.Branch = nb
			return res, &BranchNotLiveError{Branch: nb}
		}
		return res, fmt.Errorf("merge branch %s: %w; nothing was committed and the branch is kept", b.ID, err)
	}
	derr := s.finishDrop(ctx, b.ID, b.Database)
	s.refresh(ctx, res)
	if derr != nil {
		return res, fmt.Errorf("branch %s was merged, but dropping its database failed (the next reap retries): %w", b.ID, derr)
	}
	return res, nil
}

var errBranchDecided = errors.New("the branch was decided by someone else meanwhile")

// ErrBranchClosed is Record's refusal of a change for a branch that is no
// longer live.
var ErrBranchClosed = errors.New("the branch is no longer live (merged, discarded or expired)")

// errLogGrew is a merge's refusal when the session recorded more changes
// after the merge read the log.
var errLogGrew = errors.New("the session applied more changes to the branch while it was being merged; nothing was committed, merge again")

// refresh rereads res's branch and changes after a decision.
func (s *Store) refresh(ctx context.Context, res *MergeResult) {
	if nb, err := s.GetBranch(ctx, res.Branch.ID); err == nil {
		res.Branch = nb
	}
	for i, c := range res.Changes {
		if nc, err := s.Get(ctx, c.ID); err == nil {
			res.Changes[i] = nc
		}
	}
}

// BranchApprovalHash is the hex SHA-256 a merge is bound to: the branch and
// the approval hash of each pending change of its log, in order.
func BranchApprovalHash(b *Branch, pending []*Change) string {
	h := sha256.New()
	fmt.Fprintf(h, "airlock-branch-approval-v1\n%s\n", b.ID)
	for _, c := range pending {
		fmt.Fprintf(h, "%s\n", c.ApprovalHash())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// mergePlan concatenates the change log into one plan with the rows each
// statement must affect. The options' role is not the merge's: Merge sets
// it to the scope's write role recorded in airlock.scopes (writeRole), so
// the merge, like every commit, runs as that role whatever the changes'
// stored options or the reviewer's login say (docs/architecture.md,
// Approvals).
//
// A template branch began as a full copy of the source, so the merge also
// compares the rows each statement touched (docs/architecture.md,
// Effects); a schema branch holds sampled rows, and only counts compare.
func mergePlan(changes []*Change, images bool) (*sqlguard.MigrationPlan, migrate.Options, migrate.Effects) {
	plan := &sqlguard.MigrationPlan{}
	var expected migrate.Effects
	opt := changes[0].Options
	var fps []string
	for _, c := range changes {
		plan.Statements = append(plan.Statements, slices.Clone(c.Statements)...)
		expected.RowsAffected = append(expected.RowsAffected, c.Effects.RowsAffected...)
		rows := c.Effects.Rows
		if !images || len(rows) != len(c.Statements) {
			rows = make([]migrate.RowsEffect, len(c.Statements))
		}
		expected.Rows = append(expected.Rows, rows...)
		opt.StatementTimeout = max(opt.StatementTimeout, c.Options.StatementTimeout)
		fps = append(fps, c.SQLFingerprint)
	}
	plan.Fingerprint = strings.Join(fps, ",")
	return plan, opt, expected
}

// schemaQuerier is a pool or a transaction.
type schemaQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// describeSchemaSQL renders tables' definitions as sorted lines: columns
// (type, nullability, default), constraints and indexes. Names are
// rendered with search_path set to pg_catalog only, so both sides qualify
// alike. Column positions are left out: a schema-strategy branch has no
// dropped columns where the source may. Whether a constraint is validated
// is left out too: a schema-strategy branch adds constraints its sampled
// rows violate NOT VALID.
const describeSchemaSQL = `
WITH t AS (
	SELECT c.oid, n.nspname || '.' || c.relname AS name, c.relkind
	FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname || '.' || c.relname = ANY($1)
)
SELECT line FROM (
	SELECT t.name || ': relation kind ' || t.relkind::text AS line FROM t
	UNION ALL
	SELECT t.name || ': column ' || a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
		|| CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		|| COALESCE(' default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
	FROM t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
	LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = t.oid AND d.adnum = a.attnum
	UNION ALL
	SELECT t.name || ': constraint ' || co.conname || ' ' || CASE WHEN co.convalidated
		THEN pg_catalog.pg_get_constraintdef(co.oid)
		ELSE pg_catalog.left(pg_catalog.pg_get_constraintdef(co.oid), -10) END -- drop " NOT VALID"
	FROM t JOIN pg_catalog.pg_constraint co ON co.conrelid = t.oid
	UNION ALL
	SELECT t.name || ': index ' || pg_catalog.pg_get_indexdef(i.indexrelid)
	FROM t JOIN pg_catalog.pg_index i ON i.indrelid = t.oid
) s ORDER BY line`

func describeSchema(ctx context.Context, q schemaQuerier, tables []string) ([]string, error) {
	run := func(q schemaQuerier) ([]string, error) {
		if _, err := q.Exec(ctx, "SELECT pg_catalog.set_config('search_path', 'pg_catalog', true)"); err != nil {
			return nil, err
		}
		rows, err := q.Query(ctx, describeSchemaSQL, tables)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if tx, ok := q.(pgx.Tx); ok {
		return run(tx)
	}
	pool, ok := q.(*pgxpool.Pool)
	if !ok {
		return nil, errors.New("describe schema: want a pool or a transaction")
	}
	var out []string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		out, err = run(tx)
		return err
	})
	return out, err
}

// schemaDifferences lists, in words, what differs between the branch's
// schema lines and the source's after the replay; nil when identical.
func schemaDifferences(branch, source []string) []string {
	only := func(a, b []string) []string {
		seen := map[string]int{}
		for _, l := range b {
			seen[l]++
		}
		var out []string
		for _, l := range a {
			if seen[l] > 0 {
				seen[l]--
				continue
			}
			out = append(out, l)
		}
		return out
	}
	var diffs []string
	for _, l := range only(branch, source) {
		diffs = append(diffs, "only on the branch: "+l)
	}
	for _, l := range only(source, branch) {
		diffs = append(diffs, "only on the source after the replay: "+l)
	}
	return diffs
}

// SchemaDiff compares branch b's write tables with the source's: lines
// only on the source start with "- ", lines only on the branch with "+ ".
func (s *Store) SchemaDiff(ctx context.Context, b *Branch) ([]string, error) {
	bpool, err := s.OpenBranch(ctx, b)
	if err != nil {
		return nil, err
	}
	defer bpool.Close()
	branch, err := describeSchema(ctx, bpool, b.Tables)
	if err != nil {
		return nil, fmt.Errorf("read branch %s's schema: %w", b.ID, err)
	}
	source, err := describeSchema(ctx, s.pool, b.Tables)
	if err != nil {
		return nil, fmt.Errorf("read the source's schema: %w", err)
	}
	branchOnly, sourceOnly := schemaDifferencesSplit(branch, source)
	var out []string
	for _, l := range sourceOnly {
		out = append(out, "- "+l)
	}
	for _, l := range branchOnly {
		out = append(out, "+ "+l)
	}
	return out, nil
}

func schemaDifferencesSplit(branch, source []string) (branchOnly, sourceOnly []string) {
	for _, d := range schemaDifferences(branch, source) {
		if l, ok := strings.CutPrefix(d, "only on the branch: "); ok {
			branchOnly = append(branchOnly, l)
		} else if l, ok := strings.CutPrefix(d, "only on the source after the replay: "); ok {
			sourceOnly = append(sourceOnly, l)
		}
	}
	return branchOnly, sourceOnly
}

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
