// Package roles compiles a scope to PostgreSQL roles: layer 5 of airlock's
// defense. Each scope gets a NOLOGIN read role and, when it has a write
// section, a NOLOGIN write role, holding exactly the scope's privileges, and
// row-level-security policies for its row filters. airlock runs every
// transaction under SET LOCAL ROLE to one of them, so that if the SQL guard
// ever misses a case, PostgreSQL's own privilege checks still stop the agent.
//
// Plan compares the scope with the catalog and returns the statements that
// make the database match it; Apply runs them. Running either twice in a
// row yields nothing the second time, and after a scope edit they converge:
// columns and tables that left the scope lose their grants, and removed row
// filters lose their policies.
//
// # What the read role gets
//
// The read role is NOLOGIN, NOINHERIT, NOSUPERUSER, NOCREATEDB,
// NOCREATEROLE, NOREPLICATION, NOBYPASSRLS and a member of no role. It has
// USAGE on the schemas of the scope's read tables and column-level SELECT on
// each read table's allowed columns: the columns listed in "columns", or
// every column when the rule lists none. Column-level grants (rather than a
// table-level SELECT) mean a column added later is not readable until the
// scope is applied again: the database fails closed.
//
// Masked columns are granted SELECT, because airlock selects them to hash
// them before the agent sees them. The role can therefore read a masked
// column in clear: it is the SQL guard that keeps masked columns out of
// predicates and expressions. Layer 5 protects denied columns and
// out-of-scope tables, not masked columns.
//
// # What the write role gets
//
// The write role has the same attributes, USAGE on the schemas of the read
// and write tables, column-level SELECT on the read tables' allowed columns
// (for INSERT ... SELECT), and on each write table that exists: INSERT for
// "insert", UPDATE and SELECT for "update", DELETE and SELECT for "delete",
// TRUNCATE for "truncate" (SELECT is column-level, and limited to the
// allowed columns when the write table is also a restricted read table),
// plus USAGE on the sequences the write tables own (serial and identity
// columns).
//
// DDL kinds (create_table, add_column, create_index, ...) are not compiled:
// PostgreSQL ties DDL to ownership, and making the write role a member of
// the tables' owner would hand it far more than the scope. DDL stays
// enforced by the SQL guard and the human commit only; the write role can
// run DML and nothing else. A write table that does not exist yet (one a
// migration will create) gets no grants until the scope is applied again.
//
// # What is revoked, and what is not
//
// Anything either role holds on any relation, column or schema of the
// database beyond the above is revoked: other privileges on the same tables
// (REFERENCES, TRIGGER, table-level SELECT, ...), other tables, other
// schemas, CREATE on schemas. Roles the scope's roles are members of are
// revoked.
//
// Not touched: grants to PUBLIC (revoking them would change what every
// other role sees; a table readable by PUBLIC is readable by the scope's
// roles too, so keep sensitive tables out of PUBLIC), EXECUTE on functions
// (PUBLIC has it on pg_catalog functions by default, and revoking it
// cluster-wide breaks ordinary clients; the guard's function rule covers
// those, and the dangerous file functions such as pg_read_file are
// superuser or pg_read_server_files only anyway), default privileges, types,
// languages, large objects, and database-level CONNECT and TEMPORARY.
// Memberships granted through Options.GrantTo are only ever added; revoke
// one by hand (REVOKE role FROM login). A role that owns relations is
// refused, since an owner has every privilege on what it owns. When the
// scope loses its write section the write role keeps existing but loses
// every privilege and policy.
//
// # Row filters
//
// A table rule's row_filter is parsed as the WHERE clause of
// SELECT 1 FROM that table and must pass the read guard with only that
// table in scope (so no other table, no subquery, no denied function) and
// with volatile functions refused; then it becomes a RESTRICTIVE policy
// airlock_<scope>_filter FOR SELECT TO the read role (and
// airlock_<scope>_write_filter FOR ALL TO the write role, which also checks
// written rows). Restrictive policies are AND-ed with the permissive ones,
// so the scope's roles see only matching rows while other roles are
// unaffected: when a table does not have row-level security yet, Apply
// enables it and adds a PERMISSIVE policy airlock_passthrough FOR ALL TO
// PUBLIC USING (true) WITH CHECK (true), which leaves every other role's
// view unchanged. When row-level security is already enabled (someone
// else's policies), no passthrough policy is added: the scope's roles then
// see the rows the existing permissive policies give them AND the filter.
// When the last airlock filter leaves a table that has airlock_passthrough
// and no other policy, the passthrough goes and row-level security is
// disabled again. The table owner, superusers and BYPASSRLS roles bypass
// every policy, as always in PostgreSQL. The policy's expression is
// deparsed from the validated parse tree, never pasted from the file; its
// source text is kept as the policy's comment, which is how Plan notices a
// changed filter.
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
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

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
