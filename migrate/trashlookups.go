package migrate

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	dbcatalog "github.com/airlock-dev/airlock/catalog"
)

// columnDef is a column's definition as a revert needs it; nil when
// the column does not exist.
type columnDefinition struct {
	schema, table, typ, collate, def, comment string
	attnum                                    int
	notNull, generated                        bool
}

func (d *columnDefinition) entry(id string, stmt int, kind, column string) TrashEntry {
	return TrashEntry{Change: id, Stmt: stmt, Kind: kind, Schema: d.schema, Table: d.table, Column: column,
		Type: d.typ, Collate: d.collate, NotNull: d.notNull, Default: d.def, Comment: d.comment}
}

func (r *runner) columnDef(ctx context.Context, t, col string) (*columnDefinition, error) {
	var d columnDefinition
	err := r.tx.QueryRow(ctx, `SELECT n.nspname, c.relname, a.attnum,
	pg_catalog.format_type(a.atttypid, a.atttypmod),
	CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
		THEN ' COLLATE ' || pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) ELSE '' END,
	a.attnotnull, a.attgenerated <> '' OR a.attidentity <> '',
	coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), ''), coalesce(pg_catalog.col_description(a.attrelid, a.attnum), '')
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped`, t, col).
		Scan(&d.schema, &d.table, &d.attnum, &d.typ, &d.collate, &d.notNull, &d.generated, &d.def, &d.comment)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s.%s for the trash: %w", t, col, err)
	}
	return &d, nil
}

// valuesKey returns the key a copy of column col of table t is kept by,
// or why there is none.
func (r *runner) valuesKey(ctx context.Context, t, col string) ([]string, string, error) {
	var inherits bool
	if err := r.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits WHERE inhrelid = pg_catalog.to_regclass($1) OR inhparent = pg_catalog.to_regclass($1))`, t).Scan(&inherits); err != nil {
		return nil, "", fmt.Errorf("read %s for the trash: %w", t, err)
	}
	if inherits {
		return nil, fmt.Sprintf("%s is partitioned or inherited, which the trash cannot keep", t), nil
	}
	key, err := KeyColumns(ctx, r.tx, t)
	if err != nil {
		return nil, fmt.Sprintf("%s has no primary key to keep the values of %s by", t, pgx.Identifier{col}.Sanitize()), nil
	}
	if slices.Contains(key, col) {
		return nil, fmt.Sprintf("%s is part of %s's primary key, which the values would be kept by", pgx.Identifier{col}.Sanitize(), t), nil
	}
	return key, "", nil
}

// recreatable runs a query of (object, name, sql) rows.
func (r *runner) recreatable(ctx context.Context, sql string, args ...any) ([]Recreated, error) {
	rows, err := r.tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read definitions for the trash: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Recreated, error) {
		var rc Recreated
		err := row.Scan(&rc.Object, &rc.Name, &rc.SQL)
		return rc, err
	})
	if err != nil {
		return nil, fmt.Errorf("read definitions for the trash: %w", err)
	}
	return out, nil
}

// KeyColumns returns rel's primary key (or replica identity index)
// columns, in key order: what captured rows and trashed column values
// are matched by. A table with neither is an error.
func KeyColumns(ctx context.Context, q dbcatalog.Querier, rel string) ([]string, error) {
	out, err := dbcatalog.KeyColumns(ctx, q, rel)
	if err != nil {
		return nil, fmt.Errorf("read the key of %s: %w", rel, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no primary key (or replica identity index) any more: its rows cannot be matched", rel)
	}
	return out, nil
}
