// Findings: the parse-tree warnings a migration statement carries (data
// loss, breaking renames, locks and rewrites), and the catalog documenting
// their codes.

package sqlguard

import (
	"fmt"
	"strings"

	"github.com/airlock-dev/airlock/codes"
	pg "github.com/pganalyze/pg_query_go/v6"
)

// FindingInfo documents one finding code for the findings page.
type FindingInfo struct {
	Title string
	Level string
	Fix   string
}

// FindingCatalog documents every finding code CheckMigration emits: the
// registry's parse-tree part (codes.ParseTree), which docs/findings.md is
// generated from. The runtime report (dry run) adds its own codes.
var FindingCatalog = func() map[string]FindingInfo {
	m := map[string]FindingInfo{}
	for code, f := range codes.FindingsBy(codes.ParseTree) {
		m[code] = FindingInfo{Title: f.Title, Level: string(f.Level), Fix: f.Fix}
	}
	return m
}()

// VolatilityReporter may be implemented by a FunctionChecker that knows
// each function's volatility from the catalog (pg_proc.provolatile: 'i',
// 's' or 'v'; ok false when it does not know the function). CheckMigration
// uses it, or a FunctionRule's Volatility table, to decide PG302; without
// either, a short built-in list of non-volatile functions decides and every
// other function counts as possibly volatile.
type VolatilityReporter interface {
	FunctionVolatility(schema, name string) (volatility byte, ok bool)
}

// migNonVolatile are functions known not to be volatile, used for PG302 when
// the FunctionChecker cannot tell. A STABLE or IMMUTABLE default is
// evaluated once by ADD COLUMN and does not rewrite the table.
var migNonVolatile = map[string]bool{
	"now": true, "transaction_timestamp": true, "statement_timestamp": true,
	"lower": true, "upper": true, "length": true, "abs": true, "round": true,
	"md5": true, "to_char": true, "make_date": true, "make_interval": true,
	"json_build_object": true, "jsonb_build_object": true,
}

func (c *migStmt) finding(code, format string, args ...any) {
	info := FindingCatalog[code]
	c.out.Findings = append(c.out.Findings, Finding{
		Code:      code,
		Level:     info.Level,
		Message:   fmt.Sprintf(format, args...),
		Fix:       info.Fix,
		Statement: c.index,
	})
}

// findings adds the parse-tree findings of the statement.
func (c *migStmt) findings() {
	switch s := c.raw.Stmt.Node.(type) {
	case *pg.Node_DropStmt:
		if s.DropStmt.RemoveType == pg.ObjectType_OBJECT_TABLE {
			for _, t := range c.out.Targets {
				c.finding("DS102", "data loss: drops table %s", t)
			}
		}
	case *pg.Node_TruncateStmt:
		for _, t := range c.out.Targets {
			c.finding("DS104", "data loss: removes every row of %s", t)
		}
	case *pg.Node_DeleteStmt:
		if !c.out.HasWhere {
			c.finding("DL101", "DELETE without WHERE removes every row of %s", c.out.Targets[0])
		}
	case *pg.Node_UpdateStmt:
		if !c.out.HasWhere {
			c.finding("DL102", "UPDATE without WHERE changes every row of %s", c.out.Targets[0])
		}
	case *pg.Node_RenameStmt:
		table := c.targets[s.RenameStmt.Relation]
		switch s.RenameStmt.RenameType {
		case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW:
			c.finding("BC101", "renames %s to %s: code using the old name breaks", table, s.RenameStmt.Newname)
		case pg.ObjectType_OBJECT_COLUMN:
			c.finding("BC102", "renames column %s.%s to %s: code using the old name breaks", table, s.RenameStmt.Subname, s.RenameStmt.Newname)
		}
	case *pg.Node_IndexStmt:
		c.finding("PG101", "CREATE INDEX on %s blocks writes to it (SHARE lock) while the index builds", c.out.Targets[0])
	case *pg.Node_AlterTableStmt:
		table := c.targets[s.AlterTableStmt.Relation]
		for _, n := range s.AlterTableStmt.Cmds {
			c.alterFindings(table, n.GetAlterTableCmd())
		}
	case *pg.Node_DoStmt, *pg.Node_CallStmt:
		c.finding("CD101", "%s runs procedural code: its tables, functions and effects were not checked", strings.ToUpper(c.out.Kind))
	}
}

func (c *migStmt) alterFindings(table string, cmd *pg.AlterTableCmd) {
	switch cmd.Subtype {
	case pg.AlterTableType_AT_DropColumn:
		c.finding("DS103", "data loss: drops column %s.%s", table, cmd.Name)
	case pg.AlterTableType_AT_SetNotNull:
		c.finding("MF104", "SET NOT NULL on %s.%s scans the whole table under ACCESS EXCLUSIVE", table, cmd.Name)
	case pg.AlterTableType_AT_AlterColumnType:
		c.finding("PG301", "changing the type of %s.%s may rewrite the table under ACCESS EXCLUSIVE; narrowing loses data", table, cmd.Name)
	case pg.AlterTableType_AT_AddColumn:
		c.addColumnFindings(table, cmd.Def.GetColumnDef())
	case pg.AlterTableType_AT_AddConstraint:
		con := cmd.Def.GetConstraint()
		switch con.GetContype() {
		case pg.ConstrType_CONSTR_CHECK, pg.ConstrType_CONSTR_FOREIGN:
			if con.SkipValidation {
				c.out.NotValid = true
				return
			}
			c.finding("PG305", "adding %s checks every existing row of %s while holding its lock",
				migConstraintName(con), table)
		case pg.ConstrType_CONSTR_UNIQUE, pg.ConstrType_CONSTR_PRIMARY, pg.ConstrType_CONSTR_EXCLUSION:
			if con.Indexname != "" {
				return
			}
			c.finding("PG305", "adding %s builds an index on %s under ACCESS EXCLUSIVE",
				migConstraintName(con), table)
		}
	}
}

func (c *migStmt) addColumnFindings(table string, cd *pg.ColumnDef) {
	if cd == nil {
		return
	}
	col := table + "." + cd.Colname
	notNull := cd.IsNotNull
	deflt := cd.RawDefault
	generated := ""
	for _, n := range cd.Constraints {
		con := n.GetConstraint()
		switch con.GetContype() {
		case pg.ConstrType_CONSTR_NOTNULL, pg.ConstrType_CONSTR_PRIMARY:
			notNull = true
		case pg.ConstrType_CONSTR_DEFAULT:
			deflt = con.RawExpr
		case pg.ConstrType_CONSTR_IDENTITY:
			generated = "an identity column"
		case pg.ConstrType_CONSTR_GENERATED:
			generated = "a stored generated column"
		}
	}
	if generated == "" && migIsSerial(cd.TypeName) {
		generated = "a serial column"
	}
	switch {
	case generated != "":
		c.finding("PG302", "adding %s %s fills every existing row and rewrites %s", generated, col, table)
	case deflt != nil:
		if f, known := c.volatileCall(deflt); f != "" {
			what := "is volatile"
			if !known {
				what = "is not known to be non-volatile"
			}
			c.finding("PG302", "the default of %s calls %s, which %s: every existing row is written and %s rewritten", col, f, what, table)
		}
	case notNull:
		c.finding("MF103", "adding NOT NULL column %s without a default fails when %s has rows", col, table)
	}
}

// volatileCall returns the first function in expr that is volatile (known
// true) or not known to be non-volatile (known false).
func (c *migStmt) volatileCall(expr *pg.Node) (name string, known bool) {
	var k migWalk
	k.node(expr.ProtoReflect(), nil)
	for _, f := range k.funcs {
		schema, name, _ := migFuncName(f)
		if v, ok := migVolatility(c.read.Functions, schema, name); ok {
			if v == 'v' {
				return migQualify(schema, name), true
			}
			continue
		}
		if (schema == "" || schema == "pg_catalog") && migNonVolatile[name] {
			continue
		}
		return migQualify(schema, name), false
	}
	return "", false
}

// migVolatility asks the function checker for a function's volatility.
func migVolatility(fc FunctionChecker, schema, name string) (byte, bool) {
	var table map[string]byte
	switch r := fc.(type) {
	case VolatilityReporter:
		return r.FunctionVolatility(schema, name)
	case FunctionRule:
		table = r.Volatility
	case *FunctionRule:
		table = r.Volatility
	}
	if schema != "" && schema != "pg_catalog" {
		return 0, false
	}
	v, ok := table[name]
	return v, ok
}

func migIsSerial(t *pg.TypeName) bool {
	names := migStrings(t.GetNames())
	if len(names) != 1 {
		return false
	}
	switch names[0] {
	case "serial", "serial4", "bigserial", "serial8", "smallserial", "serial2":
		return true
	}
	return false
}

// migConstraintName describes a constraint: "CHECK constraint c".
func migConstraintName(con *pg.Constraint) string {
	word := migConstraintWord(con.Contype) + " constraint"
	if con.Conname == "" {
		return word
	}
	return word + " " + con.Conname
}

func migConstraintWord(t pg.ConstrType) string {
	switch t {
	case pg.ConstrType_CONSTR_CHECK:
		return "CHECK"
	case pg.ConstrType_CONSTR_FOREIGN:
		return "FOREIGN KEY"
	case pg.ConstrType_CONSTR_UNIQUE:
		return "UNIQUE"
	case pg.ConstrType_CONSTR_PRIMARY:
		return "PRIMARY KEY"
	case pg.ConstrType_CONSTR_EXCLUSION:
		return "EXCLUDE"
	}
	return strings.TrimPrefix(t.String(), "CONSTR_")
}
