package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/catalog"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/roles"
	"github.com/airlock-dev/airlock/scopes"
)

// minVersionNum is the oldest server airlock is built and tested for.
const minVersionNum = 130000

type versionFacts struct {
	num     int    // server_version_num, e.g. 150004
	display string // server_version, e.g. "15.4 (Debian 15.4-1)"
}

func (d *doctor) versionFacts(ctx context.Context) (versionFacts, error) {
	var v versionFacts
	err := d.pool.QueryRow(ctx,
		`SELECT current_setting('server_version_num')::int, current_setting('server_version')`).
		Scan(&v.num, &v.display)
	if err != nil {
		return v, fmt.Errorf("read server version: %w", err)
	}
	return v, nil
}

func judgeVersion(v versionFacts) Check {
	c := Check{Name: CheckServerVersion, Status: OK, Detail: "PostgreSQL " + v.display}
	if v.num < minVersionNum {
		c.Status = WARN
		c.Detail += ": older than 13, which airlock is not tested against"
		c.Fix = "upgrade to PostgreSQL 13 or later"
	}
	return c
}

type loginFacts struct {
	name      string
	super     bool
	bypassRLS bool
}

func (d *doctor) loginFacts(ctx context.Context) (loginFacts, error) {
	var l loginFacts
	err := d.pool.QueryRow(ctx,
		`SELECT rolname, rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = current_user`).
		Scan(&l.name, &l.super, &l.bypassRLS)
	if err != nil {
		return l, fmt.Errorf("read the login role: %w", err)
	}
	return l, nil
}

// display is the login role's name for messages, a placeholder when it
// could not be read.
func (l loginFacts) display() string {
	if l.name == "" {
		return "LOGIN"
	}
	return l.name
}

func judgeLogin(l loginFacts, scopeFile string, allowOwner bool) Check {
	c := Check{Name: CheckLoginRole, Status: OK, Detail: l.name + " is neither a superuser nor BYPASSRLS"}
	var what string
	switch {
	case l.super:
		what = "is a superuser"
	case l.bypassRLS:
		what = "has BYPASSRLS"
	default:
		return c
	}
	c.Status = FAIL
	c.Detail = fmt.Sprintf("%s %s: RLS and grants do not bind it", l.name, what)
	if allowOwner {
		// The scope's roles still bind every transaction through SET
		// LOCAL ROLE; what is lost is the guarantee that the agent's SQL
		// cannot leave them, so this is only for development setups.
		c.Status = WARN
		c.Detail += " (allowed by --allow-owner)"
	}
	c.Fix = "create a dedicated login role: CREATE ROLE airlock_agent LOGIN PASSWORD '…'; " +
		"then airlock scope apply --scope " + scopeFile + " --grant-to airlock_agent, " +
		"and put airlock_agent in the database URL"
	return c
}

// ownedTable is a scope table whose owner's rights the login role has.
type ownedTable struct {
	table, owner string
}

func (d *doctor) tableOwner(ctx context.Context, login string, allowOwner bool) Check {
	owners, err := catalog.OwnerRightsOfCurrentUser(ctx, d.pool, scopeTables(d.scope))
	if err != nil {
		return couldNotCheck(CheckTableOwner, fmt.Errorf("list table owners: %w", err))
	}
	owned := make([]ownedTable, len(owners))
	for i, o := range owners {
		owned[i] = ownedTable{table: o.Relation, owner: o.Role}
	}
	var ddl []string
	if w := d.scope.Write; w != nil && w.OwnTables {
		// The scope's write role owning its write tables is the setup
		// write.own_tables asks for, not a login that owns them.
		owned = slices.DeleteFunc(owned, func(o ownedTable) bool {
			return o.owner == d.scope.WriteRole() && w.WritesTable(o.table)
		})
	} else {
		ddl = ddlKinds(d.scope)
	}
	return judgeOwner(login, owned, allowOwner, ddl)
}

// ddlKinds lists the scope's allowed write kinds that change a table's
// definition: PostgreSQL lets only the table's owner run those.
func ddlKinds(scope *scopes.Scope) []string {
	if scope.Write == nil {
		return nil
	}
	var out []string
	for _, k := range scope.Write.Allow {
		switch k {
		case "insert", "update", "delete", "truncate":
		default:
			out = append(out, k)
		}
	}
	return out
}

// scopeTables lists every table the scope reads or writes, sorted, once.
func scopeTables(scope *scopes.Scope) []string {
	var names []string
	for name := range scope.Read.Tables {
		names = append(names, name)
	}
	if scope.Write != nil {
		names = append(names, scope.Write.Tables...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func judgeOwner(login string, owned []ownedTable, allowOwner bool, ddl []string) Check {
	c := Check{Name: CheckTableOwner, Status: OK, Detail: login + " owns none of the scope's tables"}
	if len(owned) == 0 {
		if len(ddl) > 0 {
			c.Status = WARN
			c.Detail += fmt.Sprintf("; but write.allow has DDL kinds (%s), which PostgreSQL lets only a table's owner run: such migrations will fail with \"must be owner\"",
				strings.Join(ddl, ", "))
			c.Fix = "set write.own_tables in the scope and run airlock scope apply (the write role then owns the write tables), or keep only insert/update/delete/truncate in write.allow"
		}
		return c
	}
	parts := make([]string, len(owned))
	for i, o := range owned {
		parts[i] = fmt.Sprintf("%s (owner %s)", o.table, o.owner)
	}
	c.Status = FAIL
	c.Detail = fmt.Sprintf("%s owns, or is a member of the owner of, %s: an owner can disable RLS and grant itself anything",
		login, strings.Join(parts, ", "))
	c.Fix = "connect as a login role that neither owns these tables nor is a member of their owner " +
		"(or ALTER TABLE ... OWNER TO another role); --allow-owner accepts this setup"
	if allowOwner {
		c.Status = WARN
		c.Fix = "accepted with --allow-owner; a login role that does not own the tables is safer"
	}
	return c
}

// scopeRoleNames lists the roles the scope compiles to: the read role, and
// the write role when the scope writes.
func (d *doctor) scopeRoleNames() []string {
	names := []string{d.scope.ReadRole()}
	if d.scope.Write != nil {
		names = append(names, d.scope.WriteRole())
	}
	return names
}

// missingRoles returns the names among want that no role has.
func (d *doctor) missingRoles(ctx context.Context, want []string) ([]string, error) {
	have, err := catalog.ExistingRoles(ctx, d.pool, want)
	if err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	var missing []string
	for _, name := range want {
		if !slices.Contains(have, name) {
			missing = append(missing, name)
		}
	}
	return missing, nil
}

func (d *doctor) scopeTables(ctx context.Context) Check {
	problems, err := roles.Problems(ctx, d.pool, d.scope)
	if err != nil {
		return couldNotCheck(CheckScopeTables, err)
	}
	if len(problems) == 0 {
		// Row filters are checked against the catalog by Plan.
		_, err = roles.Plan(ctx, d.pool, d.scope, roles.Options{})
		var fe *roles.FilterError
		if errors.As(err, &fe) {
			problems = append(problems, roles.Problem{Path: fe.Path(), Message: fe.Reason,
				Fix: "fix the row_filter in " + d.opt.scopeFile()})
		}
	}
	return judgeScopeTables(len(scopeTables(d.scope)), problems)
}

func judgeScopeTables(n int, problems []roles.Problem) Check {
	c := Check{Name: CheckScopeTables, Status: OK, Detail: fmt.Sprintf("the scope's %d %s exist and fit it", n, plural(n, "table", "tables"))}
	if len(problems) == 0 {
		return c
	}
	details, fixes := make([]string, len(problems)), make([]string, 0, len(problems))
	for i, p := range problems {
		details[i] = p.String()
		if p.Fix != "" && !slices.Contains(fixes, p.Fix) {
			fixes = append(fixes, p.Fix)
		}
	}
	c.Status, c.Detail, c.Fix = FAIL, strings.Join(details, "; "), strings.Join(fixes, "; ")
	return c
}

func (d *doctor) scopeRoles(ctx context.Context) Check {
	names := d.scopeRoleNames()
	missing, err := d.missingRoles(ctx, names)
	if err != nil {
		return couldNotCheck(CheckScopeRoles, err)
	}
	if len(missing) > 0 {
		return judgeScopeRoles(names, missing, 0, d.opt.scopeFile())
	}
	pending, err := roles.Plan(ctx, d.pool, d.scope, roles.Options{})
	var (
		pe *roles.ProblemsError
		fe *roles.FilterError
	)
	if errors.As(err, &pe) || errors.As(err, &fe) {
		return Check{Name: CheckScopeRoles, Status: FAIL,
			Detail: "cannot compare the scope with the database until the scope tables check passes",
			Fix:    "fix what the scope tables check reports, then run airlock scope apply --scope " + d.opt.scopeFile()}
	}
	if err != nil {
		return Check{Name: CheckScopeRoles, Status: FAIL,
			Detail: fmt.Sprintf("cannot compare the scope with the database: %v", err),
			Fix:    "run airlock scope plan --scope " + d.opt.scopeFile() + " and fix what it reports"}
	}
	return judgeScopeRoles(names, nil, len(pending), d.opt.scopeFile())
}

func judgeScopeRoles(names, missing []string, pending int, scopeFile string) Check {
	c := Check{Name: CheckScopeRoles, Status: OK, Detail: strings.Join(names, ", ") + " match the scope"}
	switch {
	case len(missing) > 0:
		c.Status = FAIL
		c.Detail = fmt.Sprintf("%s %s not exist: the database does not enforce the scope",
			strings.Join(missing, ", "), plural(len(missing), "does", "do"))
		c.Fix = "run airlock scope apply --scope " + scopeFile
	case pending > 0:
		c.Status = FAIL
		c.Detail = fmt.Sprintf("drift between the scope file and the database: %d %s pending",
			pending, plural(pending, "statement", "statements"))
		c.Fix = "run airlock scope plan --scope " + scopeFile + " to see them, then airlock scope apply --scope " + scopeFile
	}
	return c
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (d *doctor) prepared(ctx context.Context) Check {
	mode := ""
	if d.scope.Write != nil {
		mode = d.scope.Write.Mode
	}
	if mode != "prepared" {
		return judgePrepared(mode, review.PreparedSlots{})
	}
	slots, err := review.ReadPreparedSlots(ctx, d.pool)
	if err != nil {
		return couldNotCheck(CheckPrepared, err)
	}
	return judgePrepared(mode, slots)
}

// judgePrepared reports the cluster's prepared transaction slots: airlock
// holds a prepared change only while fewer than Max - Headroom are in use
// (docs/architecture.md, Held changes).
func judgePrepared(mode string, slots review.PreparedSlots) Check {
	c := Check{Name: CheckPrepared, Status: OK}
	switch {
	case mode != "prepared":
		c.Detail = "not needed: write mode is not prepared"
		if mode != "" {
			c.Detail = "not needed: write mode is " + mode
		}
	case slots.Max > 0:
		c.Detail = fmt.Sprintf("max_prepared_transactions = %d, %d in use; airlock holds a change only while fewer than %d are (it leaves %d free for others)",
			slots.Max, slots.Used, slots.Max-slots.Headroom, slots.Headroom)
		if !slots.Available() {
			c.Status = WARN
			c.Detail += ": every apply is refused (prepared_slots_full) until reviewers decide pending changes"
			c.Fix = "commit or roll back pending changes (airlock pending), roll back stray prepared transactions (SELECT gid FROM pg_prepared_xacts), or raise max_prepared_transactions"
		}
	default:
		c.Status = FAIL
		c.Detail = "write mode is prepared but max_prepared_transactions = 0: every write would fail"
		c.Fix = "set max_prepared_transactions (e.g. 20) in postgresql.conf and restart PostgreSQL"
	}
	return c
}

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

type timeoutFacts struct {
	statementMS, idleMS int64
}

func (d *doctor) timeouts(ctx context.Context, login string) Check {
	var t timeoutFacts
	// pg_settings.setting is in the parameter's unit, milliseconds for both.
	err := d.pool.QueryRow(ctx, `
SELECT (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'statement_timeout'),
       (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'idle_in_transaction_session_timeout')`).
		Scan(&t.statementMS, &t.idleMS)
	if err != nil {
		return couldNotCheck(CheckTimeouts, fmt.Errorf("read timeouts: %w", err))
	}
	return judgeTimeouts(login, t)
}

func judgeTimeouts(login string, t timeoutFacts) Check {
	c := Check{Name: CheckTimeouts, Status: OK,
		Detail: fmt.Sprintf("statement_timeout = %dms, idle_in_transaction_session_timeout = %dms", t.statementMS, t.idleMS)}
	var unset, fixes []string
	quoted := pgx.Identifier{login}.Sanitize()
	if t.statementMS == 0 {
		unset = append(unset, "statement_timeout")
		fixes = append(fixes, "ALTER ROLE "+quoted+" SET statement_timeout = '60s';")
	}
	if t.idleMS == 0 {
		unset = append(unset, "idle_in_transaction_session_timeout")
		fixes = append(fixes, "ALTER ROLE "+quoted+" SET idle_in_transaction_session_timeout = '60s';")
	}
	if len(unset) > 0 {
		c.Status = WARN
		c.Detail = fmt.Sprintf("%s: no default for %s (airlock sets its own limits per transaction; a default also protects other clients)",
			login, strings.Join(unset, " or "))
		c.Fix = strings.Join(fixes, " ")
	}
	return c
}

type tlsFacts struct {
	remote net.Addr
	ssl    bool
	// unverified is true when the TLS configuration skips the check of the
	// server's certificate (sslmode=require, verify-ca checks no host name).
	unverified bool
}

func (d *doctor) tls(ctx context.Context) Check {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return couldNotCheck(CheckTLS, fmt.Errorf("acquire a connection: %w", err))
	}
	defer conn.Release()
	f := tlsFacts{remote: conn.Conn().PgConn().Conn().RemoteAddr()}
	err = conn.QueryRow(ctx, `SELECT coalesce((SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()), false)`).Scan(&f.ssl)
	if err != nil {
		return couldNotCheck(CheckTLS, fmt.Errorf("read pg_stat_ssl: %w", err))
	}
	f.unverified = f.ssl && insecure(d.pool.Config().ConnConfig.TLSConfig)
	return judgeTLS(f)
}

func insecure(cfg *tls.Config) bool {
	return cfg != nil && cfg.InsecureSkipVerify
}

// isLocal reports whether addr, the address the connection actually went
// to, is a Unix socket or a loopback address: the URL's host "localhost",
// 127.0.0.0/8 and ::1 all end up here.
func isLocal(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.UnixAddr:
		return true
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	}
	return false
}

func judgeTLS(f tlsFacts) Check {
	c := Check{Name: CheckTLS, Status: OK}
	where := "unknown address"
	if f.remote != nil {
		where = f.remote.String()
	}
	switch {
	case isLocal(f.remote):
		c.Detail = "local connection (" + where + "): TLS not needed"
	case !f.ssl:
		c.Status = FAIL
		c.Detail = "the connection to " + where + " is not encrypted: data and the password cross the network in clear text"
		c.Fix = "add sslmode=verify-full to the database URL (and sslrootcert=FILE if the server's CA is not a system one)"
	case f.unverified:
		c.Status = WARN
		c.Detail = "TLS to " + where + " without checking the server's certificate and host name"
		c.Fix = "use sslmode=verify-full in the database URL"
	default:
		c.Detail = "TLS to " + where
	}
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

// branchFacts are what creating a branch database takes.
type branchFacts struct {
	mode, strategy string
	login          string
	super          bool
	createDB       bool
	// copyable: the login may use the current database as a template (it
	// is marked as one, or the login has its owner's rights).
	copyable bool
	database string
}

func (d *doctor) branch(ctx context.Context) Check {
	w := d.scope.Write
	if w == nil || w.Mode != "branch" {
		mode := ""
		if w != nil {
			mode = w.Mode
		}
		return judgeBranch(branchFacts{mode: mode})
	}
	f := branchFacts{mode: w.Mode}
	if w.Branch != nil {
		f.strategy = w.Branch.Strategy
	}
	err := d.pool.QueryRow(ctx, `
SELECT r.rolname, r.rolsuper, r.rolcreatedb, d.datname,
       d.datistemplate OR pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER')
FROM pg_catalog.pg_roles r, pg_catalog.pg_database d
WHERE r.rolname = current_user AND d.datname = current_database()`).
		Scan(&f.login, &f.super, &f.createDB, &f.database, &f.copyable)
	if err != nil {
		return couldNotCheck(CheckBranch, fmt.Errorf("read the login role's database rights: %w", err))
	}
	return judgeBranch(f)
}

func judgeBranch(f branchFacts) Check {
	c := Check{Name: CheckBranch, Status: OK}
	switch {
	case f.mode != "branch":
		c.Detail = "not needed: write mode is not branch"
		if f.mode != "" {
			c.Detail = "not needed: write mode is " + f.mode
		}
	case !f.super && !f.createDB:
		c.Status = FAIL
		c.Detail = f.login + " cannot create databases: every session's first apply would fail to make its branch"
		c.Fix = "ALTER ROLE " + pgx.Identifier{f.login}.Sanitize() + " CREATEDB"
	case f.strategy == "template" && !f.super && !f.copyable:
		c.Status = FAIL
		c.Detail = f.login + " may not copy " + f.database + " as a template (only its owner or a superuser may)"
		// Marking the database IS_TEMPLATE would let every CREATEDB role
		// copy it, data included: not a fix to suggest.
		c.Fix = `set write.branch.strategy to "schema" (copies definitions and sample rows), or connect as a role with the database owner's rights`
	default:
		c.Detail = f.login + " can create branch databases (" + f.strategy + " strategy)"
	}
	return c
}
