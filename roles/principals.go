package roles

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	dbcatalog "github.com/airlock-dev/airlock/catalog"
	"github.com/airlock-dev/airlock/scopes"
)

// The principal groups (docs/architecture.md, Principals): cluster-wide
// NOLOGIN roles whose members are airlock's logins. They hold what each
// kind of login needs of airlock's own schema, and the decision guard on
// airlock.changes refuses decisions by members of the first two.
const (
	AgentsGroup    = "airlock_agents"
	ServicesGroup  = "airlock_services"
	ReviewersGroup = "airlock_reviewers"
)

// AgentConnectionLimit is the CONNECTION LIMIT of an agent login: enough
// for a few agent-side airlocks (8 connections each at most), not enough to
// take the server's connection slots from everyone else.
const AgentConnectionLimit = 24

// principal is one login named on the command line and what it is.
type principal struct {
	login, kind string // kind: "agent", "service" or "reviewer"
}

// principals lists the logins of opt, and refuses a login named twice as
// different kinds: a login holds one principal's rights, never two.
func principals(opt Options) ([]principal, error) {
	var out []principal
	seen := map[string]string{}
	for _, k := range []struct {
		kind   string
		logins []string
	}{{"agent", opt.GrantTo}, {"service", opt.Service}, {"reviewer", opt.Reviewers}} {
		for _, l := range k.logins {
			if prev, ok := seen[l]; ok && prev != k.kind {
				return nil, fmt.Errorf("plan roles: %q is named as both the %s login and the %s login; each principal needs a login of its own (docs: Principals)", l, prev, k.kind)
			}
			if _, ok := seen[l]; !ok {
				seen[l] = k.kind
				out = append(out, principal{l, k.kind})
			}
		}
	}
	return out, nil
}

func (o Options) logins(kinds ...string) []string {
	var out []string
	for _, k := range kinds {
		switch k {
		case "agent":
			out = append(out, o.GrantTo...)
		case "service":
			out = append(out, o.Service...)
		case "reviewer":
			out = append(out, o.Reviewers...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkLogins makes sure every named login exists and is not one of the
// scope's own roles.
func checkLogins(ctx context.Context, q querier, scope *scopes.Scope, ps []principal) error {
	for _, p := range ps {
		if p.login == scope.ReadRole() || p.login == scope.WriteRole() || p.login == scope.MaskRole() ||
			slices.Contains([]string{AgentsGroup, ServicesGroup, ReviewersGroup}, p.login) {
			return fmt.Errorf("plan roles: %q is one of airlock's own roles, not a login", p.login)
		}
		if _, err := loadRole(ctx, q, p.login); err != nil {
			var missing errNoRole
			if errors.As(err, &missing) {
				var db string
				if err := queryOne(ctx, q, "SELECT current_database() WHERE $1::int = 1", 1, &db); err != nil {
					return err
				}
				return fmt.Errorf("plan roles: login role %q does not exist; create it first, as an admin: CREATE ROLE %s LOGIN PASSWORD '…'; GRANT CONNECT ON DATABASE %s TO %s",
					p.login, readableIdent(p.login), readableIdent(db), readableIdent(p.login))
			}
			return err
		}
	}
	return nil
}

// airlockObjects are what each principal group needs of airlock's schema:
// agents append to the audit log; the service also records, reads and
// expires changes and branches; reviewers decide on them. What a row of
// airlock.changes may become, and who may decide, is the decision guard's
// business (review.Schema), not the grants'.
func airlockGrants(group string) grantSet {
	g := grantSet{{Kind: onSchema, Schema: "airlock", Priv: "USAGE"}: true}
	table := func(rel string, privs ...string) {
		for _, p := range privs {
			g[grant{Kind: onTable, Schema: "airlock", Rel: rel, Priv: p}] = true
		}
	}
	switch group {
	case AgentsGroup:
		table("audit_log", "INSERT")
	case ServicesGroup:
		table("audit_log", "INSERT")
		table("changes", "SELECT", "INSERT", "UPDATE")
		table("branches", "SELECT", "INSERT", "UPDATE")
		table("approvals", "SELECT")
		// A prepared apply records its undo capture in the prepared
		// transaction itself (the rows come from the capture trigger).
		table("undo_captures", "INSERT")
	case ReviewersGroup:
		table("audit_log", "SELECT", "INSERT")
		table("changes", "SELECT", "UPDATE")
		table("branches", "SELECT", "UPDATE")
		table("scopes", "SELECT")
		table("approvals", "SELECT", "INSERT")
		// Reverts: reviewers read the captures, record the reverts they
		// make and the captures of the changes they commit.
		table("changes", "INSERT")
		table("undo_rows", "SELECT")
		table("undo_captures", "SELECT", "INSERT")
	}
	return g
}

// airlockSchemaReady reports whether airlock's schema is there to be
// granted on: `scope apply` creates it before it plans, `scope plan` on a
// fresh database shows the grants only once it exists.
func airlockSchemaReady(ctx context.Context, q querier) (bool, error) {
	var ok bool
	// Looked up only where the login may look: a name in a schema it has
	// no USAGE on is a permission error, which would abort Apply's
	// transaction and fail doctor's plan for an unprivileged login.
	err := queryOne(ctx, q, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n
		WHERE n.nspname = 'airlock' AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')) AND $1::int = 1`, 1, &ok)
	if err != nil || !ok {
		return false, err
	}
	err = queryOne(ctx, q, `SELECT pg_catalog.to_regclass('airlock.scopes') IS NOT NULL
		AND pg_catalog.to_regclass('airlock.changes') IS NOT NULL WHERE $1::int = 1`, 1, &ok)
	return ok, err
}

// planPrincipals returns what gives the named logins their principal's
// rights, and nothing more: the groups and their grants on airlock's
// schema, the scope roles' memberships, the agent logins' limits, and the
// scope's entry in airlock.scopes.
func planPrincipals(ctx context.Context, q querier, scope *scopes.Scope, opt Options) ([]string, error) {
	ready, err := airlockSchemaReady(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range []struct {
		name    string
		members []string
	}{{AgentsGroup, opt.logins("agent")}, {ServicesGroup, opt.logins("service")}, {ReviewersGroup, opt.logins("reviewer")}} {
		want := grantSet{}
		if ready {
			want = airlockGrants(g.name)
		}
		stmts, err := planGroup(ctx, q, g.name, want, g.members, ready)
		if err != nil {
			return nil, err
		}
		out = append(out, stmts...)
	}
	// An agent login must not reach the write role: a membership granted
	// by an older airlock (which made one login do everything) goes.
	if scope.Write != nil {
		for _, login := range opt.logins("agent") {
			member, err := isDirectMember(ctx, q, login, scope.WriteRole())
			if err != nil {
				return nil, err
			}
			if member {
				out = append(out, fmt.Sprintf("REVOKE %s FROM %s", ident(scope.WriteRole()), ident(login)))
			}
		}
	}
	for _, login := range opt.logins("agent", "service", "reviewer") {
		stmts, err := revokeDirectAirlock(ctx, q, login)
		if err != nil {
			return nil, err
		}
		out = append(out, stmts...)
	}
	// The service ends agent-login sessions that outlive the scope's limits
	// and rolls back what they leave prepared: PostgreSQL lets only a
	// member of a role signal its backends or finish its transactions.
	for _, svc := range opt.logins("service") {
		for _, agent := range opt.logins("agent") {
			member, err := isDirectMember(ctx, q, svc, agent)
			if err != nil {
				return nil, err
			}
			if !member {
				out = append(out, fmt.Sprintf("GRANT %s TO %s", ident(agent), ident(svc)))
			}
		}
	}
	for _, agent := range opt.logins("agent") {
		stmts, err := planAgentLimits(ctx, q, scope, agent)
		if err != nil {
			return nil, err
		}
		out = append(out, stmts...)
	}
	if ready && scope.Source() != nil {
		stmts, err := planRegistry(ctx, q, scope)
		if err != nil {
			return nil, err
		}
		out = append(out, stmts...)
	}
	return out, nil
}

// planGroup is planRole for a principal group: created when missing, its
// privileges exactly want once airlock's schema exists (before, it keeps
// what it has), its members only ever added.
func planGroup(ctx context.Context, q querier, group string, want grantSet, members []string, exact bool) ([]string, error) {
	if _, err := loadRole(ctx, q, group); err != nil {
		var missing errNoRole
		if !errors.As(err, &missing) {
			return nil, err
		}
		// The groups are the cluster's, not this database's: another
		// database's scope apply may be making the same one right now,
		// which its unique index makes us wait for and then refuse.
		out := []string{fmt.Sprintf(`DO $group$ BEGIN CREATE ROLE %s NOLOGIN NOINHERIT; `+
			`EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $group$`, ident(group))}
		for _, m := range members {
			out = append(out, fmt.Sprintf("GRANT %s TO %s", ident(group), ident(m)))
		}
		return append(out, grantStatements("GRANT", "TO", ident(group), want)...), nil
	}
	if exact {
		return planRole(ctx, q, group, want, members, true, nil)
	}
	var out []string
	have, err := dbcatalog.Members(ctx, q, group)
	if err != nil {
		return nil, fmt.Errorf("plan roles: %w", err)
	}
	for _, m := range members {
		if !slices.Contains(have, m) {
			out = append(out, fmt.Sprintf("GRANT %s TO %s", ident(group), ident(m)))
		}
	}
	return out, nil
}

func isDirectMember(ctx context.Context, q querier, member, role string) (bool, error) {
	have, err := dbcatalog.Members(ctx, q, role)
	if err != nil {
		return false, fmt.Errorf("plan roles: %w", err)
	}
	return slices.Contains(have, member), nil
}

// revokeDirectAirlock revokes what a login holds directly on airlock's
// schema and tables: its principal's rights come through its group, and an
// older airlock granted logins UPDATE on airlock.changes, which would let
// an agent approve its own change.
func revokeDirectAirlock(ctx context.Context, q querier, login string) ([]string, error) {
	held, err := loadHeld(ctx, q, login)
	if err != nil {
		return nil, err
	}
	extra := grantSet{}
	for g := range held {
		if g.Schema == "airlock" {
			extra[g] = true
		}
	}
	return grantStatements("REVOKE", "FROM", ident(login), extra), nil
}

// agentSettings are the per-database defaults an agent login's sessions
// start with: the scope's read limits. A session can change them
// (PostgreSQL has no way to forbid SET), which is why the service's
// watchdog ends sessions that run or idle past them. (Read-only
// transactions by default would add nothing a session could not undo, and
// the agent login holds no write privilege to begin with.)
func agentSettings(scope *scopes.Scope) []string {
	r := scope.Read
	return []string{
		fmt.Sprintf("idle_in_transaction_session_timeout=%dms", r.StatementTimeoutMS+5000),
		fmt.Sprintf("lock_timeout=%dms", r.LockTimeoutMS),
		fmt.Sprintf("statement_timeout=%dms", r.StatementTimeoutMS),
	}
}

const roleSettingsSQL = `
SELECT coalesce((SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s
	WHERE s.setrole = r.oid AND s.setdatabase = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())), '{}'),
	r.rolconnlimit
FROM pg_catalog.pg_roles r WHERE r.rolname = $1`

func planAgentLimits(ctx context.Context, q querier, scope *scopes.Scope, login string) ([]string, error) {
	rows, err := q.Query(ctx, roleSettingsSQL, login)
	if err != nil {
		return nil, fmt.Errorf("plan roles: settings of %s: %w", login, err)
	}
	defer rows.Close()
	var (
		have  []string
		limit int
	)
	if rows.Next() {
		if err := rows.Scan(&have, &limit); err != nil {
			return nil, fmt.Errorf("plan roles: settings of %s: %w", login, err)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plan roles: settings of %s: %w", login, err)
	}
	var out []string
	for _, s := range agentSettings(scope) {
		if !slices.Contains(have, s) {
			name, value, _ := strings.Cut(s, "=")
			out = append(out, fmt.Sprintf("ALTER ROLE %s IN DATABASE %s SET %s = '%s'", ident(login), "CURRENT_DATABASE_PLACEHOLDER", name, value))
		}
	}
	if limit < 0 || limit > AgentConnectionLimit {
		out = append(out, fmt.Sprintf("ALTER ROLE %s CONNECTION LIMIT %d", ident(login), AgentConnectionLimit))
	}
	if len(out) == 0 {
		return nil, nil
	}
	var db string
	if err := queryOne(ctx, q, "SELECT current_database() WHERE $1::int = 1", 1, &db); err != nil {
		return nil, err
	}
	for i := range out {
		out[i] = strings.Replace(out[i], "CURRENT_DATABASE_PLACEHOLDER", ident(db), 1)
	}
	return out, nil
}

// planRegistry records the scope as applied (airlock.scopes), where a
// reviewer's commit reads the write role it runs a change as and the rules
// it checks the change against.
func planRegistry(ctx context.Context, q querier, scope *scopes.Scope) ([]string, error) {
	// Called only once airlockSchemaReady found the schema usable.
	readable, err := dbcatalog.MaySelect(ctx, q, "airlock.scopes")
	if err != nil {
		return nil, fmt.Errorf("plan roles: %w", err)
	}
	if !readable {
		// doctor, as a principal that may not read the registry: only the
		// admin's plan writes it.
		return nil, nil
	}
	rows, err := q.Query(ctx, `SELECT version, read_role, coalesce(write_role, '') FROM airlock.scopes WHERE name = $1`, scope.Name)
	if err != nil {
		return nil, fmt.Errorf("plan roles: read airlock.scopes: %w", err)
	}
	defer rows.Close()
	var version, read, write string
	if rows.Next() {
		if err := rows.Scan(&version, &read, &write); err != nil {
			return nil, fmt.Errorf("plan roles: read airlock.scopes: %w", err)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plan roles: read airlock.scopes: %w", err)
	}
	wantWrite := ""
	if scope.Write != nil {
		wantWrite = scope.WriteRole()
	}
	if version == scope.Version() && read == scope.ReadRole() && write == wantWrite {
		return nil, nil
	}
	writeLit := "NULL"
	if wantWrite != "" {
		writeLit = literal(wantWrite)
	}
	return []string{fmt.Sprintf(`INSERT INTO airlock.scopes (name, document, version, read_role, write_role) VALUES (%s, %s::jsonb, %s, %s, %s)
	ON CONFLICT (name) DO UPDATE SET document = EXCLUDED.document, version = EXCLUDED.version, read_role = EXCLUDED.read_role,
		write_role = EXCLUDED.write_role, applied_at = now(), applied_by = session_user`,
		literal(scope.Name), dollarQuoted(string(scope.Source())), literal(scope.Version()), literal(scope.ReadRole()), writeLit)}, nil
}

// literal quotes s as an SQL string literal. Only names and versions go
// through it; a scope document goes through dollarQuoted.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// dollarQuoted quotes s with a dollar-quote tag it does not contain, so
// that its backslashes and quotes need no escaping under any
// standard_conforming_strings.
func dollarQuoted(s string) string {
	tag := "$scope$"
	for strings.Contains(s, tag) {
		tag = "$x" + tag[1:]
	}
	return tag + s + tag
}
