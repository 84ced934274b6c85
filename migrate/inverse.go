package migrate

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Inverse is the DDL that undoes a committed change's schema changes
// (docs/architecture.md, Undo): Recreate brings back what it dropped or
// renamed, and runs before the rows are restored (they may belong to a
// table or column that comes back); Drop removes what it added, after.
type Inverse struct {
	Recreate []string
	Drop     []string
}

// InverseOf computes the inverse of diff, the schema diff a change's dry
// run recorded, with trash the entries its commit put into the trash. A
// change a revert cannot undo is an error saying why.
//
// Undoing goes backwards through the change. The rows a change captured
// are restored in one step, so the DDL that must be undone before them
// (what the rows may belong to: tables and columns brought back, names
// renamed back) is in Recreate, and the rest in Drop. A column definition
// changed before the change's last row change on that table is undone
// after the rows (lastRowStmt says when that was; nil when unknown, as in
// a dry run that only asks whether an inverse exists).
func InverseOf(diff SchemaDiff, trash []TrashEntry, lastRowStmt func(schema, table string) int) (*Inverse, error) {
	byName := map[string]*TrashEntry{}
	covered := map[string]bool{} // indexes and constraints a trash entry recreates
	for i := range trash {
		e := &trash[i]
		// The first entry of an object says how it was before the change.
		if byName[e.Kind+" "+e.Name()] == nil {
			byName[e.Kind+" "+e.Name()] = e
		}
		for _, rc := range e.Recreate {
			if rc.Object == "index" {
				covered["index "+e.Schema+"."+rc.Name] = true
			} else {
				covered["constraint "+e.Schema+"."+e.Table+"."+rc.Name] = true
			}
		}
	}
	// A rename changes the text of the indexes and constraints that name
	// the table or column, which renaming back restores: such a change is
	// covered when undoing the renames in its new text gives its old one.
	var undoRenames []string
	for _, ch := range diff.Changes {
		if ch.Action != "renamed" {
			continue
		}
		if ch.Object == "column" {
			undoRenames = append(undoRenames, pgx.Identifier{ch.After}.Sanitize(), pgx.Identifier{ch.Before}.Sanitize(), ch.After, ch.Before)
		} else {
			undoRenames = append(undoRenames, ch.After, ch.Before)
		}
	}
	renamedBack := strings.NewReplacer(undoRenames...)
	var tables, columns, indexes, constraints []string
	var back, fill, deps, renameCols, renameTables, redefine, emptied []string
	droppedTable := map[string]bool{}
	for _, ch := range diff.Changes {
		if ch.Action == "changed" && (ch.Object == "index" || ch.Object == "constraint") && len(undoRenames) > 0 &&
			renamedBack.Replace(ch.After) == ch.Before {
			continue
		}
		parts := strings.Split(ch.Name, ".")
		switch ch.Action {
		case "added":
		case "dropped":
			e := byName[ch.Object+" "+ch.Name]
			switch {
			case e != nil && e.Kind == "table":
				back = append(back,
					"ALTER TABLE "+pgx.Identifier{TrashSchema, e.Trash}.Sanitize()+" SET SCHEMA "+pgx.Identifier{e.Schema}.Sanitize(),
					"ALTER TABLE "+pgx.Identifier{e.Schema, e.Trash}.Sanitize()+" RENAME TO "+pgx.Identifier{e.Table}.Sanitize())
				for _, rc := range e.Recreate {
					deps = append(deps, rc.SQL)
				}
			case e != nil && e.Kind == "column":
				table := pgx.Identifier{e.Schema, e.Table}.Sanitize()
				col := pgx.Identifier{e.Column}.Sanitize()
				back = append(back, "ALTER TABLE "+table+" ADD COLUMN "+col+" "+e.Type+e.Collate)
				fill = append(fill, fillFromTrash(e, ""))
				emptied = append(emptied, "DROP TABLE "+pgx.Identifier{TrashSchema, e.Trash}.Sanitize())
				if e.Default != "" {
					fill = append(fill, "ALTER TABLE "+table+" ALTER COLUMN "+col+" SET DEFAULT "+e.Default)
				}
				if e.NotNull {
					fill = append(fill, "ALTER TABLE "+table+" ALTER COLUMN "+col+" SET NOT NULL")
				}
				if e.Comment != "" {
					fill = append(fill, "COMMENT ON COLUMN "+table+"."+col+" IS "+quoteLiteral(e.Comment))
				}
				for _, rc := range e.Recreate {
					deps = append(deps, rc.SQL)
				}
			case covered[ch.Object+" "+ch.Name]:
			default:
				return nil, fmt.Errorf("its %s %s was dropped and airlock kept nothing to bring it back from", ch.Object, ch.Name)
			}
			continue
		case "renamed":
			switch {
			case (ch.Object == "table" || ch.Object == "view") && len(parts) == 2 && len(strings.Split(ch.After, ".")) == 2:
				after := strings.Split(ch.After, ".")
				if after[0] != parts[0] {
					return nil, fmt.Errorf("its %s %s moved to another schema, which a revert cannot undo", ch.Object, ch.Name)
				}
				renameTables = append(renameTables, "ALTER TABLE "+pgx.Identifier(after).Sanitize()+" RENAME TO "+pgx.Identifier{parts[1]}.Sanitize())
			case ch.Object == "column" && len(parts) == 3:
				renameCols = append(renameCols, "ALTER TABLE "+pgx.Identifier(parts[:2]).Sanitize()+" RENAME COLUMN "+
					pgx.Identifier{ch.After}.Sanitize()+" TO "+pgx.Identifier{ch.Before}.Sanitize())
			default:
				return nil, fmt.Errorf("its %s %s was renamed in a way airlock cannot take apart", ch.Object, ch.Name)
			}
			continue
		case "changed":
			e := byName["column_def "+ch.Name]
			if ch.Object != "column" || e == nil {
				return nil, fmt.Errorf("its %s %s was changed, which a revert cannot undo", ch.Object, ch.Name)
			}
			table := pgx.Identifier{e.Schema, e.Table}.Sanitize()
			col := pgx.Identifier{e.Column}.Sanitize()
			alter := "ALTER TABLE " + table + " ALTER COLUMN " + col
			back, fill := &back, &fill
			if lastRowStmt != nil && e.Stmt < lastRowStmt(e.Schema, e.Table) {
				// Rows changed after the definition did were captured in it.
				back, fill = &redefine, &redefine
			}
			// Default and NOT NULL first come off, so that neither stands in
			// the way of the type; then each is as it was.
			*back = append(*back, alter+" DROP DEFAULT", alter+" DROP NOT NULL")
			if e.Trash != "" {
				// Values added since are cast back (a revert fails on one that
				// does not fit); the values the change converted come back
				// from their copy.
				*back = append(*back, alter+" TYPE "+e.Type+e.Collate+" USING "+col+"::"+e.Type)
				*fill = append(*fill, fillFromTrash(e, " AND airlock_cur."+col+" IS DISTINCT FROM airlock_old."+col))
				emptied = append(emptied, "DROP TABLE "+pgx.Identifier{TrashSchema, e.Trash}.Sanitize())
			}
			if e.Default != "" {
				*fill = append(*fill, alter+" SET DEFAULT "+e.Default)
			}
			if e.NotNull {
				*fill = append(*fill, alter+" SET NOT NULL")
			}
			continue
		default:
			return nil, fmt.Errorf("its %s %s was %s, which a revert cannot undo", ch.Object, ch.Name, ch.Action)
		}
		switch {
		case (ch.Object == "table" || ch.Object == "view") && len(parts) == 2:
			droppedTable[ch.Name] = true
			kw := "TABLE"
			if ch.Object == "view" {
				kw = "VIEW"
			}
			tables = append(tables, "DROP "+kw+" "+pgx.Identifier(parts).Sanitize())
		case ch.Object == "column" && len(parts) == 3:
			columns = append(columns, strings.Join(parts[:2], ".")+"\x00"+"ALTER TABLE "+pgx.Identifier(parts[:2]).Sanitize()+" DROP COLUMN "+pgx.Identifier{parts[2]}.Sanitize())
		case ch.Object == "index" && len(parts) == 2:
			indexes = append(indexes, "DROP INDEX "+pgx.Identifier(parts).Sanitize())
		case ch.Object == "constraint" && len(parts) == 3:
			constraints = append(constraints, strings.Join(parts[:2], ".")+"\x00"+"ALTER TABLE "+pgx.Identifier(parts[:2]).Sanitize()+" DROP CONSTRAINT "+pgx.Identifier{parts[2]}.Sanitize())
		default:
			return nil, fmt.Errorf("its added %s %s has a name airlock cannot take apart", ch.Object, ch.Name)
		}
	}
	inv := &Inverse{Drop: redefine}
	// Columns are renamed back while their table still has its new name;
	// indexes and constraints come back once every table and column has.
	inv.Recreate = append(inv.Recreate, renameCols...)
	inv.Recreate = append(inv.Recreate, renameTables...)
	inv.Recreate = append(inv.Recreate, back...)
	inv.Recreate = append(inv.Recreate, fill...)
	inv.Recreate = append(inv.Recreate, deps...)
	// A constraint or column of a table the revert drops goes with it.
	for _, list := range [][]string{constraints} {
		for _, con := range list {
			table, stmt, _ := strings.Cut(con, "\x00")
			if !droppedTable[table] {
				inv.Drop = append(inv.Drop, stmt)
			}
		}
	}
	inv.Drop = append(inv.Drop, indexes...)
	for _, col := range columns {
		table, stmt, _ := strings.Cut(col, "\x00")
		if !droppedTable[table] {
			inv.Drop = append(inv.Drop, stmt)
		}
	}
	inv.Drop = append(inv.Drop, tables...)
	// A copy that has served is not kept for the reaper.
	inv.Drop = append(inv.Drop, emptied...)
	return inv, nil
}

// fillFromTrash sets e's column from its copy in the trash, row by key.
func fillFromTrash(e *TrashEntry, and string) string {
	on := make([]string, len(e.Key))
	for i, k := range e.Key {
		k := pgx.Identifier{k}.Sanitize()
		on[i] = "airlock_cur." + k + " = airlock_old." + k
	}
	col := pgx.Identifier{e.Column}.Sanitize()
	return "UPDATE " + pgx.Identifier{e.Schema, e.Table}.Sanitize() + " AS airlock_cur SET " + col + " = airlock_old." + col +
		" FROM " + pgx.Identifier{TrashSchema, e.Trash}.Sanitize() + " AS airlock_old WHERE " + strings.Join(on, " AND ") + and
}
