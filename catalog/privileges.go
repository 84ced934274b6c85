package catalog

import "context"

// Privilege object kinds.
const (
	OnSchema   = "schema"
	OnTable    = "table"
	OnSequence = "sequence"
	OnColumn   = "column"
)

// Privilege is one privilege (SELECT, USAGE, ...) held on one object.
// Relation is empty for a schema, Column for anything but a column.
type Privilege struct {
	Kind, Schema, Relation, Column, Privilege string
}

// Grants to PUBLIC are not the role's, and an owner's privileges are not
// grants: neither is listed. An object without an ACL holds no grants and
// is skipped before aclexplode: most columns have none, and calling it for
// each of them was most of the query's time, which startup pays once per
// role.
const privilegesSQL = `
WITH r AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)
SELECT 'schema', n.nspname, '', '', a.privilege_type
FROM pg_catalog.pg_namespace n, aclexplode(n.nspacl) a, r
WHERE n.nspacl IS NOT NULL AND a.grantee = r.oid
UNION
SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, n.nspname, c.relname, '', a.privilege_type
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a, r
WHERE c.relacl IS NOT NULL AND a.grantee = r.oid AND c.relowner <> r.oid
UNION
SELECT 'column', n.nspname, c.relname, att.attname, a.privilege_type
FROM pg_catalog.pg_attribute att
JOIN pg_catalog.pg_class c ON c.oid = att.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, aclexplode(att.attacl) a, r
WHERE att.attacl IS NOT NULL AND a.grantee = r.oid AND c.relowner <> r.oid AND att.attnum > 0 AND NOT att.attisdropped`

// Privileges calls fn with every privilege granted to role itself on a
// schema, relation or column of this database, in no particular order;
// like Columns' fn, fn must not query q.
func Privileges(ctx context.Context, q Querier, role string, fn func(Privilege)) error {
	rows, err := q.Query(ctx, privilegesSQL, role)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var p Privilege
		if err := rows.Scan(&p.Kind, &p.Schema, &p.Relation, &p.Column, &p.Privilege); err != nil {
			return err
		}
		fn(p)
	}
	return rows.Err()
}

// MaySelect reports whether the current user may SELECT from table, named
// as SQL names it (quoted where needed, "schema.table"). A table that does
// not exist is an error, as in has_table_privilege.
func MaySelect(ctx context.Context, q Querier, table string) (bool, error) {
	return queryBool(ctx, q, "SELECT pg_catalog.has_table_privilege($1, 'SELECT')", table)
}
