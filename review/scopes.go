package review

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ScopeNotAppliedError says that a change's scope has no entry in
// airlock.scopes: nobody ran airlock scope apply for it in this database,
// so airlock does not know the write role its changes must run as.
type ScopeNotAppliedError struct{ Scope string }

func (e *ScopeNotAppliedError) Error() string {
	return fmt.Sprintf("scope %q was never applied in this database (airlock scope apply --scope FILE, as an admin): airlock does not know the write role its changes run as, and runs none of them with the reviewer's own rights", e.Scope)
}

// writeRole returns the role a change of scope runs as on commit or merge:
// the write role airlock.scopes records for it, which only the admin's
// airlock scope apply writes. Never the stored change's own options (the
// service wrote those), never the reviewer's login (docs/architecture.md,
// Approvals).
func writeRole(ctx context.Context, q querier, scope string) (string, error) {
	var role *string
	err := q.QueryRow(ctx, "SELECT write_role FROM airlock.scopes WHERE name = $1", scope).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", &ScopeNotAppliedError{Scope: scope}
	}
	if err != nil {
		return "", fmt.Errorf("read the write role of scope %s: %w", scope, err)
	}
	if role == nil || *role == "" {
		return "", fmt.Errorf("scope %q has no write section as applied: none of its changes can be committed; apply the scope again if it gained one", scope)
	}
	return *role, nil
}
