package tools

import (
	"context"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/roles"
	"github.com/airlock-dev/airlock/scopes"
)

// Branching is an agent session's side of write.mode "branch": its
// branch database (review.SessionBranch, which the branch holder makes
// on the session's first apply) and the catalog its tools read there.
type Branching struct {
	store   *review.Store
	scope   *scopes.Scope
	log     *slog.Logger
	session *review.SessionBranch

	mu        sync.Mutex
	catalog   *Catalog
	catalogOf *review.LiveBranch // the branch catalog reads
}

var _ review.BranchCatalogs = (*Branching)(nil)

// NewBranching returns the branching of one agent session over store.
// The scope's roles get their grants on each branch it makes, and after
// every change that defines tables there.
func NewBranching(store *review.Store, scope *scopes.Scope, log *slog.Logger) *Branching {
	return &Branching{store: store, scope: scope, log: log,
		session: review.NewSessionBranch(store, scopeGrants{scope})}
}

// forSession returns the branching of another agent session of the same
// server: a session gets its own branch.
func (b *Branching) forSession() *Branching { return NewBranching(b.store, b.scope, b.log) }

// scopeGrants provisions a branch database with what roles.Apply grants
// the scope's roles, airlock's own schema aside (nothing is recorded on a
// branch). Tools is the lowest layer that sees both review, which makes
// branches, and roles, which compiles a scope's grants (docs/architecture.md,
// Held changes).
type scopeGrants struct{ scope *scopes.Scope }

func (g scopeGrants) ProvisionBranch(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := roles.Apply(ctx, pool, g.scope, roles.Options{NoAirlockSchema: true})
	return err
}

// catalogFor returns the catalog of branch lb, made on first use.
func (b *Branching) catalogFor(lb *review.LiveBranch) *Catalog {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.catalogOf != lb {
		b.catalog, b.catalogOf = NewCatalog(lb.Pool, b.scope, b.log), lb
	}
	return b.catalog
}

// ReloadCatalog reads branch lb's catalog again: a change committed there
// may have made or altered a table.
func (b *Branching) ReloadCatalog(ctx context.Context, lb *review.LiveBranch) error {
	_, err := b.catalogFor(lb).Reload(ctx)
	return err
}

// Target returns the pool and catalog the session's tools work on: the
// session's branch once it has one (and it is still live), else the
// source database.
func (e *Env) Target(ctx context.Context) (*pgxpool.Pool, *Catalog) {
	e = e.For(ctx)
	if b := e.Branching; b != nil {
		if lb := b.session.Live(ctx); lb != nil {
			return lb.Pool, b.catalogFor(lb)
		}
	}
	return e.Pool, e.Catalog
}

// holder returns the holder of the scope's write mode for the session
// ctx belongs to.
func (e *Env) holder(ctx context.Context, store *review.Store) review.Holder {
	s := e.For(ctx)
	cfg := review.HoldConfig{Store: store, Pool: s.Pool, Scope: s.Scope, Log: s.Log}
	if b := s.Branching; b != nil {
		cfg.Branch, cfg.Catalogs = b.session, b
	}
	return review.NewHolder(cfg)
}

// CloseBranch releases the session's connections to its branch (the
// branch itself stays for the reviewer).
func (e *Env) CloseBranch() {
	if b := e.Branching; b != nil {
		b.session.Close()
	}
}
