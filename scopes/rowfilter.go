package scopes

import (
	"errors"
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ParseRowFilter checks a scope's row_filter as far as it can be checked
// without a database, and returns its parse tree. source is parsed as the
// WHERE clause of SELECT 1 FROM table (table is "schema.name"): the text
// must be exactly one boolean expression (it cannot close the clause and
// append a UNION or a second statement), with no subquery, no reference
// to another table and no function outside pg_catalog. The error's text is
// the reason, in the words `airlock check` prints.
//
// The rule lives here, not in sqlguard, because it is part of what a valid
// scope file is: Parse must refuse a bad filter for every caller, with no
// validator to remember to pass (see doc.go). sqlguard.ParseRowFilter
// wraps it in the guard's Refusal; package roles checks what needs the
// catalog.
func ParseRowFilter(table, source string) (*pg_query.Node, error) {
	schema, rel, _ := strings.Cut(table, ".")
	tree, err := pg_query.Parse("SELECT 1 FROM " + quoteIdent(schema) + "." + quoteIdent(rel) + " WHERE " + source)
	if err != nil {
		return nil, fmt.Errorf("not a valid SQL expression: %v", err)
	}
	if len(tree.Stmts) != 1 {
		return nil, errors.New("must be one boolean expression, not several statements")
	}
	sel := tree.Stmts[0].GetStmt().GetSelectStmt()
	if sel == nil || sel.Op != pg_query.SetOperation_SETOP_NONE || sel.WhereClause == nil ||
		len(sel.FromClause) != 1 || len(sel.TargetList) != 1 || sel.WithClause != nil ||
		len(sel.GroupClause) > 0 || sel.HavingClause != nil || len(sel.SortClause) > 0 ||
		sel.LimitCount != nil || sel.LimitOffset != nil || len(sel.LockingClause) > 0 ||
		len(sel.WindowClause) > 0 || len(sel.DistinctClause) > 0 || sel.IntoClause != nil {
		return nil, errors.New("must be one boolean expression over the table's columns (a WHERE clause), nothing more")
	}
	var problem string
	walkMessages(sel.WhereClause.ProtoReflect(), func(m protoreflect.Message) bool {
		switch n := m.Interface().(type) {
		case *pg_query.SubLink:
			problem = "contains a subquery; a row filter may only use this table's columns, constants and functions"
		case *pg_query.ColumnRef:
			if q := columnQualifier(n); q != "" && q != rel && q != table {
				problem = fmt.Sprintf("refers to %q, another table; a row filter may only use this table's columns", q)
			}
		case *pg_query.FuncCall:
			if len(n.Funcname) > 1 {
				if s := n.Funcname[0].GetString_(); s == nil || s.Sval != "pg_catalog" {
					problem = "calls a function outside pg_catalog; a row filter may only use built-in functions"
				}
			}
		}
		return problem == ""
	})
	if problem != "" {
		return nil, errors.New(problem)
	}
	return sel.WhereClause, nil
}

// columnQualifier returns what a column reference is qualified with
// ("t" in t.col, "s.t" in s.t.col), or "" for a bare column.
func columnQualifier(c *pg_query.ColumnRef) string {
	var parts []string
	for _, f := range c.Fields {
		if s := f.GetString_(); s != nil {
			parts = append(parts, s.Sval)
		}
	}
	if len(parts) < 2 {
		return ""
	}
	return strings.Join(parts[:len(parts)-1], ".")
}

// walkMessages calls visit for m and every message below it, depth first,
// until visit returns false.
func walkMessages(m protoreflect.Message, visit func(protoreflect.Message) bool) bool {
	if !visit(m) {
		return false
	}
	ok := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && ok; i++ {
				ok = walkMessages(l.Get(i).Message(), visit)
			}
		} else {
			ok = walkMessages(v.Message(), visit)
		}
		return ok
	})
	return ok
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
