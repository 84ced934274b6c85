package migrate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/airlock-dev/airlock/sqlguard"
)

// Destructive DDL under undo (docs/architecture.md, Undo: the trash). In a
// commit run of a scope with undo on, DROP TABLE moves the table into
// TrashSchema instead of destroying it, and DROP COLUMN first copies the
// column's values, keyed by the table's primary key, into a table of
// their own there. A revert moves the table back, or adds the column
// again and fills it from the copy; the reaper drops what is in the trash
// once the capture expires. The dry run does the real DROP (it is rolled
// back) and works out the same entries, so that what a revert could not
// undo is a UN101 finding before anyone approves.
//
// A dropped column is not kept in the table under another name: an
// application's INSERT would then fail on its NOT NULL, and its SELECT *
// would still see it. Its values leave the table exactly as DROP COLUMN
// says; only the copy remains.

// TrashSchema holds what committed changes dropped, until their capture
// expires. It is created by scope apply, owned by airlock's schema owner,
// with USAGE and CREATE for write roles only.
const TrashSchema = "airlock_trash"

// TrashEntry is one object a committed statement put into the trash.
type TrashEntry struct {
	// Change is the id of the change the statement belongs to.
	Change string `json:"change"`
	Stmt   int    `json:"stmt"`
	// Kind is "table" (the table itself, moved), "column" (a dropped
	// column: a copy of its values) or "column_def" (a column whose type,
	// default or NOT NULL changed: its definition before, and for a type
	// change a copy of its values).
	Kind   string `json:"kind"`
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Column string `json:"column,omitempty"`
	// Trash is the table's name in TrashSchema ("" for a column_def
	// without a copy).
	Trash string `json:"trash"`
	// Key lists the table's primary key columns (a column copy's key).
	Key []string `json:"key,omitempty"`
	// Type is the column's type and Collate its COLLATE clause (or ""); NotNull,
	// Default and Comment its constraint, default expression and comment.
	// Column privileges are the scope's: the next scope apply grants them.
	Type    string `json:"type,omitempty"`
	Collate string `json:"collate,omitempty"`
	NotNull bool   `json:"not_null,omitempty"`
	Default string `json:"default,omitempty"`
	Comment string `json:"comment,omitempty"`
	// Recreate lists the statements that put back what went with the
	// drop: a moved table's foreign keys (removed so that the trash holds
	// no reference to live rows), a column's indexes and constraints.
	Recreate []Recreated `json:"recreate,omitempty"`
}

// Recreated is one index or constraint a revert creates again.
type Recreated struct {
	Object string `json:"object"` // "index" or "constraint"
	Name   string `json:"name"`
	SQL    string `json:"sql"`
}

// Name is the entry's object as the schema diff names it.
func (e *TrashEntry) Name() string {
	if e.Column != "" {
		return e.Schema + "." + e.Table + "." + e.Column
	}
	return e.Schema + "." + e.Table
}

// UndoLog collects, in a commit run that captures for undo, what the
// statements put into the trash and, per change, why a statement's
// drop could not be (it was done for good). RunArg.Undo hands it to the
// BeforeCommit hook, which records it with the capture.
type UndoLog struct {
	Trash        []TrashEntry
	Irreversible map[string]string
}

// captureID is the change statement i is captured for, "" if none.
func (r *runner) captureID(i int) string {
	if i < len(r.opt.CaptureEach) {
		return r.opt.CaptureEach[i]
	}
	return r.opt.Capture
}

// dropTargets returns the tables a DROP TABLE removes and the columns an
// ALTER TABLE drops (table "schema.table", column name), from the
// qualified statement's tree; cascade says whether any of them is CASCADE.
func dropTargets(tree *pg.ParseResult) (tables []string, columns [][2]string, alters []alterTarget, cascade bool) {
	stmt := tree.Stmts[0].Stmt
	if d := stmt.GetDropStmt(); d != nil && d.RemoveType == pg.ObjectType_OBJECT_TABLE {
		for _, o := range d.Objects {
			var parts []string
			for _, n := range o.GetList().GetItems() {
				parts = append(parts, n.GetString_().GetSval())
			}
			tables = append(tables, pgx.Identifier(parts).Sanitize())
		}
		return tables, nil, nil, d.Behavior == pg.DropBehavior_DROP_CASCADE
	}
	if a := stmt.GetAlterTableStmt(); a != nil && a.Objtype == pg.ObjectType_OBJECT_TABLE {
		rel := a.Relation
		table := pgx.Identifier{rel.Schemaname, rel.Relname}.Sanitize()
		for _, c := range a.Cmds {
			cmd := c.GetAlterTableCmd()
			if cmd == nil {
				continue
			}
			switch cmd.Subtype {
			case pg.AlterTableType_AT_DropColumn:
				columns = append(columns, [2]string{table, cmd.Name})
				cascade = cascade || cmd.Behavior == pg.DropBehavior_DROP_CASCADE
			case pg.AlterTableType_AT_AlterColumnType, pg.AlterTableType_AT_ColumnDefault,
				pg.AlterTableType_AT_SetNotNull, pg.AlterTableType_AT_DropNotNull:
				retype := cmd.Subtype == pg.AlterTableType_AT_AlterColumnType
				i := slices.IndexFunc(alters, func(a alterTarget) bool { return a.table == table && a.column == cmd.Name })
				if i < 0 {
					alters = append(alters, alterTarget{table, cmd.Name, retype})
				} else {
					alters[i].retype = alters[i].retype || retype
				}
			}
		}
	}
	return nil, columns, alters, cascade
}

// alterTarget is a column whose definition an ALTER TABLE changes; retype
// when its type (and so maybe its values) changes.
type alterTarget struct {
	table, column string
	retype        bool
}

// trashName names the trash table of change id's statement stmt, object
// j: unique, readable, within PostgreSQL's 63 bytes.
func trashName(id string, stmt, j int, what string) string {
	for len(what) > 40 {
		_, size := utf8.DecodeLastRuneInString(what)
		what = what[:len(what)-size]
	}
	short := strings.ReplaceAll(id, "-", "")
	if len(short) > 8 {
		short = short[:8]
	}
	return fmt.Sprintf("%s_%d_%d_%s", short, stmt+1, j, what)
}

// planTrash works out statement i's trash entries, before it runs. A
// non-empty reason says why its drop cannot be undone; entries are then
// nil. Names come from the statement's qualified tree; tables that do
// not exist (IF EXISTS) are left out.
func (r *runner) planTrash(ctx context.Context, i int, tree *pg.ParseResult) ([]TrashEntry, string, error) {
	tables, columns, alters, cascade := dropTargets(tree)
	if len(tables) == 0 && len(columns) == 0 && len(alters) == 0 {
		return nil, "", nil
	}
	if cascade {
		return nil, "DROP ... CASCADE also drops what depends on it, which the trash cannot keep", nil
	}
	// Every definition is read with search_path pg_catalog alone, so that
	// the names in it (types, sequences, functions) come out qualified
	// whatever path the revert runs with.
	if _, err := r.tx.Exec(ctx, "SELECT pg_catalog.set_config('search_path', 'pg_catalog', true)"); err != nil {
		return nil, "", fmt.Errorf("read definitions for the trash: %w", err)
	}
	entries, reason, err := r.planTrashOn(ctx, i, tables, columns, alters)
	if _, perr := r.tx.Exec(ctx, "SELECT pg_catalog.set_config('search_path', $1, true)", searchPath(r.opt.SearchPath)); perr != nil && err == nil {
		err = fmt.Errorf("read definitions for the trash: %w", perr)
	}
	return entries, reason, err
}

func (r *runner) planTrashOn(ctx context.Context, i int, tables []string, columns [][2]string, alters []alterTarget) ([]TrashEntry, string, error) {
	id := r.captureID(i)
	var out []TrashEntry
	for j, t := range tables {
		var schema, name, kind string
		var inherits bool
		err := r.tx.QueryRow(ctx, `SELECT n.nspname, c.relname, c.relkind::text,
	c.relispartition OR EXISTS (SELECT 1 FROM pg_catalog.pg_inherits WHERE inhrelid = c.oid OR inhparent = c.oid)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = pg_catalog.to_regclass($1)`, t).Scan(&schema, &name, &kind, &inherits)
		if err == pgx.ErrNoRows {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("read %s for the trash: %w", t, err)
		}
		if kind != "r" || inherits {
			return nil, fmt.Sprintf("%s is partitioned or inherited, which the trash cannot keep", t), nil
		}
		fks, err := r.recreatable(ctx, `SELECT 'constraint', c.conname, 'ALTER TABLE ' || $2 || ' ADD CONSTRAINT ' || pg_catalog.quote_ident(c.conname) || ' ' || pg_catalog.pg_get_constraintdef(c.oid)
FROM pg_catalog.pg_constraint c WHERE c.conrelid = pg_catalog.to_regclass($1) AND c.contype = 'f' ORDER BY c.conname`, t, t)
		if err != nil {
			return nil, "", err
		}
		out = append(out, TrashEntry{Change: id, Stmt: i, Kind: "table", Schema: schema, Table: name,
			Trash: trashName(id, i, j, name), Recreate: fks})
	}
	for j, tc := range columns {
		t, col := tc[0], tc[1]
		def, err := r.columnDef(ctx, t, col)
		if err != nil {
			return nil, "", err
		}
		if def == nil {
			continue
		}
		if def.generated {
			return nil, fmt.Sprintf("%s.%s is a generated or identity column, which the trash cannot keep", t, pgx.Identifier{col}.Sanitize()), nil
		}
		key, why, err := r.valuesKey(ctx, t, col)
		if why != "" || err != nil {
			return nil, why, err
		}
		deps, err := r.recreatable(ctx, `SELECT 'constraint', c.conname, 'ALTER TABLE ' || $2 || ' ADD CONSTRAINT ' || pg_catalog.quote_ident(c.conname) || ' ' || pg_catalog.pg_get_constraintdef(c.oid)
FROM pg_catalog.pg_constraint c WHERE c.conrelid = pg_catalog.to_regclass($1) AND $3::int2 = ANY (c.conkey)
UNION ALL
SELECT 'index', i.relname, pg_catalog.pg_get_indexdef(i.oid)
FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class i ON i.oid = d.objid
WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
	AND d.refobjid = pg_catalog.to_regclass($1) AND d.refobjsubid = $3::int2 AND i.relkind = 'i'
	AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.oid)
ORDER BY 1, 2`, t, t, def.attnum)
		if err != nil {
			return nil, "", err
		}
		e := def.entry(id, i, "column", col)
		e.Trash, e.Key, e.Recreate = trashName(id, i, len(tables)+j, def.table+"_"+col), key, deps
		out = append(out, e)
	}
	for j, at := range alters {
		def, err := r.columnDef(ctx, at.table, at.column)
		if err != nil {
			return nil, "", err
		}
		if def == nil {
			continue
		}
		e := def.entry(id, i, "column_def", at.column)
		if at.retype {
			// A type change may change the values (a narrowing, a cast
			// that rounds): they are kept as they were.
			if def.generated {
				return nil, fmt.Sprintf("%s.%s is a generated or identity column, which the trash cannot keep", at.table, pgx.Identifier{at.column}.Sanitize()), nil
			}
			key, why, err := r.valuesKey(ctx, at.table, at.column)
			if why != "" || err != nil {
				return nil, why, err
			}
			e.Trash, e.Key = trashName(id, i, len(tables)+len(columns)+j, def.table+"_"+at.column), key
		}
		out = append(out, e)
	}
	return out, "", nil
}

// execTrash runs statement i, whose entries planTrash made, putting what
// it drops into the trash. A DROP TABLE first runs for real under a
// savepoint that is rolled back, so that PostgreSQL's own checks
// (ownership, what depends on the table) decide as they would have; the
// tables are then moved. A DROP COLUMN runs as written once the values
// are copied.
func (r *runner) execTrash(ctx context.Context, sql string, entries []TrashEntry) (pgconn.CommandTag, error) {
	moved := false
	for _, e := range entries {
		if e.Kind == "table" {
			moved = true
		}
	}
	trash := pgx.Identifier{TrashSchema}.Sanitize()
	if moved {
		if _, err := r.tx.Exec(ctx, "SAVEPOINT airlock_trash"); err != nil {
			return pgconn.CommandTag{}, err
		}
		if _, err := execOne(ctx, r.conn, sql); err != nil {
			return pgconn.CommandTag{}, err
		}
		if _, err := r.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT airlock_trash"); err != nil {
			return pgconn.CommandTag{}, err
		}
		if _, err := r.tx.Exec(ctx, "RELEASE SAVEPOINT airlock_trash"); err != nil {
			return pgconn.CommandTag{}, err
		}
	}
	for _, e := range entries {
		table := pgx.Identifier{e.Schema, e.Table}.Sanitize()
		var stmts []string
		switch e.Kind {
		case "table":
			for _, fk := range e.Recreate {
				stmts = append(stmts, "ALTER TABLE "+table+" DROP CONSTRAINT "+pgx.Identifier{fk.Name}.Sanitize())
			}
			stmts = append(stmts, "ALTER TABLE "+table+" RENAME TO "+pgx.Identifier{e.Trash}.Sanitize(),
				"ALTER TABLE "+pgx.Identifier{e.Schema, e.Trash}.Sanitize()+" SET SCHEMA "+trash)
		case "column", "column_def":
			if e.Trash == "" {
				continue
			}
			cols := make([]string, 0, len(e.Key)+1)
			for _, k := range e.Key {
				cols = append(cols, pgx.Identifier{k}.Sanitize())
			}
			cols = append(cols, pgx.Identifier{e.Column}.Sanitize())
			stmts = append(stmts, "CREATE TABLE "+pgx.Identifier{TrashSchema, e.Trash}.Sanitize()+" AS SELECT "+
				strings.Join(cols, ", ")+" FROM ONLY "+table)
		}
		for _, s := range stmts {
			if _, err := r.tx.Exec(ctx, s); err != nil {
				return pgconn.CommandTag{}, fmt.Errorf("keep %s in %s: %w", e.Name(), TrashSchema, err)
			}
		}
	}
	if moved {
		return pgconn.NewCommandTag("DROP TABLE"), nil
	}
	return execOne(ctx, r.conn, sql)
}

// trashStatement is how statement i runs under undo: planTrash's entries
// are recorded for the dry run's findings, and in a commit run that
// captures for undo the drop goes into the trash. run reports whether it
// ran the statement.
func (r *runner) trashStatement(ctx context.Context, i int, st *sqlguard.MigrationStatement, sql string, tree *pg.ParseResult) (tag pgconn.CommandTag, run bool, err error) {
	if !r.opt.Undo || !hasDrop(st) {
		return tag, false, nil
	}
	entries, reason, err := r.planTrash(ctx, i, tree)
	if err != nil {
		return tag, false, err
	}
	if r.trash == nil {
		r.trash = map[int][]TrashEntry{}
		r.trashBlocked = map[int]string{}
	}
	if reason != "" {
		r.trashBlocked[i] = reason
	}
	r.trash[i] = entries
	id := r.captureID(i)
	if id == "" || r.arg.Undo == nil {
		return tag, false, nil
	}
	if reason != "" {
		if r.arg.Undo.Irreversible == nil {
			r.arg.Undo.Irreversible = map[string]string{}
		}
		if _, ok := r.arg.Undo.Irreversible[id]; !ok {
			r.arg.Undo.Irreversible[id] = fmt.Sprintf("statement %d: %s", i+1, reason)
		}
		return tag, false, nil
	}
	tag, err = r.execTrash(ctx, sql, entries)
	if err != nil {
		return tag, true, err
	}
	r.arg.Undo.Trash = append(r.arg.Undo.Trash, entries...)
	return tag, true, nil
}

func hasDrop(st *sqlguard.MigrationStatement) bool {
	for _, k := range append([]string{st.Kind}, st.Kinds...) {
		switch k {
		case "drop_table", "drop_column", "alter_column_type", "set_default", "drop_default", "set_not_null", "drop_not_null":
			return true
		}
	}
	return false
}
