package tools

import (
	"context"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// CheckStored runs the write checks of migrate_dry_run on sql under scope,
// against the database behind pool: what a reviewer's commit does with a
// stored change before running it (docs/architecture.md, Approvals). A
// refusal is returned as the error, a *sqlguard.Refusal. With catalog
// false the checks that look objects up in the database are skipped (see
// review.Checker).
func CheckStored(ctx context.Context, pool *pgxpool.Pool, scope *scopes.Scope, sql string, catalog bool) (*sqlguard.MigrationPlan, error) {
	if scope.Write == nil {
		return nil, &sqlguard.Refusal{Code: "no_write_section", Reason: "the scope has no write section", Hint: "apply a scope that allows writes"}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	env := &Env{Pool: pool, Scope: scope, Catalog: NewCatalog(pool, scope, log), Log: log, noCatalogChecks: !catalog}
	plan, refusal, err := env.checkMigration(ctx, sql)
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, refusal
	}
	return plan, nil
}
