package catalog

import "context"

// Role is a role's attributes as pg_roles has them.
type Role struct {
	Login, Inherit, Super, CreateDB, CreateRole, Replication, BypassRLS bool
}

// RoleAttributes returns the attributes of the role name, and false when
// no role has that name.
func RoleAttributes(ctx context.Context, q Querier, name string) (Role, bool, error) {
	var r Role
	rows, err := q.Query(ctx, `
SELECT rolcanlogin, rolinherit, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls
FROM pg_catalog.pg_roles WHERE rolname = $1`, name)
	if err != nil {
		return r, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return r, false, rows.Err()
	}
	if err := rows.Scan(&r.Login, &r.Inherit, &r.Super, &r.CreateDB, &r.CreateRole, &r.Replication, &r.BypassRLS); err != nil {
		return r, false, err
	}
	return r, true, nil
}

// MemberOf lists the roles role is a direct member of, ordered.
func MemberOf(ctx context.Context, q Querier, role string) ([]string, error) {
	return queryStrings(ctx, q, `
SELECT g.rolname FROM pg_catalog.pg_auth_members m
JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
JOIN pg_catalog.pg_roles r ON r.oid = m.member
WHERE r.rolname = $1 ORDER BY 1`, role)
}

// Members lists the direct members of role, ordered.
func Members(ctx context.Context, q Querier, role string) ([]string, error) {
	return queryStrings(ctx, q, `
SELECT r.rolname FROM pg_catalog.pg_auth_members m
JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
JOIN pg_catalog.pg_roles r ON r.oid = m.member
WHERE g.rolname = $1 ORDER BY 1`, role)
}

// ExistingRoles lists the names among names that a role has, in no
// particular order.
func ExistingRoles(ctx context.Context, q Querier, names []string) ([]string, error) {
	return queryStrings(ctx, q, `SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY($1)`, names)
}
