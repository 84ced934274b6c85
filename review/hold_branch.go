package review

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// BranchProvisioner readies a branch database for the scope's roles: a
// schema copy carries no grants, and a table a migration creates on any
// branch has none either (a template copy starts with the source's), so
// the holder provisions a branch when it is made and after every change
// that defines tables (docs/architecture.md, Held changes).
//
// It is an interface, not grant SQL of review's own: what a scope's roles
// hold (table and column grants, row filters, masks, the DO runner) is
// compiled in one place, package roles, which imports review; grants
// written again here would drift from it. The tool layer, above both,
// passes one that runs roles.Apply on the branch.
type BranchProvisioner interface {
	ProvisionBranch(ctx context.Context, pool *pgxpool.Pool) error
}

// BranchCatalogs holds what the session has read of its branch's
// catalog; a change committed on the branch makes it stale.
type BranchCatalogs interface {
	ReloadCatalog(ctx context.Context, b *LiveBranch) error
}

// ErrSessionBranchClosed refuses a change in a session whose branch was
// merged, discarded or expired: a session gets one branch.
var ErrSessionBranchClosed = errors.New("this session's branch was merged, discarded or expired; a session gets one branch")

// branchRecheck is how often Live asks the registry whether the session's
// branch is still live (a reviewer may merge or discard it from another
// process at any time).
const branchRecheck = 2 * time.Second

// SessionBranch is one agent session's branch database (write.mode
// "branch"). The branch is created on the session's first change; from
// then on every tool reads and dry-runs on it, so the agent sees its own
// work, until a reviewer merges or discards it.
type SessionBranch struct {
	store     *Store
	provision BranchProvisioner

	mu     sync.Mutex
	cur    *LiveBranch
	closed bool // the session's branch was decided; it gets no other
}

// LiveBranch is a session's live branch and a pool on its database.
type LiveBranch struct {
	Branch *Branch
	Pool   *pgxpool.Pool
	// checked is when the registry last said the branch is live.
	checked time.Time
}

// NewSessionBranch returns a session's branch, not yet made. provision
// may be nil: nothing is granted on the branch then.
func NewSessionBranch(store *Store, provision BranchProvisioner) *SessionBranch {
	return &SessionBranch{store: store, provision: provision}
}

// Live returns the session's live branch, or nil.
func (s *SessionBranch) Live(ctx context.Context) *LiveBranch {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur
	if cur == nil || time.Since(cur.checked) < branchRecheck {
		return cur
	}
	live, err := s.store.BranchLive(ctx, cur.Branch.ID)
	if err != nil {
		// The registry is unreachable: keep using the branch; the
		// reviewer's decision is seen on the next check.
		return cur
	}
	if !live {
		s.closed = true
		s.cur = nil
		cur.Pool.Close()
		return nil
	}
	cur.checked = time.Now()
	return cur
}

// Ensure returns the session's branch, creating it from spec on first
// use. It fails with ErrSessionBranchClosed once the session's branch
// was decided, and with CreateBranch's *TooManyBranchesError and
// *SourceInUseError.
func (s *SessionBranch) Ensure(ctx context.Context, spec BranchSpec) (*LiveBranch, error) {
	if lb := s.Live(ctx); lb != nil {
		return lb, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		return s.cur, nil
	}
	if s.closed {
		return nil, ErrSessionBranchClosed
	}
	created, err := s.store.CreateBranch(ctx, spec)
	if err != nil {
		return nil, err
	}
	pool, err := s.store.OpenBranch(ctx, created)
	if err == nil && s.provision != nil {
		err = s.provision.ProvisionBranch(ctx, pool)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		// Leave the registered branch to the reviewer (or the reaper):
		// it may already be visible in airlock branches.
		_, _ = s.store.Discard(context.WithoutCancel(ctx), created.ID, "airlock", "setting up the branch failed")
		return nil, fmt.Errorf("set up branch %s: %w", created.ID, err)
	}
	s.cur = &LiveBranch{Branch: created, Pool: pool, checked: time.Now()}
	return s.cur, nil
}

// Close releases the session's connections to its branch (the branch
// itself stays for the reviewer).
func (s *SessionBranch) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.Pool.Close()
		s.cur = nil
	}
}

// branchSpec is the branch a session of scope gets.
func branchSpec(scope *scopes.Scope, session string) BranchSpec {
	w := scope.Write
	spec := BranchSpec{
		Scope: scope.Name, Session: session, Strategy: Strategy(w.Branch.Strategy), TTL: w.Branch.TTL,
		MaxBranches: w.Branch.MaxBranches, WriteTables: w.Tables, SampleRows: w.Branch.SampleRows,
	}
	for t := range scope.Read.Tables {
		spec.ReadTables = append(spec.ReadTables, t)
	}
	return spec
}

// branchHolder holds a change on the session's branch (write.mode
// "branch"): the branch is the session's own copy, so the change commits
// there at once, and the reviewer merges the whole log later
// (docs/architecture.md, Write modes).
type branchHolder struct{ HoldConfig }

// Hold fails with Ensure's errors, and with ErrBranchClosed (from Record)
// when a reviewer decided the branch while the change ran.
func (b *branchHolder) Hold(ctx context.Context, h *Hold) (*migrate.Report, error) {
	if err := b.Store.checkHoldLimits(ctx, h); err != nil {
		return nil, err
	}
	if b.Branch == nil {
		return nil, errors.New("branch mode without a session branch")
	}
	c := h.Change
	lb, err := b.Branch.Ensure(ctx, branchSpec(b.Scope, c.Session))
	if err != nil {
		return nil, err
	}
	rep, err := h.Run(ctx, lb.Pool, h.Plan, migrate.EndCommit, migrate.RunArg{}, "")
	if err != nil {
		return nil, err
	}
	c.BranchID, c.ExpiresAt = lb.Branch.ID, lb.Branch.ExpiresAt
	if definesTables(h.Plan) && b.Branch.provision != nil {
		// DDL may have made a table the scope's roles hold nothing on.
		if err := b.Branch.provision.ProvisionBranch(ctx, lb.Pool); err != nil {
			b.Log.Warn("re-apply the scope's roles on the branch", "err", err)
		}
	}
	if b.Catalogs != nil {
		if err := b.Catalogs.ReloadCatalog(ctx, lb); err != nil {
			b.Log.Warn("reload the branch's catalog", "err", err)
		}
	}
	if err := b.Store.recordHeld(ctx, h, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// definesTables reports whether a plan changes table definitions (any
// kind other than data changes): a branch then needs its grants renewed.
func definesTables(plan *sqlguard.MigrationPlan) bool {
	for _, st := range plan.Statements {
		switch st.Kind {
		case "insert", "update", "delete", "truncate":
		default:
			return true
		}
	}
	return false
}
