// FROM in reads: tables resolved against the policy and qualified,
// subqueries, functions, joins and column definition lists.

package sqlguard

import (
	"slices"
	"sort"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// fromItem registers the FROM item n (and, for joins, the items inside it)
// on lv, resolving and qualifying tables. It returns the items it added.
func (c *readChecker) fromItem(n *pg_query.Node, lv *readLevel) ([]*readItem, *Refusal) {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_RangeVar:
		it, r := c.rangeVar(x.RangeVar, lv)
		if r != nil {
			return nil, r
		}
		lv.items = append(lv.items, it)
		return []*readItem{it}, nil
	case *pg_query.Node_RangeSubselect:
		rs := x.RangeSubselect
		if r := readKnownFields(rs); r != nil {
			return nil, r
		}
		if rs.GetSubquery().GetSelectStmt() == nil {
			return nil, refuse("unsupported_syntax", readHintSyntax, "%s in FROM is not supported", readNodeName(rs.Subquery))
		}
		// Opaque until fromContents has checked the subquery.
		it := &readItem{out: readOutputs{opaque: true}, node: rs}
		if rs.Alias != nil {
			if r := readAlias(rs.Alias); r != nil {
				return nil, r
			}
			it.refname = rs.Alias.Aliasname
		}
		lv.items = append(lv.items, it)
		return []*readItem{it}, nil
	case *pg_query.Node_RangeFunction:
		rf := x.RangeFunction
		if r := readKnownFields(rf); r != nil {
			return nil, r
		}
		// Functions in FROM are opaque: a composite result names its own
		// columns.
		it := &readItem{out: readOutputs{opaque: true}}
		if rf.Alias != nil {
			if r := readAlias(rf.Alias); r != nil {
				return nil, r
			}
			it.refname = rf.Alias.Aliasname
		} else if len(rf.Functions) == 1 {
			if fc := rf.Functions[0].GetList().GetItems(); len(fc) > 0 {
				if names := fc[0].GetFuncCall().GetFuncname(); len(names) > 0 {
					it.refname = names[len(names)-1].GetString_().GetSval()
				}
			}
		}
		lv.items = append(lv.items, it)
		return []*readItem{it}, nil
	case *pg_query.Node_JoinExpr:
		return c.joinItems(x.JoinExpr, lv)
	}
	return nil, refuse("unsupported_syntax", readHintSyntax, "%s in FROM is not supported", readNodeName(n))
}

func (c *readChecker) rangeVar(rv *pg_query.RangeVar, lv *readLevel) (*readItem, *Refusal) {
	if rv.Catalogname != "" {
		return nil, refuse("table_not_in_scope", c.tablesHint(), "database-qualified name %s.%s.%s is not allowed",
			rv.Catalogname, rv.Schemaname, rv.Relname)
	}
	if r := readKnownFields(rv); r != nil {
		return nil, r
	}
	refname := rv.Relname
	if rv.Alias != nil {
		if r := readAlias(rv.Alias); r != nil {
			return nil, r
		}
		refname = rv.Alias.Aliasname
	}
	if rv.Schemaname == "" && lv.cteVisible(rv.Relname) {
		return &readItem{refname: refname, out: readAliased(lv.cteOutputs(rv.Relname), rv.Alias)}, nil
	}
	if c.verifying && rv.Schemaname == "" {
		return nil, refuse("unsupported_syntax", readHintSyntax, "table %s was not qualified by the rewrite", rv.Relname)
	}
	t := c.resolveTable(rv.Schemaname, rv.Relname)
	if t == nil {
		written := rv.Relname
		if rv.Schemaname != "" {
			written = rv.Schemaname + "." + rv.Relname
		}
		return nil, refuse("table_not_in_scope", c.tablesHint(), "table %s is not in scope", written)
	}
	rv.Schemaname = t.Schema
	rv.Relname = t.Name
	if t.ReadName != "" {
		// Read the masked view in the table's place, under the name the
		// query uses for the table.
		if rv.Alias == nil {
			rv.Alias = &pg_query.Alias{Aliasname: refname}
		}
		rv.Schemaname, rv.Relname = t.ReadSchema, t.ReadName
	}
	c.tables[t.QualifiedName()] = true
	it := &readItem{refname: refname, table: t}
	if rv.Alias == nil {
		it.schema = t.Schema
	} else if len(rv.Alias.Colnames) > 0 {
		if readTableRestricted(t) {
			return nil, refuse("column_alias_not_allowed", "alias the columns in the select list instead: SELECT c.id AS a, ...",
				"column aliases on %s are not allowed, because it has restricted columns", t.QualifiedName())
		}
		for _, n := range rv.Alias.Colnames {
			it.colAliases = append(it.colAliases, n.GetString_().GetSval())
		}
	}
	return it, nil
}

func (c *readChecker) resolveTable(schema, name string) *Table {
	if schema != "" {
		if t := c.policy.Tables[schema+"."+name]; t != nil {
			return t
		}
		if c.verifying {
			// The rewrite's own view names, checked a second time.
			for _, t := range c.policy.Tables {
				if t.ReadName != "" && t.ReadSchema == schema && t.ReadName == name {
					return t
				}
			}
		}
		return nil
	}
	path := c.policy.SearchPath
	if len(path) == 0 {
		path = []string{"public"}
	}
	for _, s := range path {
		if t := c.policy.Tables[s+"."+name]; t != nil {
			return t
		}
	}
	return nil
}

func (c *readChecker) tablesHint() string {
	names := make([]string, 0, len(c.policy.Tables))
	for k := range c.policy.Tables {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "no tables are in scope"
	}
	return "tables in scope: " + joinNames(names)
}

func (c *readChecker) joinItems(j *pg_query.JoinExpr, lv *readLevel) ([]*readItem, *Refusal) {
	if j.JoinUsingAlias != nil {
		return nil, refuse("unsupported_syntax", readHintSyntax, "JOIN ... USING (...) AS alias is not supported")
	}
	if r := readKnownFields(j); r != nil {
		return nil, r
	}
	left, r := c.fromItem(j.Larg, lv)
	if r != nil {
		return nil, r
	}
	right, r := c.fromItem(j.Rarg, lv)
	if r != nil {
		return nil, r
	}
	inside := slices.Concat(left, right)
	var bases []*readItem
	for _, it := range inside {
		if it.table != nil {
			bases = append(bases, it)
		}
	}
	if j.IsNatural {
		for _, it := range bases {
			if it.restricted() {
				return nil, refuse("natural_join_not_allowed", "spell the join out with ON or USING on allowed columns",
					"NATURAL JOIN with %s would join on columns you did not name", it.table.QualifiedName())
			}
		}
	}
	if r := readStrings(j.UsingClause, "USING column"); r != nil {
		return nil, r
	}
	for _, n := range j.UsingClause {
		name := n.GetString_().GetSval()
		for _, it := range bases {
			col := it.column(name)
			if col == nil {
				continue
			}
			if r := readColumnAccess(it, col); r != nil {
				return nil, r
			}
			if col.Access == Masked {
				return nil, readMaskedMisuse(name, "in JOIN ... USING")
			}
		}
	}
	if j.Alias == nil {
		return inside, nil
	}
	if r := readAlias(j.Alias); r != nil {
		return nil, r
	}
	it := &readItem{refname: j.Alias.Aliasname, members: bases}
	if len(j.Alias.Colnames) > 0 && it.restricted() {
		return nil, refuse("column_alias_not_allowed", "alias the columns in the select list instead: SELECT j.id AS a, ...",
			"column aliases on a join with restricted tables are not allowed")
	}
	lv.items = append(lv.items, it)
	return append(inside, it), nil
}

// fromContents checks what is inside the FROM item n: subqueries,
// function calls and join conditions.
func (c *readChecker) fromContents(n *pg_query.Node, lv *readLevel) *Refusal {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_RangeSubselect:
		// Every subquery in FROM is checked as if it were LATERAL: seeing
		// more FROM items only makes column checks stricter.
		out, r := c.selectStmt(x.RangeSubselect.GetSubquery().GetSelectStmt(), lv)
		if r != nil {
			return r
		}
		for _, it := range lv.items {
			if it.node == x.RangeSubselect {
				it.out = readAliased(out, x.RangeSubselect.Alias)
			}
		}
		return nil
	case *pg_query.Node_RangeFunction:
		rf := x.RangeFunction
		for _, f := range rf.Functions {
			l := f.GetList()
			if l == nil || len(l.Items) == 0 || len(l.Items) > 2 {
				return refuse("unsupported_syntax", readHintSyntax, "malformed function in FROM")
			}
			if r := c.expr(l.Items[0], lv); r != nil {
				return r
			}
			if len(l.Items) == 2 && l.Items[1].GetNode() != nil {
				defs := l.Items[1].GetList()
				if defs == nil {
					return refuse("unsupported_syntax", readHintSyntax, "%s as a column definition list is not supported", readNodeName(l.Items[1]))
				}
				if r := c.columnDefs(defs.Items, lv); r != nil {
					return r
				}
			}
		}
		return c.columnDefs(rf.Coldeflist, lv)
	case *pg_query.Node_JoinExpr:
		j := x.JoinExpr
		if r := c.fromContents(j.Larg, lv); r != nil {
			return r
		}
		if r := c.fromContents(j.Rarg, lv); r != nil {
			return r
		}
		return c.expr(j.Quals, lv)
	}
	return nil
}

func (c *readChecker) columnDefs(defs []*pg_query.Node, lv *readLevel) *Refusal {
	for _, n := range defs {
		cd := n.GetColumnDef()
		if cd == nil {
			return refuse("unsupported_syntax", readHintSyntax, "%s in a column definition list is not supported", readNodeName(n))
		}
		if r := readKnownFields(cd); r != nil {
			return r
		}
		if r := c.typeName(cd.TypeName, lv); r != nil {
			return r
		}
		if cd.CollClause != nil {
			if r := readKnownFields(cd.CollClause); r != nil {
				return r
			}
			if cd.CollClause.Arg != nil {
				return refuse("unsupported_syntax", readHintSyntax, "malformed column definition")
			}
			if r := readCollation(cd.CollClause.Collname); r != nil {
				return r
			}
		}
	}
	return nil
}
