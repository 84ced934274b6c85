package roles

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	dbcatalog "github.com/airlock-dev/airlock/catalog"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/scopes"
)

// Options are the parts of a plan that do not come from the scope file.
type Options struct {
	// GrantTo lists the agent logins: existing login roles made members of
	// the read role only (and of airlock_agents), with the scope's read
	// limits as their defaults. An agent login that is a member of the
	// write role stops being one.
	GrantTo []string
	// Service lists the service logins: members of the read and write
	// roles, of airlock_services, and of the agent logins (whose overlong
	// sessions the service ends).
	Service []string
	// Reviewers lists the reviewer logins: members of the write role
	// (every approved statement runs as it) and of airlock_reviewers.
	Reviewers []string
	// Harden also revokes from PUBLIC, database-wide, what any login could
	// otherwise do past the scope (see Exposures).
	Harden bool
	// NoAirlockSchema leaves airlock's own schema out: Apply on a branch
	// database, where nothing is recorded.
	NoAirlockSchema bool
}

// lockKey is the advisory lock Apply holds, so that two applies on one
// database never interleave their catalog reads and writes.
const lockKey int64 = 0x61697231_726f6c65 // "air1role"

// querier is what Plan reads the catalog through: a pool or a transaction.
type querier = dbcatalog.Querier

// Plan returns the SQL statements that make the database match the scope,
// in the order they must run, computed from the current catalog: nil when
// the database already matches. It changes nothing. It fails when a row
// filter is refused, when a GrantTo role does not exist, when the read and
// write roles have the same name, or when one of them owns relations.
func Plan(ctx context.Context, pool *pgxpool.Pool, scope *scopes.Scope, opt Options) ([]string, error) {
	return plan(ctx, pool, scope, opt)
}

// Apply runs Plan's statements in one transaction, under an advisory lock
// and with search_path = pg_catalog, pg_temp (so that a row filter's
// unqualified functions resolve in pg_catalog, as the guard assumed), and
// returns what it ran. On any error nothing is changed.
func Apply(ctx context.Context, pool *pgxpool.Pool, scope *scopes.Scope, opt Options) ([]string, error) {
	if !opt.NoAirlockSchema {
		// airlock's own schema is made here, by the admin, so that no
		// principal ever needs CREATE on the database, and first: the plan
		// grants each principal its part of it and registers the scope.
		if err := review.EnsureSchema(ctx, pool); err != nil {
			return nil, fmt.Errorf("apply roles: %w", err)
		}
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply roles: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey); err != nil {
		return nil, fmt.Errorf("apply roles: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog, pg_temp"); err != nil {
		return nil, fmt.Errorf("apply roles: %w", err)
	}
	stmts, err := plan(ctx, tx, scope, opt)
	if err != nil {
		return nil, err
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return nil, fmt.Errorf("apply roles: %s: %w", s, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("apply roles: commit: %w", err)
	}
	return stmts, nil
}

func plan(ctx context.Context, q querier, scope *scopes.Scope, opt Options) ([]string, error) {
	readRole, writeRole := scope.ReadRole(), scope.WriteRole()
	if readRole == writeRole {
		return nil, fmt.Errorf("plan roles: read and write role are both %q; they need different privileges", readRole)
	}
	ps, err := principals(opt)
	if err != nil {
		return nil, err
	}
	if err := checkLogins(ctx, q, scope, ps); err != nil {
		return nil, err
	}
	cat, err := loadCatalog(ctx, q, scope)
	if err != nil {
		return nil, err
	}
	access, err := loadAccess(ctx, q, scope)
	if err != nil {
		return nil, err
	}
	problems, err := missingTables(ctx, q, scope, access)
	if err != nil {
		return nil, err
	}
	if problems = append(problems, rowSecurityProblems(scope, access)...); len(problems) > 0 {
		return nil, &ProblemsError{Problems: problems}
	}
	filters, err := validateFilters(ctx, q, scope, cat)
	if err != nil {
		return nil, err
	}

	// Masking comes first: the views must exist (owned by the mask role,
	// which must hold its grants) before the read and write roles are
	// granted them.
	mask, err := loadMaskState(ctx, q, scope)
	if err != nil {
		return nil, err
	}
	out := planMaskSchema(scope, cat, mask)
	roleStmts, err := planRole(ctx, q, scope.MaskRole(), maskGrants(scope, cat), nil, true, mask.owned(scope))
	if err != nil {
		return nil, err
	}
	out = append(out, roleStmts...)
	viewStmts, viewDrops := planMaskViews(scope, cat, mask)
	out = append(out, viewStmts...)

	roleStmts, err = planRole(ctx, q, readRole, readGrants(scope, cat), opt.logins("agent", "service"), true, nil)
	if err != nil {
		return nil, err
	}
	out = append(out, roleStmts...)
	var mayOwn []string
	if scope.Write != nil && scope.Write.OwnTables {
		mayOwn = scope.Write.Tables
		for _, t := range scope.Write.Tables {
			if rule, ok := scope.TableRule(t); ok && rule.RowFilter != "" {
				// An owner bypasses row-level security on its own table.
				return nil, fmt.Errorf("plan roles: %s", scopes.OwnTablesRowFilterConflict(t))
			}
		}
	}
	wg := writeGrants(scope, cat)
	if opt.NoAirlockSchema {
		// A branch has no trash: nothing is committed there.
		for k := range wg {
			if k.Kind == onSchema && k.Schema == "airlock_trash" {
				delete(wg, k)
			}
		}
	}
	roleStmts, err = planRole(ctx, q, writeRole, wg, opt.logins("service", "reviewer"), scope.Write != nil, mayOwn)
	if err != nil {
		return nil, err
	}
	out = append(out, roleStmts...)
	doStmts, err := planDoRunner(ctx, q, scope)
	if err != nil {
		return nil, err
	}
	out = append(out, doStmts...)
	captureStmts, err := planCapture(ctx, q, scope)
	if err != nil {
		return nil, err
	}
	out = append(out, captureStmts...)
	if len(mayOwn) > 0 {
		owners, err := dbcatalog.TableOwners(ctx, q, mayOwn)
		if err != nil {
			return nil, fmt.Errorf("plan roles: %w", err)
		}
		for _, o := range owners {
			if o.Role != writeRole {
				schema, rel := splitQualified(o.Relation)
				out = append(out, fmt.Sprintf("ALTER TABLE %s OWNER TO %s", qualified(schema, rel), ident(writeRole)))
			}
		}
	}
	out = append(out, viewDrops...)
	policyStmts, err := planPolicies(ctx, q, scope, filters, accessPolicies(scope, filters, access))
	if err != nil {
		return nil, err
	}
	out = append(out, policyStmts...)
	principalStmts, err := planPrincipals(ctx, q, scope, opt)
	if err != nil {
		return nil, err
	}
	out = append(out, principalStmts...)
	if opt.Harden {
		hardenStmts, err := planHarden(ctx, q, scope)
		if err != nil {
			return nil, err
		}
		out = append(out, hardenStmts...)
	}
	return out, nil
}

// readableIdent is ident for commands a person will copy: unquoted when
// PostgreSQL reads the bare name as the same identifier.
func readableIdent(name string) string {
	tree, err := pg_query.Parse("CREATE ROLE " + name)
	if err == nil && len(tree.Stmts) == 1 {
		if cr := tree.Stmts[0].Stmt.GetCreateRoleStmt(); cr != nil && cr.Role == name {
			return name
		}
	}
	return ident(name)
}

// ident quotes one identifier.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// qualified quotes "schema.name" given as its two parts.
func qualified(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }

// splitQualified splits a scope key "schema.table".
func splitQualified(key string) (string, string) {
	schema, name, _ := strings.Cut(key, ".")
	return schema, name
}

// queryPairs returns the rows of a two-text-column query.
func queryPairs(ctx context.Context, q querier, sql string, args ...any) ([][2]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("plan roles: %w", err)
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var p [2]string
		if err := rows.Scan(&p[0], &p[1]); err != nil {
			return nil, fmt.Errorf("plan roles: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plan roles: %w", err)
	}
	return out, nil
}
