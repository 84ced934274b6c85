package doctor

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/scopes"
)

// Status is the outcome of one check.
type Status string

// The outcomes, from good to bad. Only FAIL makes Failed true.
const (
	OK   Status = "OK"
	WARN Status = "WARN"
	FAIL Status = "FAIL"
)

// Names of the checks, in the order Run returns them. They are stable so
// that callers and tests can pick a check out of the list.
const (
	// CheckServerVersion is OK for PostgreSQL 13 or later, WARN below.
	CheckServerVersion = "server version"
	// CheckLoginRole FAILs when the login role is a superuser or has
	// BYPASSRLS: neither grants nor row-level security bind it.
	CheckLoginRole = "login role"
	// CheckPrincipal says which principal the login is (agent, service,
	// reviewer, or a one-process development login) and FAILs when it is a
	// superuser, none of them, two of them, or used as another: above all
	// when serve over stdio, where the agent can read it, runs with a
	// login that reaches the write role (docs/architecture.md, Principals).
	CheckPrincipal = "principal"
	// CheckTableOwner FAILs (WARN with Options.AllowOwner) when the login
	// role owns one of the scope's read or write tables or is a member of
	// its owner: an owner can disable row-level security and grant itself
	// any privilege.
	CheckTableOwner = "table owner"
	// CheckScopeTables FAILs when a table the scope names does not exist
	// (with the nearest name that does, and a hint when none of them
	// exist: the URL points at the wrong database), when a row_filter
	// does not fit its table, or when a table's own row-level security
	// would give the scope's roles no rows: roles.Problems, in the words
	// `airlock scope plan` uses.
	CheckScopeTables = "scope tables"
	// CheckScopeRoles FAILs when the scope's read role (and write role, if
	// the scope writes) does not exist, or when roles.Plan has statements
	// pending: the database does not enforce the scope file as it is.
	CheckScopeRoles = "scope roles"
	// CheckSetRole FAILs when the login role cannot SET ROLE to the roles
	// its principal needs: the read role for an agent, the read and write
	// roles for the service, the write role for a reviewer (not a member;
	// from PostgreSQL 16, a membership WITH SET FALSE).
	CheckSetRole = "set role"
	// CheckAgentReach FAILs, for an agent login, on everything it could do
	// with plain SQL past the scope's read role: write privileges granted
	// to PUBLIC or to it, large objects, advisory locks, temporary tables,
	// pg_notify, SECURITY DEFINER functions the scope does not list, CREATE
	// on a schema (roles.Exposures), each with the REVOKE that closes it.
	CheckAgentReach = "agent reach"
	// CheckPrepared FAILs when the write mode is prepared and the server
	// has max_prepared_transactions = 0, WARNs when the slots airlock may
	// use (all but a fifth, kept free for others) are taken, and reports
	// the count; OK ("not needed") in the other modes.
	CheckPrepared = "prepared transactions"
	// CheckTimeouts WARNs when the login's sessions start without a
	// statement_timeout or idle_in_transaction_session_timeout. airlock
	// sets its own per transaction; this is informational.
	CheckTimeouts = "session timeouts"
	// CheckTLS FAILs when the connection goes to a host that is not local
	// (not a Unix socket, not a loopback address) without TLS, and WARNs
	// when TLS does not verify the server's certificate and host name.
	CheckTLS = "tls"
	// CheckDefiner WARNs when the scope's roles may execute SECURITY
	// DEFINER functions outside pg_catalog: such a function runs with its
	// owner's rights, past the scope's grants, so only the SQL guard (which
	// refuses functions outside pg_catalog unless the scope lists them)
	// keeps the agent from calling it. scope apply does not revoke EXECUTE
	// from PUBLIC, which would change what every other role can do.
	CheckDefiner = "definer functions"
	// CheckBranch FAILs, in branch mode, when the login role cannot create
	// the branch databases (no CREATEDB), or cannot copy the database with
	// the template strategy (a non-template database may only be copied by
	// its owner or a superuser): every session's first apply would fail.
	// OK ("not needed") in the other modes.
	CheckBranch = "branch databases"
	// CheckForeignKeys WARNs when a write table has a foreign key to a
	// table with a row filter or row-level security: PostgreSQL checks
	// foreign keys without row-level security, so writes reveal which
	// hidden keys exist.
	CheckForeignKeys = "foreign keys"
	// CheckUndo reports, for a scope with write.undo on, how much room the
	// undo captures take (airlock.undo_rows and airlock.undo_captures, and
	// the tables kept in airlock_trash), how many are live and when the
	// oldest expires, and WARNs when they take more than 1 GiB. It reads
	// the sizes from the catalog, so any login gets them; the counts only
	// a login that may read the captures (a reviewer). OK ("not needed")
	// with undo off.
	CheckUndo = "undo captures"
)

// Check is the result of one check. Fix says what to do about a WARN or
// FAIL; it is empty for OK.
type Check struct {
	Name   string
	Status Status
	Detail string
	Fix    string
}

// Options tune Run.
type Options struct {
	// AllowOwner turns the login-role and table-owner FAILs into WARNs, for
	// development setups where airlock connects as a superuser or as the
	// tables' owner. Every transaction still runs as the scope's roles.
	AllowOwner bool
	// ScopeFile is the scope's path, used in the fixes' commands; "FILE"
	// when empty.
	ScopeFile string
	// As is the principal the login is used as (AsAgent, AsService,
	// AsReviewer, AsLocal); empty means the doctor finds out from its
	// memberships.
	As string
}

func (o Options) scopeFile() string {
	if o.ScopeFile == "" {
		return "FILE"
	}
	return o.ScopeFile
}

// Run runs every check over pool, connected the way `airlock serve`
// connects, for scope. It never stops early: a check whose query fails is a
// FAIL that carries the error, and the others still run. The result has one
// entry per check, in the order of the Check* names.
func Run(ctx context.Context, pool *pgxpool.Pool, scope *scopes.Scope, opt Options) []Check {
	d := &doctor{pool: pool, scope: scope, opt: opt}
	login, loginErr := d.loginFacts(ctx)
	version, versionErr := d.versionFacts(ctx)
	facts, factsErr := d.principalFacts(ctx, version.num)
	as := d.as(facts)
	return []Check{
		orFail(CheckServerVersion, versionErr, func() Check { return judgeVersion(version) }),
		orFail(CheckLoginRole, loginErr, func() Check { return judgeLogin(login, opt.scopeFile(), opt.AllowOwner) }),
		orFail(CheckPrincipal, factsErr, func() Check { return judgePrincipal(facts, as, opt.scopeFile(), opt.AllowOwner) }),
		d.tableOwner(ctx, login.display(), opt.AllowOwner),
		d.scopeTables(ctx),
		d.scopeRoles(ctx),
		orFail(CheckSetRole, factsErr, func() Check {
			return judgeRoles(facts, as, opt.scopeFile(), scope.ReadRole(), scope.WriteRole())
		}),
		orFail(CheckAgentReach, factsErr, func() Check { return d.agentReach(ctx, facts, as) }),
		d.prepared(ctx),
		d.timeouts(ctx, login.display()),
		d.tls(ctx),
		d.definers(ctx),
		d.branch(ctx),
		d.foreignKeys(ctx),
		d.undo(ctx),
	}
}

// Failed reports whether any check failed.
func Failed(checks []Check) bool {
	for _, c := range checks {
		if c.Status == FAIL {
			return true
		}
	}
	return false
}

// StartupFailures returns the checks that `airlock serve` must refuse to
// start on: every FAIL of Run with opt (serve --allow-owner sets
// AllowOwner). An empty
// result means the setup passed; WARNs never stop serve.
//
// On a plain development setup (the superuser's URL, the scope's roles not
// applied) four checks fail: login role (superuser), table owner (a
// superuser has every owner's rights), scope roles (missing) and set role
// (its targets are missing); prepared transactions fails as well when the
// scope's write mode is prepared and the server has
// max_prepared_transactions = 0. With the roles applied, a superuser URL
// still fails login role and table owner.
func StartupFailures(ctx context.Context, pool *pgxpool.Pool, scope *scopes.Scope, opt Options) []Check {
	var failed []Check
	for _, c := range Run(ctx, pool, scope, opt) {
		if c.Status == FAIL {
			failed = append(failed, c)
		}
	}
	return failed
}

// doctor holds what every check needs.
type doctor struct {
	pool  *pgxpool.Pool
	scope *scopes.Scope
	opt   Options
}

// orFail is judge() unless err is set, in which case the check fails with
// the error: a check that could not look must not pass.
func orFail(name string, err error, judge func() Check) Check {
	if err != nil {
		return couldNotCheck(name, err)
	}
	return judge()
}

func couldNotCheck(name string, err error) Check {
	return Check{
		Name:   name,
		Status: FAIL,
		Detail: fmt.Sprintf("could not check: %v", err),
		Fix:    "resolve this error (the connection, or the login role's access to the system catalogs), then run airlock doctor again",
	}
}
