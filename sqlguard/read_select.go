// The SELECT walk of the read guard: set operations, WITH, the clauses of a
// plain SELECT and its select list, where masked outputs are recorded.

package sqlguard

import (
	"strconv"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// selectStmt checks a query and returns its output columns.
func (c *readChecker) selectStmt(s *pg_query.SelectStmt, parent *readLevel) (readOutputs, *Refusal) {
	var out readOutputs
	if s == nil {
		return out, refuse("unsupported_syntax", readHintSyntax, "empty query")
	}
	if s.IntoClause != nil {
		return out, refuse("select_into", "drop the INTO clause: results come back to you, nothing is written", "SELECT ... INTO creates a table")
	}
	if len(s.LockingClause) > 0 {
		return out, refuse("locking_clause", "drop the FOR UPDATE / FOR SHARE clause: reads take no row locks here", "row locking clauses are not allowed")
	}
	if r := readKnownFields(s); r != nil {
		return out, r
	}
	lv := &readLevel{parent: parent}
	if s.WithClause != nil {
		if r := c.withClause(s.WithClause, parent, lv); r != nil {
			return out, r
		}
	}
	switch s.Op {
	case pg_query.SetOperation_SETOP_NONE:
		if s.Larg != nil || s.Rarg != nil {
			return out, refuse("unsupported_syntax", readHintSyntax, "malformed SELECT")
		}
		return c.simpleSelect(s, lv)
	case pg_query.SetOperation_SETOP_UNION, pg_query.SetOperation_SETOP_INTERSECT, pg_query.SetOperation_SETOP_EXCEPT:
		if s.Larg == nil || s.Rarg == nil || len(s.TargetList) > 0 || len(s.FromClause) > 0 || s.WhereClause != nil ||
			len(s.GroupClause) > 0 || s.HavingClause != nil || len(s.WindowClause) > 0 || len(s.ValuesLists) > 0 || len(s.DistinctClause) > 0 {
			return out, refuse("unsupported_syntax", readHintSyntax, "malformed set operation")
		}
		// A set operation's columns are named by its left arm.
		out, r := c.selectStmt(s.Larg, lv)
		if r != nil {
			return out, r
		}
		if _, r := c.selectStmt(s.Rarg, lv); r != nil {
			return out, r
		}
		lv.outputs = out.names
		for _, n := range s.SortClause {
			if r := c.sortBy(n, lv, true); r != nil {
				return out, r
			}
		}
		return out, c.limit(s, lv)
	}
	return out, refuse("unsupported_syntax", readHintSyntax, "unknown set operation %s", s.Op)
}

func (c *readChecker) withClause(w *pg_query.WithClause, outer, lv *readLevel) *Refusal {
	if r := readKnownFields(w); r != nil {
		return r
	}
	ctes := make([]*pg_query.CommonTableExpr, 0, len(w.Ctes))
	names := make([]string, 0, len(w.Ctes))
	lv.cteOut = map[string]readOutputs{}
	for _, n := range w.Ctes {
		cte := n.GetCommonTableExpr()
		if cte == nil {
			return refuse("unsupported_syntax", readHintSyntax, "%s in WITH is not supported", readNodeName(n))
		}
		if cte.SearchClause != nil || cte.CycleClause != nil {
			return refuse("unsupported_syntax", readHintSyntax, "SEARCH and CYCLE clauses of WITH RECURSIVE are not supported")
		}
		if r := readKnownFields(cte); r != nil {
			return r
		}
		if r := readStrings(cte.Aliascolnames, "CTE column alias"); r != nil {
			return r
		}
		ctes = append(ctes, cte)
		names = append(names, cte.Ctename)
	}
	for i, cte := range ctes {
		q := cte.GetCtequery().GetSelectStmt()
		if q == nil {
			return refuse("data_modifying_cte", "WITH queries must be SELECTs here; writes go through migrate_dry_run / apply_migration_with_ticket",
				"WITH query %q is %s", cte.Ctename, readStatementName(cte.GetCtequery()))
		}
		// A non-recursive WITH query sees only the queries before it; under
		// RECURSIVE it sees all of them, itself included.
		visible := names[:i]
		if w.Recursive {
			visible = names
		}
		out, r := c.selectStmt(q, &readLevel{parent: outer, ctes: visible, cteOut: lv.cteOut})
		if r != nil {
			return r
		}
		if len(cte.Aliascolnames) > 0 {
			out = readAliased(out, &pg_query.Alias{Colnames: cte.Aliascolnames})
		}
		lv.cteOut[cte.Ctename] = out
	}
	lv.ctes = names
	return nil
}

func (c *readChecker) simpleSelect(s *pg_query.SelectStmt, lv *readLevel) (readOutputs, *Refusal) {
	out, r := c.simpleSelectClauses(s, lv)
	if r != nil {
		return out, r
	}
	if len(s.ValuesLists) > 0 {
		out = readOutputs{}
		for i := range s.ValuesLists[0].GetList().GetItems() {
			out.names = append(out.names, "column"+strconv.Itoa(i+1))
		}
	}
	return out, nil
}

func (c *readChecker) simpleSelectClauses(s *pg_query.SelectStmt, lv *readLevel) (readOutputs, *Refusal) {
	// FROM items first: every expression of the level resolves against
	// all of them.
	for _, n := range s.FromClause {
		if _, r := c.fromItem(n, lv); r != nil {
			return readOutputs{}, r
		}
	}
	for _, n := range s.FromClause {
		if r := c.fromContents(n, lv); r != nil {
			return readOutputs{}, r
		}
	}
	out, r := c.targetList(s, lv)
	if r != nil {
		return out, r
	}
	lv.outputs = out.names
	return out, c.clauses(s, lv)
}

// clauses checks everything of a plain SELECT after its FROM and select
// list.
func (c *readChecker) clauses(s *pg_query.SelectStmt, lv *readLevel) *Refusal {
	if r := c.expr(s.WhereClause, lv); r != nil {
		return r
	}
	for _, n := range s.GroupClause {
		if r := c.expr(n, lv); r != nil {
			return r
		}
	}
	if r := c.expr(s.HavingClause, lv); r != nil {
		return r
	}
	for _, n := range s.WindowClause {
		w := n.GetWindowDef()
		if w == nil {
			return refuse("unsupported_syntax", readHintSyntax, "%s in WINDOW is not supported", readNodeName(n))
		}
		if r := c.windowDef(w, lv); r != nil {
			return r
		}
	}
	for _, n := range s.DistinctClause {
		if n.GetNode() == nil { // plain DISTINCT is a list holding one empty node
			continue
		}
		if r := c.outputExpr(n, lv); r != nil {
			return r
		}
	}
	for _, n := range s.SortClause {
		if r := c.sortBy(n, lv, true); r != nil {
			return r
		}
	}
	for _, n := range s.ValuesLists {
		l := n.GetList()
		if l == nil {
			return refuse("unsupported_syntax", readHintSyntax, "%s in VALUES is not supported", readNodeName(n))
		}
		for _, e := range l.Items {
			if r := c.expr(e, lv); r != nil {
				return r
			}
		}
	}
	if r := c.limit(s, lv); r != nil {
		return r
	}
	if s == c.top && len(c.masked) > 0 {
		return c.maskedOutputRefs(s)
	}
	return nil
}

func (c *readChecker) limit(s *pg_query.SelectStmt, lv *readLevel) *Refusal {
	if r := c.expr(s.LimitCount, lv); r != nil {
		return r
	}
	return c.expr(s.LimitOffset, lv)
}

func (c *readChecker) targetList(s *pg_query.SelectStmt, lv *readLevel) (readOutputs, *Refusal) {
	var out readOutputs
	isTop := s == c.top
	star := false
	for i, n := range s.TargetList {
		rt := n.GetResTarget()
		if rt == nil || rt.Val == nil {
			return out, refuse("unsupported_syntax", readHintSyntax, "%s in the select list is not supported", readNodeName(n))
		}
		if r := readKnownFields(rt); r != nil {
			return out, r
		}
		readTargetNames(&out, rt, lv)
		cr := rt.Val.GetColumnRef()
		if cr == nil {
			if readIsStarIndirection(rt.Val) {
				star = true
			}
			if r := c.expr(rt.Val, lv); r != nil {
				return out, r
			}
			continue
		}
		ref, r := c.columnRef(cr, lv, readUseTarget)
		if r != nil {
			return out, r
		}
		if ref.star {
			star = true
		}
		if ref.masked {
			if !isTop {
				return out, readMaskedMisuse(ref.name, "inside a subquery, CTE, set operation or EXPLAIN")
			}
			c.masked = append(c.masked, i)
			name := rt.Name
			if name == "" {
				name = ref.name
			}
			c.maskedNames[name] = true
		}
	}
	if isTop && star && len(c.masked) > 0 {
		return out, refuse("masked_column_misuse", "list the output columns explicitly instead of * when selecting masked columns",
			"* next to a masked column makes the masked output positions ambiguous")
	}
	return out, nil
}
