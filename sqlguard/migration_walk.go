// The generic walk over a migration statement's parse tree that collects
// the nodes the checks need, with CTE names in their real scope.

package sqlguard

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// migWalk collects, from a generic walk over every message of a parse
// tree, the nodes the checks need. CTE names are tracked with their real
// scope so that a RangeVar is only taken for a CTE where PostgreSQL would.
type migWalk struct {
	rangeVars    []migRangeRef
	funcs        []*pg.FuncCall
	columns      []*pg.ColumnRef
	joins        []*pg.JoinExpr
	ctes         []*pg.CommonTableExpr
	constraints  []*pg.Constraint
	typeNames    []*pg.TypeName
	aExprs       []*pg.A_Expr
	cases        []*pg.CaseExpr
	subLinks     []*pg.SubLink
	sortBys      []*pg.SortBy
	collates     []*pg.CollateClause
	indexElems   []*pg.IndexElem
	likes        []*pg.TableLikeClause
	indirections []*pg.A_Indirection
	// xml names the XML expressions the statement holds.
	xml []string
	// noNamespace are RangeVars whose columns no expression can reference
	// (FOREIGN KEY targets, LIKE sources).
	noNamespace []*pg.RangeVar
}

type migRangeRef struct {
	rv  *pg.RangeVar
	cte bool
}

func (k *migWalk) node(m protoreflect.Message, scope map[string]bool) {
	switch n := m.Interface().(type) {
	case *pg.RangeVar:
		k.rangeVars = append(k.rangeVars, migRangeRef{rv: n, cte: n.Schemaname == "" && n.Catalogname == "" && scope[n.Relname]})
		return
	case *pg.ColumnRef:
		k.columns = append(k.columns, n)
		return
	case *pg.LockingClause:
		// FOR UPDATE OF names FROM items, which are checked where they are.
		return
	case *pg.FuncCall:
		k.funcs = append(k.funcs, n)
	case *pg.JoinExpr:
		k.joins = append(k.joins, n)
	case *pg.CommonTableExpr:
		k.ctes = append(k.ctes, n)
	case *pg.Constraint:
		k.constraints = append(k.constraints, n)
		if n.Pktable != nil {
			k.noNamespace = append(k.noNamespace, n.Pktable)
		}
	case *pg.TableLikeClause:
		if n.Relation != nil {
			k.noNamespace = append(k.noNamespace, n.Relation)
			k.likes = append(k.likes, n)
		}
	case *pg.TypeName:
		k.typeNames = append(k.typeNames, n)
	case *pg.A_Expr:
		k.aExprs = append(k.aExprs, n)
	case *pg.CaseExpr:
		k.cases = append(k.cases, n)
	case *pg.SubLink:
		k.subLinks = append(k.subLinks, n)
	case *pg.SortBy:
		k.sortBys = append(k.sortBys, n)
	case *pg.CollateClause:
		k.collates = append(k.collates, n)
	case *pg.IndexElem:
		k.indexElems = append(k.indexElems, n)
	case *pg.A_Indirection:
		k.indirections = append(k.indirections, n)
	case *pg.XmlExpr:
		k.xml = append(k.xml, strings.TrimPrefix(n.Op.String(), "IS_"))
	case *pg.XmlSerialize:
		k.xml = append(k.xml, "XMLSERIALIZE")
	case *pg.RangeTableFunc:
		k.xml = append(k.xml, "XMLTABLE")
	}
	withField := m.Descriptor().Fields().ByName("with_clause")
	inner := scope
	if withField != nil && m.Has(withField) {
		inner = k.with(m.Get(withField).Message().Interface().(*pg.WithClause), scope)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd == withField || fd.Message() == nil {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				k.node(l.Get(i).Message(), inner)
			}
			return true
		}
		k.node(v.Message(), inner)
		return true
	})
}

// with walks a WITH clause's CTEs, each seeing the CTEs before it (all of
// them under RECURSIVE), and returns the scope of the query that owns it.
func (k *migWalk) with(wc *pg.WithClause, scope map[string]bool) map[string]bool {
	var names []string
	for _, n := range wc.Ctes {
		names = append(names, n.GetCommonTableExpr().GetCtename())
	}
	for i, n := range wc.Ctes {
		visible := migScope(scope, names[:i])
		if wc.Recursive {
			visible = migScope(scope, names)
		}
		k.node(n.ProtoReflect(), visible)
	}
	return migScope(scope, names)
}

func migScope(scope map[string]bool, names []string) map[string]bool {
	out := make(map[string]bool, len(scope)+len(names))
	for n := range scope {
		out[n] = true
	}
	for _, n := range names {
		out[n] = true
	}
	return out
}
