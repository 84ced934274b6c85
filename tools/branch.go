package tools

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/sqlguard"
)

// Branching gives an agent session its own branch database (write.mode
// "branch"). The branch is created on the session's first apply; from
// then on every tool reads and dry-runs on it, so the agent sees its own
// work, until a reviewer merges or discards it.
type Branching struct {
	Store *review.Store
	// Prepare, if set, runs on a new branch's pool before any tool uses
	// it: the schema strategy's copy has no grants, so the server runs
	// roles.Apply there.
	Prepare func(ctx context.Context, pool *pgxpool.Pool) error

	mu     sync.Mutex
	cur    *sessionBranch
	closed bool // the session's branch was decided; it gets no other
}

// sessionBranch is the session's live branch.
type sessionBranch struct {
	branch  *review.Branch
	pool    *pgxpool.Pool
	catalog *Catalog
	// checked is when the registry last said the branch is live.
	checked time.Time
}

// branchRecheck is how often Target asks the registry whether the
// session's branch is still live (a reviewer may merge or discard it from
// another process at any time).
const branchRecheck = 2 * time.Second

// Target returns the pool and catalog the session's tools work on: the
// session's branch once it has one (and it is still live), else the
// source database.
func (e *Env) Target(ctx context.Context) (*pgxpool.Pool, *Catalog) {
	e = e.For(ctx)
	if br := e.branch(ctx); br != nil {
		return br.pool, br.catalog
	}
	return e.Pool, e.Catalog
}

// branch returns the session's live branch, or nil.
func (e *Env) branch(ctx context.Context) *sessionBranch {
	e = e.For(ctx)
	b := e.Branching
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.cur
	if cur == nil || time.Since(cur.checked) < branchRecheck {
		return cur
	}
	live, err := b.Store.BranchLive(ctx, cur.branch.ID)
	if err != nil {
		// The registry is unreachable: keep using the branch; the
		// reviewer's decision is seen on the next check.
		return cur
	}
	if !live {
		b.closed = true
		b.cur = nil
		cur.pool.Close()
		return nil
	}
	cur.checked = time.Now()
	return cur
}

// ensureBranch returns the session's branch, creating it on first use.
// Failures an agent can act on come back as refusals.
func (e *Env) ensureBranch(ctx context.Context) (*sessionBranch, *sqlguard.Refusal, error) {
	e = e.For(ctx)
	if br := e.branch(ctx); br != nil {
		return br, nil, nil
	}
	b := e.Branching
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		return b.cur, nil, nil
	}
	if b.closed {
		return nil, &sqlguard.Refusal{Code: "branch_closed",
			Reason: "this session's branch was merged, discarded or expired; a session gets one branch",
			Hint:   "start a new session to make further changes; get_change_status tells what happened to earlier ones"}, nil
	}
	w := e.Scope.Write
	spec := review.BranchSpec{
		Scope: e.Scope.Name, Session: e.Session, Strategy: review.Strategy(w.Branch.Strategy), TTL: w.Branch.TTL,
		MaxBranches: w.Branch.MaxBranches, WriteTables: w.Tables, SampleRows: w.Branch.SampleRows,
	}
	for t := range e.Scope.Read.Tables {
		spec.ReadTables = append(spec.ReadTables, t)
	}
	created, err := b.Store.CreateBranch(ctx, spec)
	var tooMany *review.TooManyBranchesError
	var inUse *review.SourceInUseError
	switch {
	case errors.As(err, &tooMany):
		return nil, &sqlguard.Refusal{Code: "too_many_branches", Reason: tooMany.Error(),
			Hint: "ask a reviewer to merge or discard a branch, then try again"}, nil
	case errors.As(err, &inUse):
		return nil, &sqlguard.Refusal{Code: "branch_unavailable", Reason: inUse.Error(),
			Hint: "try again when the source database is idle, or ask the operator to change the scope's branch strategy"}, nil
	case err != nil:
		return nil, nil, err
	}
	pool, err := b.Store.OpenBranch(ctx, created)
	if err == nil && b.Prepare != nil {
		err = b.Prepare(ctx, pool)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		// Leave the registered branch to the reviewer (or the reaper):
		// it may already be visible in airlock branches.
		_, _ = b.Store.Discard(context.WithoutCancel(ctx), created.ID, "airlock", "setting up the branch failed")
		return nil, nil, fmt.Errorf("set up branch %s: %w", created.ID, err)
	}
	b.cur = &sessionBranch{branch: created, pool: pool, catalog: NewCatalog(pool, e.Scope, e.Log), checked: time.Now()}
	return b.cur, nil, nil
}

// CloseBranch releases the session's connections to its branch (the
// branch itself stays for the reviewer).
func (e *Env) CloseBranch() {
	b := e.Branching
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		b.cur.pool.Close()
		b.cur = nil
	}
}
