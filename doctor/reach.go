package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/scopes"
)

// foreignKeysSQL lists the foreign keys from the scope's write tables to
// tables with row-level security enabled, with the referenced table.
const foreignKeysSQL = `
SELECT n.nspname || '.' || t.relname, fn.nspname || '.' || ft.relname, ft.relrowsecurity
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class t ON t.oid = c.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
JOIN pg_catalog.pg_class ft ON ft.oid = c.confrelid JOIN pg_catalog.pg_namespace fn ON fn.oid = ft.relnamespace
WHERE c.contype = 'f' AND n.nspname || '.' || t.relname = ANY($1)
ORDER BY 1, 2`

type foreignKey struct {
	from, to string
	rls      bool
}

func (d *doctor) foreignKeys(ctx context.Context) Check {
	if d.scope.Write == nil {
		return judgeForeignKeys(d.scope, nil)
	}
	rows, err := d.pool.Query(ctx, foreignKeysSQL, d.scope.Write.Tables)
	if err != nil {
		return couldNotCheck(CheckForeignKeys, fmt.Errorf("list foreign keys: %w", err))
	}
	fks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (foreignKey, error) {
		var f foreignKey
		err := r.Scan(&f.from, &f.to, &f.rls)
		return f, err
	})
	if err != nil {
		return couldNotCheck(CheckForeignKeys, fmt.Errorf("list foreign keys: %w", err))
	}
	return judgeForeignKeys(d.scope, fks)
}

// judgeForeignKeys WARNs on a foreign key from a write table to a
// row-filtered table: PostgreSQL checks foreign keys without row-level
// security, so an insert naming a hidden row's key succeeds where one
// naming a missing key fails (docs/architecture.md, Foreign keys).
func judgeForeignKeys(scope *scopes.Scope, fks []foreignKey) Check {
	c := Check{Name: CheckForeignKeys, Status: OK, Detail: "no write table has a foreign key to a row-filtered table"}
	if scope.Write == nil {
		c.Detail = "not needed: the scope has no write section"
		return c
	}
	var hits []string
	for _, f := range fks {
		rule, ok := scope.TableRule(f.to)
		if (ok && rule.RowFilter != "") || f.rls {
			hits = append(hits, f.from+" -> "+f.to)
		}
	}
	if len(hits) == 0 {
		return c
	}
	c.Status = WARN
	c.Detail = "foreign keys from write tables to row-filtered tables: " + strings.Join(hits, ", ") +
		"; PostgreSQL checks a foreign key without row-level security, so an insert or update that names a key tells the agent whether a row it cannot see exists"
	c.Fix = "drop the foreign key, take the table out of write.tables, or accept that key existence is visible across the filter"
	return c
}

// definersSQL lists SECURITY DEFINER functions outside the system schemas
// that any of the given roles may execute (directly or through PUBLIC).
const definersSQL = `
SELECT DISTINCT n.nspname || '.' || p.proname
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = ANY($1)) AS r
WHERE p.prosecdef
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'airlock')
  AND NOT (n.nspname = $2 AND p.proname = $3) -- the scope's own DO runner
  AND pg_catalog.has_function_privilege(r.oid, p.oid, 'EXECUTE')
ORDER BY 1`

func (d *doctor) definers(ctx context.Context) Check {
	names, err := pgxQueryStrings(ctx, d, definersSQL, d.scopeRoleNames(), d.scope.MaskSchema(), scopes.DoRunnerFunction)
	if err != nil {
		return couldNotCheck(CheckDefiner, fmt.Errorf("list SECURITY DEFINER functions: %w", err))
	}
	return judgeDefiners(names)
}

func pgxQueryStrings(ctx context.Context, d *doctor, sql string, args ...any) ([]string, error) {
	rows, err := d.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func judgeDefiners(names []string) Check {
	c := Check{Name: CheckDefiner, Status: OK, Detail: "the scope's roles can execute no SECURITY DEFINER function outside pg_catalog"}
	if len(names) == 0 {
		return c
	}
	shown := names
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(names)-5))
	}
	c.Status = WARN
	c.Detail = fmt.Sprintf("the scope's roles can execute SECURITY DEFINER functions, which run with their owner's rights: %s; only the SQL guard keeps the agent from calling them",
		strings.Join(shown, ", "))
	c.Fix = "REVOKE EXECUTE ON FUNCTION ... FROM PUBLIC and grant it to the roles that need it (airlock scope apply does not touch PUBLIC)"
	return c
}
