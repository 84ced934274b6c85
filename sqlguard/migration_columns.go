// Columns in migrations: the read rules on denied and masked columns,
// CREATE TABLE ... LIKE, field notation that would call a function, and the
// columns a migration creates.

package sqlguard

import (
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// migLikeExpressions are the LIKE options that copy expressions of the
// source table (CREATE_TABLE_LIKE_CONSTRAINTS, _DEFAULTS, _GENERATED,
// _INDEXES, _STATISTICS in PostgreSQL's parsenodes.h).
const migLikeExpressions = 1<<2 | 1<<3 | 1<<4 | 1<<6 | 1<<7

// migLikeAll is CREATE_TABLE_LIKE_ALL and migLikeKnown every option bit
// PostgreSQL defines (COMMENTS through STORAGE).
const (
	migLikeAll   = 1<<31 - 1
	migLikeKnown = 1<<9 - 1
)

// checkLikes bounds CREATE TABLE ... (LIKE source): it copies the name and
// type of every column of the source, and with INCLUDING DEFAULTS,
// CONSTRAINTS, GENERATED, INDEXES or STATISTICS the expressions in them,
// none of which is in the statement for the guard to check. A source with
// restricted columns is refused; expressions may only come from a
// writable table.
func (c *migStmt) checkLikes() *Refusal {
	for _, l := range c.walk.likes {
		q := c.relationName(l.Relation)
		if t := c.read.Tables[q]; t != nil && readTableRestricted(t) {
			return c.refuse("like_not_allowed", "list the new table's columns: "+joinNames(t.AllowedColumns()),
				"LIKE %s would copy the definitions of its restricted columns", q)
		}
		if l.Options&migLikeExpressions != 0 && !c.writable(q) {
			return c.refuse("like_not_allowed", "copy only the columns (LIKE without INCLUDING DEFAULTS, CONSTRAINTS, GENERATED, INDEXES or STATISTICS), or write the expressions out",
				"LIKE %s would copy expressions of a table that is not writable", q)
		}
	}
	return nil
}

// recordColumns notes the columns the statement creates, adds or renames
// to, before the checks that look for them: they are columns of their
// table for this statement and the ones after it.
func (c *migStmt) recordColumns() *Refusal {
	add := func(table, col string) {
		if table != "" {
			c.newColumns[table+"."+col] = true
		}
	}
	switch s := c.raw.Stmt.Node.(type) {
	case *pg.Node_CreateStmt:
		for _, e := range s.CreateStmt.TableElts {
			if cd := e.GetColumnDef(); cd != nil {
				add(c.targets[s.CreateStmt.Relation], cd.Colname)
			}
		}
	case *pg.Node_AlterTableStmt:
		for _, n := range s.AlterTableStmt.Cmds {
			if cd := n.GetAlterTableCmd().GetDef().GetColumnDef(); cd != nil && n.GetAlterTableCmd().Subtype == pg.AlterTableType_AT_AddColumn {
				add(c.targets[s.AlterTableStmt.Relation], cd.Colname)
			}
		}
	case *pg.Node_RenameStmt:
		if s.RenameStmt.RenameType == pg.ObjectType_OBJECT_COLUMN {
			add(c.targets[s.RenameStmt.Relation], s.RenameStmt.Newname)
		}
	}
	return nil
}

// checkFieldNotation refuses t.f and (t).f where t is a row of a table whose
// columns the guard knows and f is none of them, and (ROW(...)).f:
// PostgreSQL reads those as the call f(t), with f looked up through the
// search path, which no FunctionChecker and no qualification sees.
func (c *migStmt) checkFieldNotation() *Refusal {
	known := map[string][]*Table{}
	for _, ref := range c.walk.rangeVars {
		rv := ref.rv
		if ref.cte || rv == c.newRel || slices.Contains(c.walk.noNamespace, rv) {
			continue
		}
		q := c.relationName(rv)
		t := c.read.Tables[q]
		if t == nil {
			continue
		}
		if rv.Alias != nil {
			known[rv.Alias.Aliasname] = append(known[rv.Alias.Aliasname], t)
			continue
		}
		known[rv.Relname] = append(known[rv.Relname], t)
		known[q] = append(known[q], t)
	}
	field := func(qual []string, f string) *Refusal {
		for _, t := range known[strings.Join(qual, ".")] {
			if t.Column(f) != nil || readSystemColumns[f] || c.newColumns[t.QualifiedName()+"."+f] {
				continue
			}
			return c.refuse("column_not_allowed", "columns of "+t.QualifiedName()+": "+joinNames(t.AllowedColumns()),
				"%s has no column %s: %s.%s would call a function %s(%s)", t.QualifiedName(), f, strings.Join(qual, "."), f, f, strings.Join(qual, "."))
		}
		return nil
	}
	for _, ref := range c.walk.columns {
		names := migStrings(ref.Fields)
		if len(names) != len(ref.Fields) || len(names) < 2 {
			continue
		}
		if r := field(names[:len(names)-1], names[len(names)-1]); r != nil {
			return r
		}
	}
	for _, ind := range c.walk.indirections {
		if len(ind.Indirection) == 0 || ind.Indirection[0].GetString_() == nil {
			continue
		}
		f := ind.Indirection[0].GetString_().Sval
		if ind.Arg.GetRowExpr() != nil {
			return c.refuse("function_not_allowed", "select the value itself instead of a field of ROW(...)",
				"(ROW(...)).%s would call a function %s(record) looked up through the search path", f, f)
		}
		cr := ind.Arg.GetColumnRef()
		if cr == nil {
			continue
		}
		names := migStrings(cr.Fields)
		switch {
		case len(cr.Fields) == 1 && len(names) == 1:
		case len(cr.Fields) == 2 && len(names) == 1 && cr.Fields[1].GetAStar() != nil:
		default:
			continue // a field of a column: a composite value, not a row
		}
		if r := field(names, f); r != nil {
			return r
		}
	}
	return nil
}

// migGuarded is a table with a read rule that denies or masks columns,
// with the names a column reference may qualify it by.
type migGuarded struct {
	table *Table
	names []string
}

// checkColumns applies the read rules to every column reference; see
// CheckMigration for the (conservative) rules.
func (c *migStmt) checkColumns() *Refusal {
	guarded := c.guardedTables()
	for _, con := range c.walk.constraints {
		if r := c.checkForeignKey(con); r != nil {
			return r
		}
	}
	if len(guarded) == 0 {
		return nil
	}
	for _, ref := range c.walk.columns {
		if r := c.checkColumnRef(ref, guarded); r != nil {
			return r
		}
	}
	for _, j := range c.walk.joins {
		if j.IsNatural {
			return c.refuse("column_not_allowed", "join with ON and name the allowed columns",
				"NATURAL JOIN compares every same-named column, including restricted ones of %s", guarded[0].table.QualifiedName())
		}
		for _, name := range migStrings(j.UsingClause) {
			for _, g := range guarded {
				if r := c.checkColumn(g.table, name); r != nil {
					return r
				}
			}
		}
	}
	return nil
}

func (c *migStmt) guardedTables() []migGuarded {
	var out []migGuarded
	seen := map[*pg.RangeVar]bool{}
	for _, ref := range c.walk.rangeVars {
		rv := ref.rv
		_, target := c.targets[rv]
		if ref.cte && !target || seen[rv] || slices.Contains(c.walk.noNamespace, rv) {
			continue
		}
		seen[rv] = true
		t := c.read.Tables[c.relationName(rv)]
		if t == nil || !readTableRestricted(t) {
			continue
		}
		names := []string{rv.Relname, t.QualifiedName()}
		if rv.Alias != nil {
			names = append(names, rv.Alias.Aliasname)
		}
		out = append(out, migGuarded{table: t, names: names})
	}
	return out
}

func (c *migStmt) checkColumnRef(ref *pg.ColumnRef, guarded []migGuarded) *Refusal {
	var names []string
	star := false
	for _, f := range ref.Fields {
		switch {
		case f.GetString_() != nil:
			names = append(names, f.GetString_().Sval)
		case f.GetAStar() != nil:
			star = true
		}
	}
	match := func(qual []string) *migGuarded {
		if len(qual) == 0 {
			return nil
		}
		key := strings.Join(qual, ".")
		for i := range guarded {
			if slices.Contains(guarded[i].names, key) {
				return &guarded[i]
			}
		}
		return nil
	}
	if star {
		if len(names) == 0 {
			return c.refuse("column_not_allowed", "name the allowed columns instead of *: "+joinNames(guarded[0].table.AllowedColumns()),
				"* would include restricted columns of %s", guarded[0].table.QualifiedName())
		}
		if g := match(names); g != nil {
			return c.refuse("column_not_allowed", "name the allowed columns instead of *: "+joinNames(g.table.AllowedColumns()),
				"%s.* would include restricted columns of %s", strings.Join(names, "."), g.table.QualifiedName())
		}
		return nil
	}
	if len(names) == 1 {
		if g := match(names); g != nil {
			return c.refuse("column_not_allowed", "name the allowed columns: "+joinNames(g.table.AllowedColumns()),
				"%s refers to whole rows of %s, including restricted columns", names[0], g.table.QualifiedName())
		}
		for _, g := range guarded {
			if r := c.checkColumn(g.table, names[0]); r != nil {
				return r
			}
		}
		return nil
	}
	if g := match(names[:len(names)-1]); g != nil {
		col := names[len(names)-1]
		if g.table.Column(col) == nil {
			return c.refuse("column_not_allowed", "allowed columns: "+joinNames(g.table.AllowedColumns()),
				"%s has no column %s in scope", g.table.QualifiedName(), col)
		}
		return c.checkColumn(g.table, col)
	}
	return nil
}

func (c *migStmt) checkColumn(t *Table, name string) *Refusal {
	col := t.Column(name)
	if col == nil || col.Access == Allowed {
		return nil
	}
	hint := "allowed columns of " + t.QualifiedName() + ": " + joinNames(t.AllowedColumns())
	if col.Access == Masked {
		return c.refuse("column_not_allowed", hint,
			"%s.%s is masked: a migration would copy or compare its real value", t.QualifiedName(), name)
	}
	return c.refuse("column_not_allowed", hint, "%s.%s is not in scope", t.QualifiedName(), name)
}

// checkForeignKey applies the read rules to the columns a FOREIGN KEY
// references: inserting into the referencing table would test values
// against them.
func (c *migStmt) checkForeignKey(con *pg.Constraint) *Refusal {
	if con.Contype != pg.ConstrType_CONSTR_FOREIGN || con.Pktable == nil {
		return nil
	}
	t := c.read.Tables[c.relationName(con.Pktable)]
	if t == nil || !readTableRestricted(t) {
		return nil
	}
	cols := migStrings(con.PkAttrs)
	if len(cols) == 0 {
		return c.refuse("column_not_allowed", "name the referenced columns: REFERENCES "+t.QualifiedName()+" (column)",
			"a foreign key to %s must name the columns it references", t.QualifiedName())
	}
	for _, name := range cols {
		if t.Column(name) == nil {
			return c.refuse("column_not_allowed", "allowed columns: "+joinNames(t.AllowedColumns()),
				"%s has no column %s in scope", t.QualifiedName(), name)
		}
		if r := c.checkColumn(t, name); r != nil {
			return r
		}
	}
	return nil
}
