package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/roles"
)

// Principals a login can be (docs/architecture.md, Principals). Options.As
// says which one the login is used as; empty means "find out".
const (
	// AsAgent is an agent-side airlock serve (stdio): it may read, and
	// nothing an agent holding the login does may write or approve.
	AsAgent = "agent"
	// AsService is airlock serve --http: it reads and writes through the
	// scope's roles.
	AsService = "service"
	// AsReviewer is a human's login for commit, rollback, merge, discard.
	AsReviewer = "reviewer"
	// AsLocal is serve --local-writes: one login that reads and writes,
	// for a demo or a development database. An agent with a shell can
	// then write.
	AsLocal = "local"
)

// principalFacts is what the catalog says the login can act as.
type principalFacts struct {
	login       string
	super       bool
	read, write bool // can SET ROLE to the scope's read / write role
	// member of the principal groups, directly: scope apply puts each
	// named login in one (a service is also a member of the agent logins,
	// and so of airlock_agents through them, to end their sessions)
	agents, services, reviewers bool
	readExists, writeExists     bool
	writeNeeded                 bool
}

const principalSQL = `
SELECT r.rolname, r.rolsuper,
	coalesce((SELECT pg_catalog.pg_has_role(current_user, g.oid, $3) FROM pg_catalog.pg_roles g WHERE g.rolname = $1), false),
	coalesce((SELECT pg_catalog.pg_has_role(current_user, g.oid, $3) FROM pg_catalog.pg_roles g WHERE g.rolname = $2), false),
	EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
		WHERE m.member = r.oid AND g.rolname = 'airlock_agents'),
	EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
		WHERE m.member = r.oid AND g.rolname = 'airlock_services'),
	EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
		WHERE m.member = r.oid AND g.rolname = 'airlock_reviewers'),
	EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1),
	EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $2)
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`

func (d *doctor) principalFacts(ctx context.Context, versionNum int) (principalFacts, error) {
	// From PostgreSQL 16 a membership can be granted WITH SET FALSE, which
	// makes the member unable to SET ROLE; 'SET' asks exactly that.
	priv := "MEMBER"
	if versionNum >= 160000 {
		priv = "SET"
	}
	var f principalFacts
	err := d.pool.QueryRow(ctx, principalSQL, d.scope.ReadRole(), d.scope.WriteRole(), priv).Scan(
		&f.login, &f.super, &f.read, &f.write, &f.agents, &f.services, &f.reviewers, &f.readExists, &f.writeExists)
	if err != nil {
		return f, fmt.Errorf("read the login's memberships: %w", err)
	}
	f.writeNeeded = d.scope.Write != nil
	return f, nil
}

// detect names the principal the login is, by what it was made a member
// of: a group first (scope apply puts each named login in one), else by
// what it reaches.
func (f principalFacts) detect() string {
	switch {
	case f.services:
		return AsService
	case f.reviewers:
		return AsReviewer
	case f.agents:
		return AsAgent
	case f.write && f.read:
		return AsLocal
	case f.read:
		return AsAgent
	}
	return ""
}

// as is the principal the checks judge the login as: the one the caller
// uses it as, or the one it looks like.
func (d *doctor) as(f principalFacts) string {
	if d.opt.As != "" {
		return d.opt.As
	}
	return f.detect()
}

var principalNames = map[string]string{
	AsAgent:    "the agent login (an agent-side airlock serve over stdio)",
	AsService:  "the service login (airlock serve --http)",
	AsReviewer: "a reviewer login (airlock commit, rollback, merge, discard)",
	AsLocal:    "a one-process development login (airlock serve --local-writes): it reads and writes",
}

// judgePrincipal says which principal the login is and FAILs when it is
// used as another, or holds two principals' rights at once.
func judgePrincipal(f principalFacts, as, scopeFile string, allowOwner bool) Check {
	c := Check{Name: CheckPrincipal, Status: OK}
	login := pgx.Identifier{f.login}.Sanitize()
	detected := f.detect()
	switch {
	case f.super:
		c.Status = FAIL
		c.Detail = f.login + " is a superuser: it is every principal at once, and no grant or policy binds it"
		c.Fix = "use a login of its own for each principal: airlock scope apply --scope " + scopeFile + " --grant-to AGENT_LOGIN --service SERVICE_LOGIN --reviewer YOUR_LOGIN"
		if allowOwner {
			c.Status = WARN
			c.Detail += " (allowed by --allow-owner)"
		}
		return c
	case detected == "":
		c.Status = FAIL
		c.Detail = f.login + " is none of the scope's principals: it holds neither of the scope's roles"
		c.Fix = principalFix(as, f.login, scopeFile)
		return c
	}
	c.Detail = f.login + " is " + principalNames[detected]
	groups := 0
	for _, b := range []bool{f.agents, f.services, f.reviewers} {
		if b {
			groups++
		}
	}
	switch {
	case groups > 1:
		c.Status = FAIL
		c.Detail = f.login + " is a member of more than one of airlock_agents, airlock_services and airlock_reviewers: one credential would hold two principals' rights"
		c.Fix = "give each principal a login of its own, and REVOKE the extra groups FROM " + login
	case as == AsAgent && f.write:
		c.Status = FAIL
		c.Detail = f.login + " can SET ROLE to the write role: an agent that reads this login from its configuration or its airlock's environment can write with psql"
		c.Fix = "airlock scope apply --scope " + scopeFile + " --grant-to " + f.login + " makes it an agent login (the write role is revoked from it); serve writes over HTTP with a service login of its own"
	case as == AsAgent && (f.services || f.reviewers):
		c.Status = FAIL
		c.Detail = f.login + " is a service or reviewer login: an agent holding it could do what they do"
		c.Fix = "give the agent a login of its own: airlock scope apply --scope " + scopeFile + " --grant-to AGENT_LOGIN"
	case as == AsService && (f.agents || f.reviewers):
		c.Status = FAIL
		c.Detail = f.login + " is also an agent or reviewer login"
		c.Fix = "give the service a login of its own: airlock scope apply --scope " + scopeFile + " --service SERVICE_LOGIN"
	case as == AsReviewer && (f.agents || f.services):
		c.Status = FAIL
		c.Detail = f.login + " is an agent or service login: the database refuses its decisions"
		c.Fix = "review with a login of your own: airlock scope apply --scope " + scopeFile + " --reviewer YOUR_LOGIN"
	case as == AsLocal:
		c.Status = WARN
		c.Detail = f.login + " reads and writes in one process (--local-writes): an agent with a shell that reads this login's URL can write with it; fine for a demo or a development database only"
		c.Fix = "for anything that matters, run the service (airlock serve --http) with a service login and give the agent an agent login"
	case as != "" && as != detected && !(as == AsAgent && detected == AsLocal):
		c.Status = FAIL
		c.Detail = fmt.Sprintf("%s is used as %s but is %s", f.login, principalNames[as], principalNames[detected])
		c.Fix = principalFix(as, f.login, scopeFile)
	}
	return c
}

func principalFix(as, login, scopeFile string) string {
	flag := map[string]string{AsAgent: "--grant-to", AsService: "--service", AsReviewer: "--reviewer", AsLocal: "--service"}[as]
	if flag == "" {
		flag = "--grant-to"
	}
	return "airlock scope apply --scope " + scopeFile + " " + flag + " " + login
}

// judgeRoles checks that the login reaches the roles its principal needs.
func judgeRoles(f principalFacts, as, scopeFile string, readRole, writeRole string) Check {
	c := Check{Name: CheckSetRole, Status: OK}
	var need []string
	switch as {
	case AsService, AsLocal:
		need = []string{readRole}
		if f.writeNeeded {
			need = append(need, writeRole)
		}
	case AsReviewer:
		if f.writeNeeded {
			need = []string{writeRole}
		}
	default:
		need = []string{readRole}
	}
	if len(need) == 0 {
		c.Detail = "a reviewer of a read-only scope needs none of its roles"
		return c
	}
	var missing, denied []string
	for _, r := range need {
		exists, member := f.readExists, f.read
		if r == writeRole {
			exists, member = f.writeExists, f.write
		}
		switch {
		case !exists:
			missing = append(missing, r)
		case !member:
			denied = append(denied, r)
		}
	}
	fix := principalFix(as, f.login, scopeFile)
	switch {
	case len(missing) > 0:
		c.Status, c.Fix = FAIL, fix
		c.Detail = fmt.Sprintf("cannot SET ROLE to %s: %s not exist", strings.Join(missing, ", "), plural(len(missing), "it does", "they do"))
	case len(denied) > 0:
		c.Status, c.Fix = FAIL, fix
		c.Detail = fmt.Sprintf("%s cannot SET ROLE to %s: it is not a member", f.login, strings.Join(denied, ", "))
	default:
		c.Detail = f.login + " can SET ROLE to " + strings.Join(need, ", ")
	}
	return c
}

// agentReach FAILs on everything an agent holding the login could do with
// plain SQL past what query_readonly allows.
func (d *doctor) agentReach(ctx context.Context, f principalFacts, as string) Check {
	c := Check{Name: CheckAgentReach, Status: OK}
	if as != AsAgent {
		c.Detail = "not needed: not an agent login"
		return c
	}
	if f.super {
		c.Status, c.Detail = FAIL, f.login+" is a superuser: it can do anything"
		c.Fix = "give the agent a login of its own: airlock scope apply --scope " + d.opt.scopeFile() + " --grant-to AGENT_LOGIN"
		if d.opt.AllowOwner {
			c.Status = WARN
			c.Detail += " (allowed by --allow-owner)"
		}
		return c
	}
	exposed, err := roles.Exposures(ctx, d.pool, d.scope, f.login)
	if err != nil {
		return couldNotCheck(CheckAgentReach, err)
	}
	return judgeAgentReach(f.login, exposed, d.opt.scopeFile())
}

func judgeAgentReach(login string, exposed []roles.Exposure, scopeFile string) Check {
	c := Check{Name: CheckAgentReach, Status: OK,
		Detail: login + " can do nothing past the scope's read role with plain SQL (but NOTIFY, which needs no privilege and carries only text)"}
	if len(exposed) == 0 {
		return c
	}
	what := make([]string, 0, len(exposed))
	fixes := make([]string, 0, len(exposed))
	for _, e := range exposed {
		what = append(what, e.What)
		fixes = append(fixes, e.Fix+";")
	}
	if len(fixes) > 6 {
		fixes = append(fixes[:6:6], fmt.Sprintf("and %d more (airlock scope plan --scope %s --harden prints them all).", len(exposed)-6, scopeFile))
	}
	shown := what
	if len(shown) > 8 {
		shown = append(shown[:8:8], fmt.Sprintf("and %d more", len(what)-8))
	}
	c.Status = FAIL
	c.Detail = fmt.Sprintf("an agent holding %s could, with plain SQL: %s", login, strings.Join(shown, "; "))
	c.Fix = "airlock scope apply --scope " + scopeFile + " --harden does it for the whole database (other roles that need these must then be granted them), or run: " +
		strings.Join(fixes, " ") + " A function the scope has reviewed can be listed in read.functions instead"
	return c
}
