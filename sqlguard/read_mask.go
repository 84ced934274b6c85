// Masked columns in reads: ORDER BY, GROUP BY and DISTINCT that reach a
// masked output, and the masked_column_misuse refusal.

package sqlguard

import (
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// maskedOutputRefs refuses ORDER BY, GROUP BY and DISTINCT that reach a
// masked output column through its output name or position, and plain
// DISTINCT, which sorts by every output column.
func (c *readChecker) maskedOutputRefs(s *pg_query.SelectStmt) *Refusal {
	for _, n := range s.DistinctClause {
		if n.GetNode() == nil {
			return readMaskedMisuse("", "by SELECT DISTINCT, which orders rows by the masked value")
		}
		if r := c.maskedOutputRef(n, "DISTINCT ON"); r != nil {
			return r
		}
	}
	for _, n := range s.SortClause {
		if r := c.maskedOutputRef(n.GetSortBy().GetNode(), "ORDER BY"); r != nil {
			return r
		}
	}
	for _, n := range s.GroupClause {
		if r := c.maskedOutputRef(n, "GROUP BY"); r != nil {
			return r
		}
	}
	return nil
}

func (c *readChecker) maskedOutputRef(n *pg_query.Node, clause string) *Refusal {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_ColumnRef:
		if f := x.ColumnRef.Fields; len(f) == 1 && c.maskedNames[f[0].GetString_().GetSval()] {
			return readMaskedMisuse(f[0].GetString_().GetSval(), "in "+clause+" (by its output name)")
		}
	case *pg_query.Node_AConst:
		if iv := x.AConst.GetIval(); iv != nil && !x.AConst.Isnull && slices.Contains(c.masked, int(iv.Ival)-1) {
			return readMaskedMisuse("", "in "+clause+" (by its output position)")
		}
	case *pg_query.Node_GroupingSet:
		for _, m := range x.GroupingSet.Content {
			if r := c.maskedOutputRef(m, clause); r != nil {
				return r
			}
		}
	case *pg_query.Node_RowExpr:
		for _, m := range x.RowExpr.Args {
			if r := c.maskedOutputRef(m, clause); r != nil {
				return r
			}
		}
	case *pg_query.Node_List:
		for _, m := range x.List.Items {
			if r := c.maskedOutputRef(m, clause); r != nil {
				return r
			}
		}
	}
	return nil
}

func readMaskedMisuse(col, where string) *Refusal {
	if col == "" {
		return refuse("masked_column_misuse", readHintMasked, "a masked column is used %s", where)
	}
	return refuse("masked_column_misuse", readHintMasked, "masked column %s is used %s", col, where)
}
