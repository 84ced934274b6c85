package sqlguard

import (
	"math"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// readCapAlias names the subquery that wraps a statement whose own LIMIT
// cannot be lowered in place.
const readCapAlias = "airlock_capped"

// readCapRows makes the top-level SELECT of raw stop at maxRows+1 rows, so
// the caller can both return maxRows rows and say that more exist. It
// reports whether the statement had to be wrapped. maxRows <= 0 means no
// cap.
//
// A missing LIMIT is added and a constant one lowered in place. Anything
// else (LIMIT ALL or NULL, a parameter, an expression, FETCH ... WITH TIES)
// is left as written and the statement is wrapped: reasoning about what
// such a LIMIT evaluates to is exactly the kind of cleverness a guard should
// not need.
func readCapRows(raw *pg_query.RawStmt, maxRows int) bool {
	if maxRows <= 0 {
		return false
	}
	s := raw.GetStmt().GetSelectStmt()
	if s == nil {
		return false
	}
	// pg_query keeps integer constants in 32 bits; a cap that large is no
	// cap in practice.
	n := int32(math.MaxInt32)
	if maxRows < math.MaxInt32 {
		n = int32(maxRows + 1)
	}
	switch {
	case s.LimitCount == nil && s.LimitOption != pg_query.LimitOption_LIMIT_OPTION_WITH_TIES:
		s.LimitCount = pg_query.MakeAConstIntNode(int64(n), -1)
		s.LimitOption = pg_query.LimitOption_LIMIT_OPTION_COUNT
		return false
	case s.LimitOption == pg_query.LimitOption_LIMIT_OPTION_COUNT && readIntConst(s.LimitCount) != nil:
		if *readIntConst(s.LimitCount) > n {
			s.LimitCount = pg_query.MakeAConstIntNode(int64(n), -1)
		}
		return false
	}
	raw.Stmt = &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: &pg_query.SelectStmt{
		TargetList: []*pg_query.Node{pg_query.MakeResTargetNodeWithVal(
			pg_query.MakeColumnRefNode([]*pg_query.Node{pg_query.MakeAStarNode()}, -1), -1)},
		FromClause: []*pg_query.Node{{Node: &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{
			Subquery: raw.Stmt,
			Alias:    &pg_query.Alias{Aliasname: readCapAlias},
		}}}},
		LimitCount:  pg_query.MakeAConstIntNode(int64(n), -1),
		LimitOption: pg_query.LimitOption_LIMIT_OPTION_COUNT,
		Op:          pg_query.SetOperation_SETOP_NONE,
	}}}
	return true
}

// readIntConst returns the value of a non-null integer constant.
func readIntConst(n *pg_query.Node) *int32 {
	c := n.GetAConst()
	if c == nil || c.Isnull || c.GetIval() == nil {
		return nil
	}
	v := c.GetIval().Ival
	return &v
}

// readUnwrapCap returns the statement inside the row cap wrapper that
// readCapRows builds, or nil when raw does not have exactly that shape.
func readUnwrapCap(raw *pg_query.RawStmt) *pg_query.SelectStmt {
	s := raw.GetStmt().GetSelectStmt()
	if s == nil || s.Op != pg_query.SetOperation_SETOP_NONE || s.LimitOption != pg_query.LimitOption_LIMIT_OPTION_COUNT ||
		readIntConst(s.LimitCount) == nil || len(s.TargetList) != 1 || len(s.FromClause) != 1 {
		return nil
	}
	if s.WithClause != nil || s.IntoClause != nil || s.WhereClause != nil || s.HavingClause != nil || s.LimitOffset != nil ||
		len(s.DistinctClause)+len(s.GroupClause)+len(s.WindowClause)+len(s.ValuesLists)+len(s.SortClause)+len(s.LockingClause) > 0 ||
		s.Larg != nil || s.Rarg != nil {
		return nil
	}
	rt := s.TargetList[0].GetResTarget()
	if rt == nil || rt.Name != "" || len(rt.Indirection) > 0 {
		return nil
	}
	if f := rt.GetVal().GetColumnRef().GetFields(); len(f) != 1 || f[0].GetAStar() == nil {
		return nil
	}
	sub := s.FromClause[0].GetRangeSubselect()
	if sub == nil || sub.Lateral || sub.Alias.GetAliasname() != readCapAlias || len(sub.Alias.GetColnames()) > 0 {
		return nil
	}
	return sub.GetSubquery().GetSelectStmt()
}
