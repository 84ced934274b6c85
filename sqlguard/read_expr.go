// Expressions in reads: the closed list of expression nodes, function
// calls, subqueries, field selection, ORDER BY items and window definitions.

package sqlguard

import pg_query "github.com/pganalyze/pg_query_go/v6"

// expr checks an expression in any position other than the direct value
// of an output column, so a masked column anywhere in it is misuse.
func (c *readChecker) expr(n *pg_query.Node, lv *readLevel) *Refusal {
	if n == nil {
		return nil
	}
	switch x := n.Node.(type) {
	case *pg_query.Node_ColumnRef:
		ref, r := c.columnRef(x.ColumnRef, lv, readUseExpr)
		if r != nil {
			return r
		}
		if ref.masked {
			return readMaskedMisuse(ref.name, "in an expression or clause")
		}
		return nil
	case *pg_query.Node_AConst:
		return readKnownFields(x.AConst)
	case *pg_query.Node_ParamRef:
		return readKnownFields(x.ParamRef)
	case *pg_query.Node_SqlvalueFunction:
		return readKnownFields(x.SqlvalueFunction)
	case *pg_query.Node_AExpr:
		e := x.AExpr
		if r := readKnownFields(e); r != nil {
			return r
		}
		if r := readOperator(e.Name); r != nil {
			return r
		}
		return c.exprs(lv, e.Lexpr, e.Rexpr)
	case *pg_query.Node_BoolExpr:
		if r := readKnownFields(x.BoolExpr); r != nil {
			return r
		}
		return c.exprs(lv, x.BoolExpr.Args...)
	case *pg_query.Node_NullTest:
		if r := readKnownFields(x.NullTest); r != nil {
			return r
		}
		return c.expr(x.NullTest.Arg, lv)
	case *pg_query.Node_BooleanTest:
		if r := readKnownFields(x.BooleanTest); r != nil {
			return r
		}
		return c.expr(x.BooleanTest.Arg, lv)
	case *pg_query.Node_FuncCall:
		return c.funcCall(x.FuncCall, lv)
	case *pg_query.Node_NamedArgExpr:
		if r := readKnownFields(x.NamedArgExpr); r != nil {
			return r
		}
		return c.expr(x.NamedArgExpr.Arg, lv)
	case *pg_query.Node_TypeCast:
		if r := readKnownFields(x.TypeCast); r != nil {
			return r
		}
		if r := c.typeName(x.TypeCast.TypeName, lv); r != nil {
			return r
		}
		return c.expr(x.TypeCast.Arg, lv)
	case *pg_query.Node_CollateClause:
		if r := readKnownFields(x.CollateClause); r != nil {
			return r
		}
		if r := readCollation(x.CollateClause.Collname); r != nil {
			return r
		}
		return c.expr(x.CollateClause.Arg, lv)
	case *pg_query.Node_CaseExpr:
		e := x.CaseExpr
		if r := readKnownFields(e); r != nil {
			return r
		}
		if r := c.exprs(lv, e.Arg, e.Defresult); r != nil {
			return r
		}
		for _, w := range e.Args {
			cw := w.GetCaseWhen()
			if cw == nil {
				return refuse("unsupported_syntax", readHintSyntax, "%s in CASE is not supported", readNodeName(w))
			}
			if r := readKnownFields(cw); r != nil {
				return r
			}
			if r := c.exprs(lv, cw.Expr, cw.Result); r != nil {
				return r
			}
		}
		return nil
	case *pg_query.Node_CoalesceExpr:
		if r := readKnownFields(x.CoalesceExpr); r != nil {
			return r
		}
		return c.exprs(lv, x.CoalesceExpr.Args...)
	case *pg_query.Node_MinMaxExpr:
		if r := readKnownFields(x.MinMaxExpr); r != nil {
			return r
		}
		return c.exprs(lv, x.MinMaxExpr.Args...)
	case *pg_query.Node_SubLink:
		return c.subLink(x.SubLink, lv)
	case *pg_query.Node_RowExpr:
		if r := readKnownFields(x.RowExpr); r != nil {
			return r
		}
		if r := readStrings(x.RowExpr.Colnames, "ROW column name"); r != nil {
			return r
		}
		return c.exprs(lv, x.RowExpr.Args...)
	case *pg_query.Node_AArrayExpr:
		if r := readKnownFields(x.AArrayExpr); r != nil {
			return r
		}
		return c.exprs(lv, x.AArrayExpr.Elements...)
	case *pg_query.Node_AIndirection:
		return c.indirection(x.AIndirection, lv)
	case *pg_query.Node_GroupingSet:
		if r := readKnownFields(x.GroupingSet); r != nil {
			return r
		}
		return c.exprs(lv, x.GroupingSet.Content...)
	case *pg_query.Node_GroupingFunc:
		if r := readKnownFields(x.GroupingFunc); r != nil {
			return r
		}
		return c.exprs(lv, x.GroupingFunc.Args...)
	case *pg_query.Node_List:
		if r := readKnownFields(x.List); r != nil {
			return r
		}
		return c.exprs(lv, x.List.Items...)
	}
	return refuse("unsupported_syntax", readHintSyntax, "%s is not supported", readNodeName(n))
}

func (c *readChecker) exprs(lv *readLevel, ns ...*pg_query.Node) *Refusal {
	for _, n := range ns {
		if r := c.expr(n, lv); r != nil {
			return r
		}
	}
	return nil
}

func (c *readChecker) funcCall(fc *pg_query.FuncCall, lv *readLevel) *Refusal {
	if r := readKnownFields(fc); r != nil {
		return r
	}
	if r := readStrings(fc.Funcname, "function name"); r != nil {
		return r
	}
	var schema, name string
	switch len(fc.Funcname) {
	case 1:
		name = fc.Funcname[0].GetString_().GetSval()
	case 2:
		schema = fc.Funcname[0].GetString_().GetSval()
		name = fc.Funcname[1].GetString_().GetSval()
	default:
		return refuse("function_not_allowed", funcRuleHint, "database-qualified function %s is not allowed", readJoinStrings(fc.Funcname))
	}
	if c.policy.Functions == nil {
		return refuse("function_not_allowed", "this scope allows no function calls", "function %s is not allowed", readJoinStrings(fc.Funcname))
	}
	if r := checkCallArgs(c.policy.Functions, schema, name, fc.Args); r != nil {
		return r
	}
	if r := c.exprs(lv, fc.Args...); r != nil {
		return r
	}
	for _, n := range fc.AggOrder {
		if r := c.sortBy(n, lv, false); r != nil {
			return r
		}
	}
	if r := c.expr(fc.AggFilter, lv); r != nil {
		return r
	}
	if fc.Over != nil {
		return c.windowDef(fc.Over, lv)
	}
	return nil
}

func (c *readChecker) subLink(s *pg_query.SubLink, lv *readLevel) *Refusal {
	if r := readKnownFields(s); r != nil {
		return r
	}
	switch s.SubLinkType {
	case pg_query.SubLinkType_EXISTS_SUBLINK, pg_query.SubLinkType_ALL_SUBLINK, pg_query.SubLinkType_ANY_SUBLINK,
		pg_query.SubLinkType_ROWCOMPARE_SUBLINK, pg_query.SubLinkType_EXPR_SUBLINK, pg_query.SubLinkType_ARRAY_SUBLINK:
	default:
		return refuse("unsupported_syntax", readHintSyntax, "subquery of kind %s is not supported", s.SubLinkType)
	}
	if r := readOperator(s.OperName); r != nil {
		return r
	}
	if r := c.expr(s.Testexpr, lv); r != nil {
		return r
	}
	q := s.GetSubselect().GetSelectStmt()
	if q == nil {
		return refuse("unsupported_syntax", readHintSyntax, "%s as a subquery is not supported", readNodeName(s.Subselect))
	}
	_, r := c.selectStmt(q, lv)
	return r
}

// indirection checks (x).field, (x).*, x[i] and x[i:j]. On a whole-row
// reference to a base table, the first field must be one of its columns:
// (t).f with no column f is the call f(t).
func (c *readChecker) indirection(ind *pg_query.A_Indirection, lv *readLevel) *Refusal {
	if r := readKnownFields(ind); r != nil {
		return r
	}
	if r := c.expr(ind.Arg, lv); r != nil {
		return r
	}
	for i, n := range ind.Indirection {
		switch x := n.Node.(type) {
		case *pg_query.Node_String_:
			if i == 0 {
				if r := readIndirectionField(ind.Arg, x.String_.Sval, lv); r != nil {
					return r
				}
			}
		case *pg_query.Node_AStar:
			if i != len(ind.Indirection)-1 {
				return refuse("unsupported_syntax", readHintSyntax, "malformed field selection")
			}
		case *pg_query.Node_AIndices:
			if r := readKnownFields(x.AIndices); r != nil {
				return r
			}
			if r := c.exprs(lv, x.AIndices.Lidx, x.AIndices.Uidx); r != nil {
				return r
			}
		default:
			return refuse("unsupported_syntax", readHintSyntax, "%s in a field selection is not supported", readNodeName(n))
		}
	}
	return nil
}

func readIndirectionField(arg *pg_query.Node, field string, lv *readLevel) *Refusal {
	cr := arg.GetColumnRef()
	if cr == nil {
		return nil
	}
	var qual []string
	switch f := cr.Fields; {
	case len(f) == 1 && f[0].GetString_() != nil:
		qual = []string{f[0].GetString_().Sval}
	case len(f) == 2 && f[0].GetString_() != nil && f[1].GetAStar() != nil:
		qual = []string{f[0].GetString_().Sval}
	default:
		return nil
	}
	for _, it := range readCandidates(qual, lv) {
		if it.table == nil {
			continue
		}
		if _, r := readQualifiedColumn(it, field); r != nil {
			return r
		}
	}
	return nil
}

// sortBy checks an ORDER BY item. outputs is true for a query's own ORDER
// BY, where a bare name may be an output column.
func (c *readChecker) sortBy(n *pg_query.Node, lv *readLevel, outputs bool) *Refusal {
	sb := n.GetSortBy()
	if sb == nil {
		return refuse("unsupported_syntax", readHintSyntax, "%s in ORDER BY is not supported", readNodeName(n))
	}
	if r := readKnownFields(sb); r != nil {
		return r
	}
	if r := readOperator(sb.UseOp); r != nil {
		return r
	}
	if outputs {
		return c.outputExpr(sb.Node, lv)
	}
	return c.expr(sb.Node, lv)
}

// outputExpr checks an ORDER BY or DISTINCT ON item, where PostgreSQL
// resolves a bare name to an output column before an input column.
func (c *readChecker) outputExpr(n *pg_query.Node, lv *readLevel) *Refusal {
	cr := n.GetColumnRef()
	if cr == nil {
		return c.expr(n, lv)
	}
	ref, r := c.columnRef(cr, lv, readUseOutputName)
	if r != nil {
		return r
	}
	if ref.masked {
		return readMaskedMisuse(ref.name, "in an expression or clause")
	}
	return nil
}

func (c *readChecker) windowDef(w *pg_query.WindowDef, lv *readLevel) *Refusal {
	if r := readKnownFields(w); r != nil {
		return r
	}
	if r := c.exprs(lv, w.PartitionClause...); r != nil {
		return r
	}
	for _, n := range w.OrderClause {
		if r := c.sortBy(n, lv, false); r != nil {
			return r
		}
	}
	return c.exprs(lv, w.StartOffset, w.EndOffset)
}
