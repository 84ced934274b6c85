package catalog

import "context"

// Sequence is a sequence owned by a column of Table ("schema.table").
type Sequence struct {
	Table, Schema, Name string
}

// Serial columns own their sequence with an 'a' dependency, identity
// columns with an 'i' one.
const sequencesSQL = `
SELECT tn.nspname || '.' || t.relname, sn.nspname, s.relname
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
WHERE d.classid = 'pg_catalog.pg_class'::regclass
  AND d.refclassid = 'pg_catalog.pg_class'::regclass
  AND d.deptype IN ('a', 'i')
  AND (tn.nspname || '.' || t.relname) = ANY($1)
ORDER BY 1, 2, 3`

// OwnedSequences lists the sequences that columns of the tables among
// names own (serial and identity columns), ordered by table and sequence.
func OwnedSequences(ctx context.Context, q Querier, tables []string) ([]Sequence, error) {
	rows, err := q.Query(ctx, sequencesSQL, tables)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Sequence
	for rows.Next() {
		var s Sequence
		if err := rows.Scan(&s.Table, &s.Schema, &s.Name); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Owner is the role whose owner rights a relation ("schema.table") has.
type Owner struct {
	Relation, Role string
}

func queryOwners(ctx context.Context, q Querier, sql string, args ...any) ([]Owner, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Owner
	for rows.Next() {
		var o Owner
		if err := rows.Scan(&o.Relation, &o.Role); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// OwnedBy lists the relations of a kind Columns knows (not indexes,
// sequences or toast) that role owns: their privileges are the owner's,
// not grants.
func OwnedBy(ctx context.Context, q Querier, role string) ([]string, error) {
	return queryStrings(ctx, q, `
SELECT n.nspname || '.' || c.relname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_roles r ON r.oid = c.relowner
WHERE r.rolname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY 1`, role)
}

// TableOwners gives the owner of each existing table (plain or
// partitioned) among tables, ordered by table.
func TableOwners(ctx context.Context, q Querier, tables []string) ([]Owner, error) {
	return queryOwners(ctx, q, `
SELECT n.nspname || '.' || c.relname, pg_catalog.pg_get_userbyid(c.relowner)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND (n.nspname || '.' || c.relname) = ANY($1)
ORDER BY 1`, tables)
}

// OwnerRightsOfCurrentUser lists the relations among names whose owner's
// rights the current user has, with their owners, ordered by relation.
// Owner rights come with membership in the owner role too, and they
// include ALTER TABLE ... DISABLE ROW LEVEL SECURITY and GRANT:
// pg_has_role covers both direct ownership and (inherited or not)
// membership.
func OwnerRightsOfCurrentUser(ctx context.Context, q Querier, names []string) ([]Owner, error) {
	return queryOwners(ctx, q, `
SELECT n.nspname || '.' || c.relname, pg_catalog.pg_get_userbyid(c.relowner)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname || '.' || c.relname) = ANY($1)
  AND pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER')
ORDER BY 1`, names)
}
