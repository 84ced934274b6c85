package roles

import (
	"context"
	"fmt"
	"strings"

	"github.com/airlock-dev/airlock/scopes"
)

// PostgreSQL grants some rights to PUBLIC, so to every login an agent
// could hold: executing large-object, advisory-lock and notification
// functions and any SECURITY DEFINER function nobody locked down, creating
// temporary tables, and whatever an admin granted PUBLIC on tables and
// schemas. Revoking them is database-wide (other applications' roles lose
// them too), so `scope apply` does it only with --harden; `airlock doctor`
// FAILs on each one an agent login can reach, with this fix
// (docs/architecture.md, What the agent login can do with plain SQL).

// Exposure is one thing a login can do past the scope because PUBLIC (or
// a grant to the login) allows it.
type Exposure struct {
	// What says what it is, e.g. "EXECUTE on pg_catalog.lo_create(oid)".
	What string
	// Fix is the statement that closes it for everyone.
	Fix string
}

// exposuresSQL lists, for role $1, what it can do past a scope: one row per
// exposure, its description and the REVOKE that closes it. $2 lists the
// functions ("schema.name") the scope has reviewed and allows.
const exposuresSQL = `
WITH fn AS (
	SELECT p.oid, n.nspname, p.proname, p.prosecdef, p.oid::regprocedure::text AS sig
	FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
	WHERE pg_catalog.has_function_privilege($1, p.oid, 'EXECUTE')
)
SELECT 'EXECUTE on ' || sig || CASE WHEN prosecdef THEN ' (SECURITY DEFINER: runs with its owner''s rights)' ELSE '' END,
	'REVOKE EXECUTE ON FUNCTION ' || sig || ' FROM PUBLIC'
FROM fn
WHERE (nspname = 'pg_catalog' AND (proname LIKE 'lo\_%' OR proname IN ('loread', 'lowrite')
		OR proname LIKE 'pg\_%advisory%' OR proname = 'pg_notify'))
   OR (prosecdef AND nspname NOT IN ('pg_catalog', 'information_schema', 'airlock')
		AND NOT (nspname || '.' || proname = ANY($2)))
UNION ALL
SELECT 'TEMPORARY on database ' || pg_catalog.quote_ident(current_database()) || ' (temporary tables, which fill the disk until the session ends)',
	'REVOKE TEMPORARY ON DATABASE ' || pg_catalog.quote_ident(current_database()) || ' FROM PUBLIC'
WHERE pg_catalog.has_database_privilege($1, current_database(), 'TEMPORARY')
UNION ALL
SELECT 'CREATE on schema ' || pg_catalog.quote_ident(n.nspname), 'REVOKE CREATE ON SCHEMA ' || pg_catalog.quote_ident(n.nspname) || ' FROM PUBLIC'
FROM pg_catalog.pg_namespace n
WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  AND pg_catalog.has_schema_privilege($1, n.oid, 'CREATE')
UNION ALL
SELECT priv || ' on ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
	'REVOKE ' || priv || ' ON ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) || ' FROM PUBLIC'
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
	unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS priv
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'airlock')
  AND n.nspname NOT LIKE 'pg\_%'
  AND pg_catalog.has_table_privilege($1, c.oid, priv)
ORDER BY 1`

// Exposures lists what login can do past the scope's roles through
// PUBLIC's default rights or grants an admin made: each is something the
// agent could do with plain SQL that query_readonly never would.
func Exposures(ctx context.Context, q querier, scope *scopes.Scope, login string) ([]Exposure, error) {
	rows, err := q.Query(ctx, exposuresSQL, login, allowedFunctions(scope))
	if err != nil {
		return nil, fmt.Errorf("list what %s can reach: %w", login, err)
	}
	defer rows.Close()
	var out []Exposure
	for rows.Next() {
		var e Exposure
		if err := rows.Scan(&e.What, &e.Fix); err != nil {
			return nil, fmt.Errorf("list what %s can reach: %w", login, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func allowedFunctions(scope *scopes.Scope) []string {
	if scope.Read.Functions == nil {
		return []string{}
	}
	return scope.Read.Functions
}

// planHarden returns the REVOKEs from PUBLIC that close what an agent
// login could reach past the scope, computed as for a role with no rights
// of its own (what every login has), and the grants that keep airlock's
// own principals working: reviewers and the service lock changes with
// advisory locks.
func planHarden(ctx context.Context, q querier, scope *scopes.Scope) ([]string, error) {
	exposed, err := Exposures(ctx, q, scope, "public")
	if err != nil {
		return nil, err
	}
	var out []string
	advisory := false
	for _, e := range exposed {
		out = append(out, e.Fix)
		if containsAdvisory(e.What) {
			advisory = true
		}
	}
	if advisory {
		fns, err := queryStrings(ctx, q, `SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
			WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname LIKE 'pg\_%advisory%'
			AND $1::int = 1 ORDER BY 1`, 1)
		if err != nil {
			return nil, err
		}
		// The admin who runs scope apply takes one too, unless a superuser
		// (who needs no grant).
		grantees := ident(ReviewersGroup) + ", " + ident(ServicesGroup)
		var admin string
		if err := queryOne(ctx, q, "SELECT CASE WHEN rolsuper THEN '' ELSE rolname END FROM pg_catalog.pg_roles WHERE rolname = current_user AND $1::int = 1", 1, &admin); err != nil {
			return nil, err
		}
		if admin != "" {
			grantees += ", " + ident(admin)
		}
		for _, f := range fns {
			out = append(out, fmt.Sprintf("GRANT EXECUTE ON FUNCTION %s TO %s", f, grantees))
		}
	}
	return out, nil
}

func containsAdvisory(what string) bool { return strings.Contains(what, "advisory") }
