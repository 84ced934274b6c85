// QualifiedSQL: a checked statement rendered with every table, function
// and operator qualified, and parsed again to prove it means the same tree.

package sqlguard

import (
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// qualify renders the statement again with every resolved table name
// schema-qualified, so that running it does not depend on search_path.
func (c *migStmt) qualify() *Refusal {
	for _, ref := range c.walk.rangeVars {
		rv := ref.rv
		q := c.relationName(rv)
		if q == "" || rv.Schemaname != "" {
			continue
		}
		rv.Schemaname = strings.SplitN(q, ".", 2)[0]
	}
	for _, t := range c.listTargets {
		if len(t.names()) == 1 {
			schema := strings.SplitN(t.resolved, ".", 2)[0]
			t.list.Items = append([]*pg.Node{pg.MakeStrNode(schema)}, t.list.Items...)
		}
	}
	c.qualifyCode()
	text, err := pg.Deparse(&pg.ParseResult{Version: c.version, Stmts: []*pg.RawStmt{{Stmt: c.raw.Stmt}}})
	if err != nil {
		return c.refuse("statement_not_allowed", "simplify the statement",
			"airlock could not render the statement with qualified names: %v", err)
	}
	// QualifiedSQL is what runs: it must mean exactly the tree the checks
	// decided on, so a deparser slip (a lost parenthesis, a dropped
	// clause) is a refusal, never a different statement.
	again, err := pg.Parse(text)
	if err != nil || len(again.Stmts) != 1 || !migSameTree(again.Stmts[0].Stmt, c.raw.Stmt) {
		return c.refuse("statement_not_allowed", "simplify the statement",
			"airlock could not render the statement with qualified names so that it keeps its meaning")
	}
	c.out.QualifiedSQL = text
	return nil
}

// qualifyCode makes every function and operator the statement calls
// resolve in pg_catalog only: an unqualified name is looked up through
// the search path, where an object in another schema with a better
// matching signature wins over pg_catalog's (public.upper(integer) over
// pg_catalog.upper(text) for upper(1)). The FunctionChecker and the
// operator rule decided on unqualified names as pg_catalog's, so that is
// what must run. docs/architecture.md, Write statements: the read rules
// everywhere.
func (c *migStmt) qualifyCode() {
	for _, f := range c.walk.funcs {
		if len(f.Funcname) == 1 {
			f.Funcname = migPgCatalog(f.Funcname)
		}
	}
	for _, e := range c.walk.aExprs {
		switch e.Kind {
		case pg.A_Expr_Kind_AEXPR_LIKE, pg.A_Expr_Kind_AEXPR_ILIKE, pg.A_Expr_Kind_AEXPR_SIMILAR:
			// PostgreSQL resolves LIKE, ILIKE and SIMILAR TO exactly as the
			// operator they name (~~, ~~*, ~ and their negations), which
			// can be written qualified; the keywords cannot.
			e.Kind = pg.A_Expr_Kind_AEXPR_OP
			e.Name = migPgCatalog(e.Name)
		case pg.A_Expr_Kind_AEXPR_OP, pg.A_Expr_Kind_AEXPR_OP_ANY, pg.A_Expr_Kind_AEXPR_OP_ALL:
			e.Name = migPgCatalog(e.Name)
		}
		// IN lists, BETWEEN, IS DISTINCT FROM and NULLIF have no syntax
		// for a qualified operator: they resolve = (or <, >, <>) through
		// the search path, which the caller pins with pg_catalog first and
		// checks for same-named operators (SearchPathOperators).
		switch e.Kind {
		case pg.A_Expr_Kind_AEXPR_IN, pg.A_Expr_Kind_AEXPR_DISTINCT, pg.A_Expr_Kind_AEXPR_NOT_DISTINCT, pg.A_Expr_Kind_AEXPR_NULLIF:
			c.searchPathOperator(migStrings(e.Name)...)
		case pg.A_Expr_Kind_AEXPR_BETWEEN, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN,
			pg.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
			c.searchPathOperator("<=", ">=", "<", ">")
		}
	}
	for _, ce := range c.walk.cases {
		if ce.Arg != nil {
			c.searchPathOperator("=")
		}
	}
	for _, j := range c.walk.joins {
		if j.IsNatural || len(j.UsingClause) > 0 {
			c.searchPathOperator("=")
		}
	}
	for _, l := range c.walk.subLinks {
		if l.SubLinkType == pg.SubLinkType_ANY_SUBLINK && len(l.OperName) == 0 {
			// x IN (SELECT ...) is x = ANY (SELECT ...) with its = looked
			// up through the search path.
			l.OperName = []*pg.Node{pg.MakeStrNode("=")}
		}
		l.OperName = migPgCatalog(l.OperName)
	}
	for _, sb := range c.walk.sortBys {
		sb.UseOp = migPgCatalog(sb.UseOp)
	}
	for _, con := range c.walk.constraints {
		for _, ops := range migExclusionOps(con) {
			ops.Items = migPgCatalog(ops.Items)
		}
	}
	// INCLUDING ALL EXCLUDING x keeps PostgreSQL's unused high bits, which
	// the deparser spells as the options that are left: drop them, so the
	// rendering parses back to this tree.
	for _, l := range c.walk.likes {
		if l.Options != migLikeAll {
			l.Options &= migLikeKnown
		}
	}
	// The literal nextval receives is looked up as a regclass when the
	// DEFAULT is created: spelled quoted and qualified, it names exactly
	// the sequence the guard resolved and the caller checked.
	for _, s := range c.sequences {
		s.lit.Sval = quoteIdent(s.schema) + "." + quoteIdent(s.name)
	}
}

// searchPathOperator records operators looked up through the search path.
func (c *migStmt) searchPathOperator(names ...string) {
	for _, n := range names {
		if n != "" && !slices.Contains(c.out.SearchPathOperators, n) {
			c.out.SearchPathOperators = append(c.out.SearchPathOperators, n)
		}
	}
}

// migPgCatalog qualifies a one-element name with pg_catalog and leaves
// every other name (empty or already qualified) as it is.
func migPgCatalog(name []*pg.Node) []*pg.Node {
	if len(name) != 1 {
		return name
	}
	return []*pg.Node{pg.MakeStrNode("pg_catalog"), name[0]}
}

// migExclusionOps returns the operator names of an EXCLUDE constraint's
// elements (each element is a list of an IndexElem and an operator name).
func migExclusionOps(con *pg.Constraint) []*pg.List {
	var out []*pg.List
	for _, n := range con.Exclusions {
		items := n.GetList().GetItems()
		if len(items) == 2 && items[1].GetList() != nil {
			out = append(out, items[1].GetList())
		}
	}
	return out
}

// migSameTree reports whether two parse trees are equal but for the
// source locations they carry.
func migSameTree(a, b proto.Message) bool {
	x, y := proto.Clone(a), proto.Clone(b)
	migClearLocations(x.ProtoReflect())
	migClearLocations(y.ProtoReflect())
	return proto.Equal(x, y)
}

func migClearLocations(m protoreflect.Message) {
	var clear []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil:
			name := string(fd.Name())
			if fd.Kind() == protoreflect.Int32Kind && (name == "location" || strings.HasSuffix(name, "_location")) {
				clear = append(clear, fd)
			}
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				migClearLocations(l.Get(i).Message())
			}
		case fd.IsMap():
		default:
			migClearLocations(v.Message())
		}
		return true
	})
	for _, fd := range clear {
		m.Clear(fd)
	}
}
