// Output column names of a select list, as PostgreSQL names them: what
// ORDER BY, DISTINCT ON and enclosing queries may refer to.

package sqlguard

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// readTargetNames adds the output column name(s) of a select-list entry
// to out, the way PostgreSQL's FigureColname names them. It may add a name
// PostgreSQL would not use: that can only let a reference through to a
// derived column, never to a table column, which is checked on its own.
func readTargetNames(out *readOutputs, rt *pg_query.ResTarget, lv *readLevel) {
	if rt.Name != "" {
		out.names = append(out.names, rt.Name)
		return
	}
	if cr := rt.Val.GetColumnRef(); cr != nil && len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
		readStarNames(out, cr, lv)
		return
	}
	if readIsStarIndirection(rt.Val) {
		out.opaque = true
		return
	}
	out.names = append(out.names, readFigureNames(rt.Val)...)
}

// readStarNames expands * or q.* into the columns it stands for.
func readStarNames(out *readOutputs, cr *pg_query.ColumnRef, lv *readLevel) {
	items := lv.items
	if len(cr.Fields) > 1 {
		qual := make([]string, 0, len(cr.Fields)-1)
		for _, f := range cr.Fields[:len(cr.Fields)-1] {
			qual = append(qual, f.GetString_().GetSval())
		}
		items = readCandidates(qual, lv)
	}
	for _, it := range items {
		switch {
		case it.table != nil:
			out.names = append(out.names, it.columnNames()...)
		case it.members != nil:
			for _, m := range it.members {
				out.names = append(out.names, m.columnNames()...)
			}
		default:
			out.names = append(out.names, it.out.names...)
			out.opaque = out.opaque || it.out.opaque
		}
	}
}

// readFigureNames returns the names PostgreSQL may give an unnamed output
// expression.
func readFigureNames(n *pg_query.Node) []string {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_ColumnRef:
		if f := x.ColumnRef.Fields; len(f) > 0 {
			return []string{f[len(f)-1].GetString_().GetSval()}
		}
	case *pg_query.Node_AIndirection:
		ind := x.AIndirection.Indirection
		for i := len(ind) - 1; i >= 0; i-- {
			if s := ind[i].GetString_(); s != nil {
				return []string{s.Sval}
			}
		}
		return readFigureNames(x.AIndirection.Arg)
	case *pg_query.Node_FuncCall:
		if f := x.FuncCall.Funcname; len(f) > 0 {
			return []string{f[len(f)-1].GetString_().GetSval()}
		}
	case *pg_query.Node_AExpr:
		if x.AExpr.Kind == pg_query.A_Expr_Kind_AEXPR_NULLIF {
			return []string{"nullif"}
		}
	case *pg_query.Node_TypeCast:
		names := readFigureNames(x.TypeCast.Arg)
		if tn := x.TypeCast.GetTypeName().GetNames(); len(tn) > 0 {
			names = append(names, tn[len(tn)-1].GetString_().GetSval())
		}
		return names
	case *pg_query.Node_CollateClause:
		return readFigureNames(x.CollateClause.Arg)
	case *pg_query.Node_GroupingFunc:
		return []string{"grouping"}
	case *pg_query.Node_SubLink:
		switch x.SubLink.SubLinkType {
		case pg_query.SubLinkType_EXISTS_SUBLINK:
			return []string{"exists"}
		case pg_query.SubLinkType_ARRAY_SUBLINK:
			return []string{"array"}
		case pg_query.SubLinkType_EXPR_SUBLINK:
			for q := x.SubLink.GetSubselect().GetSelectStmt(); q != nil; q = q.Larg {
				if tl := q.TargetList; len(tl) > 0 {
					if rt := tl[0].GetResTarget(); rt != nil && rt.Name != "" {
						return []string{rt.Name}
					} else if rt != nil {
						return readFigureNames(rt.Val)
					}
				}
			}
		}
	case *pg_query.Node_CaseExpr:
		return append(readFigureNames(x.CaseExpr.Defresult), "case")
	case *pg_query.Node_AArrayExpr:
		return []string{"array"}
	case *pg_query.Node_RowExpr:
		return []string{"row"}
	case *pg_query.Node_CoalesceExpr:
		return []string{"coalesce"}
	case *pg_query.Node_MinMaxExpr:
		if x.MinMaxExpr.Op == pg_query.MinMaxOp_IS_LEAST {
			return []string{"least"}
		}
		return []string{"greatest"}
	case *pg_query.Node_SqlvalueFunction:
		name := strings.ToLower(strings.TrimPrefix(x.SqlvalueFunction.Op.String(), "SVFOP_"))
		return []string{strings.TrimSuffix(name, "_n")}
	}
	return []string{"?column?"}
}

// readIsStarIndirection reports (x).* in a select list, which expands to
// several output columns.
func readIsStarIndirection(n *pg_query.Node) bool {
	ind := n.GetAIndirection()
	if ind == nil || len(ind.Indirection) == 0 {
		return false
	}
	return ind.Indirection[len(ind.Indirection)-1].GetAStar() != nil
}
