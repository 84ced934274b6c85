package tools

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/sqlguard"
)

// shadowingOperatorsSQL lists operators of the given names defined in the
// given schemas: the ones a migration's IN list, BETWEEN, IS DISTINCT FROM,
// NULLIF, CASE x WHEN or JOIN USING could pick over pg_catalog's.
const shadowingOperatorsSQL = `
SELECT DISTINCT n.nspname || '.' || o.oprname
FROM pg_catalog.pg_operator o
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) o.oprnamespace
WHERE n.nspname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.name[])
  AND o.oprname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.name[])
ORDER BY 1`

// checkOperators refuses a migration that uses an operator through syntax
// that cannot qualify it (MigrationStatement.SearchPathOperators) while a
// schema on the write transaction's search path, other than pg_catalog,
// defines an operator of that name: PostgreSQL could resolve the
// comparison to it, running code the guard never checked
// (docs/architecture.md, Write statements: the read rules everywhere).
func (e *Env) checkOperators(ctx context.Context, pool *pgxpool.Pool, plan *sqlguard.MigrationPlan) (*sqlguard.Refusal, error) {
	var names []string
	for _, st := range plan.Statements {
		for _, op := range st.SearchPathOperators {
			if !slices.Contains(names, op) {
				names = append(names, op)
			}
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	var schemas []string
	for _, s := range e.Scope.Read.SearchPath {
		if s != "pg_catalog" && s != "pg_temp" {
			schemas = append(schemas, s)
		}
	}
	rows, err := pool.Query(ctx, shadowingOperatorsSQL, schemas, names)
	if err != nil {
		return nil, fmt.Errorf("look up operators: %w", err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("look up operators: %w", err)
		}
		found = append(found, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up operators: %w", err)
	}
	if len(found) == 0 {
		return nil, nil
	}
	return &sqlguard.Refusal{
		Code: "operator_not_allowed",
		Reason: fmt.Sprintf("the migration compares with IN, BETWEEN, IS DISTINCT FROM, NULLIF, CASE x WHEN or JOIN USING, which look up %s through the search path, and %s defines its own",
			strings.Join(names, ", "), strings.Join(found, ", ")),
		Hint: "write the comparison with an explicit operator, e.g. x OPERATOR(pg_catalog.=) ANY (ARRAY[1, 2]) or x OPERATOR(pg_catalog.>=) a AND x OPERATOR(pg_catalog.<=) b",
	}, nil
}
