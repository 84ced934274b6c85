package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/airlock-dev/airlock/catalog"
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
