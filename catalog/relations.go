package catalog

import "context"

// Relation kinds (pg_class.relkind) the lookups return.
const (
	KindTable            = "r"
	KindPartitionedTable = "p"
	KindView             = "v"
	KindMaterializedView = "m"
	KindForeignTable     = "f"
)

// Column is one column of a relation, with the facts about its relation
// that callers need alongside: its kind and whether row-level security is
// enabled on it.
type Column struct {
	Schema, Relation string
	Kind             string // pg_class.relkind
	RowSecurity      bool   // pg_class.relrowsecurity
	Name             string
}

// The relation kinds a scope may name: tables, partitioned tables, views,
// materialized views and foreign tables.
const columnsSQL = `
SELECT n.nspname, c.relname, c.relkind::text, c.relrowsecurity, a.attname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND (n.nspname || '.' || c.relname) = ANY($1)
ORDER BY n.nspname, c.relname, a.attnum`

// Columns calls fn with every column of each existing relation among
// names, relation by relation (ordered by schema and name), each
// relation's columns in catalog order. A name with no relation yields
// nothing. An error from fn stops the scan and is returned. fn runs while
// the rows are being read, so it must not query q itself: a connection or
// transaction is busy until they are.
func Columns(ctx context.Context, q Querier, names []string, fn func(Column) error) error {
	rows, err := q.Query(ctx, columnsSQL, names)
	if err != nil {
		return err
	}
	defer rows.Close()
	var c Column
	for rows.Next() {
		if err := rows.Scan(&c.Schema, &c.Relation, &c.Kind, &c.RowSecurity, &c.Name); err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Relations lists every relation of a kind Columns knows in the user's
// schemas (not pg_catalog, information_schema, airlock or toast) as
// "schema.table", ordered.
func Relations(ctx context.Context, q Querier) ([]string, error) {
	return queryStrings(ctx, q, `
		SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'airlock') AND n.nspname NOT LIKE 'pg_toast%'
		ORDER BY 1`)
}

// RelationExists reports whether name (as SQL names it, "schema.table")
// is a relation. Looking in a schema the current user has no USAGE on is
// a permission error, as in to_regclass.
func RelationExists(ctx context.Context, q Querier, name string) (bool, error) {
	return queryBool(ctx, q, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", name)
}
