// nextval in a column DEFAULT, the one function call the FunctionChecker
// does not decide on: its argument must name one sequence, which the caller
// checks against the catalog.

package sqlguard

import (
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// migSequence is the literal naming a sequence in an allowed nextval call
// and the name the guard resolved it to.
type migSequence struct {
	lit          *pg.String
	schema, name string
}

// allowDefaultNextval lets nextval appear in a new column's DEFAULT: serial
// and identity-like defaults are ordinary schema design.
func (c *migStmt) allowDefaultNextval(cd *pg.ColumnDef) {
	if cd == nil {
		return
	}
	c.allowNextval(cd.RawDefault)
	for _, n := range cd.Constraints {
		if con := n.GetConstraint(); con.GetContype() == pg.ConstrType_CONSTR_DEFAULT {
			c.allowNextval(con.RawExpr)
		}
	}
}

func (c *migStmt) allowNextval(expr *pg.Node) {
	if expr == nil {
		return
	}
	var k migWalk
	k.node(expr.ProtoReflect(), nil)
	for _, f := range k.funcs {
		schema, name, _ := migFuncName(f)
		if name == "nextval" && (schema == "" || schema == "pg_catalog") {
			c.nextval[f] = true
		}
	}
}

// migHintNextval is the hint of every refused nextval in a DEFAULT.
const migHintNextval = "name the sequence of a writable table's serial or identity column as a string literal: DEFAULT nextval('orders_id_seq')"

// checkNextval requires every nextval a column DEFAULT may call to take one
// string literal (optionally cast to regclass) naming a sequence, and
// lists the sequence, resolved, in Sequences: the parse tree cannot tell
// whether a writable table owns it, the caller checks that against the
// catalog. A DEFAULT that advances a sequence outside the scope would make
// every later insert write to it, and the agent can read its value back.
func (c *migStmt) checkNextval() *Refusal {
	for _, f := range c.walk.funcs {
		if !c.nextval[f] {
			continue
		}
		lit, cast := migNextvalArg(f)
		if lit == nil {
			return c.refuse("function_not_allowed", migHintNextval,
				"nextval in a column DEFAULT must name one sequence as a string literal")
		}
		schema, name, ok := migSequenceName(lit.Sval)
		if !ok {
			return c.refuse("function_not_allowed", migHintNextval,
				"nextval('%s') in a column DEFAULT does not name one sequence as schema.sequence", lit.Sval)
		}
		if schema == "" {
			schema = c.searchPath()[0]
		}
		if cast != nil {
			c.exempt[cast] = true
		}
		c.sequences = append(c.sequences, migSequence{lit: lit, schema: schema, name: name})
		if q := schema + "." + name; !slices.Contains(c.out.Sequences, q) {
			c.out.Sequences = append(c.out.Sequences, q)
		}
	}
	return nil
}

// migNextvalArg returns the literal of nextval('seq') or
// nextval('seq'::regclass) and the regclass cast, if any; lit is nil for
// any other call.
func migNextvalArg(f *pg.FuncCall) (lit *pg.String, cast *pg.TypeName) {
	if len(f.Args) != 1 || f.AggStar || f.AggDistinct || f.FuncVariadic || f.AggWithinGroup ||
		f.Over != nil || f.AggFilter != nil || len(f.AggOrder) > 0 {
		return nil, nil
	}
	arg := f.Args[0]
	if tc := arg.GetTypeCast(); tc != nil {
		t := tc.TypeName
		names := migStrings(t.GetNames())
		if len(names) != len(t.GetNames()) || !slices.Equal(names, []string{"regclass"}) && !slices.Equal(names, []string{"pg_catalog", "regclass"}) ||
			len(t.Typmods) > 0 || len(t.ArrayBounds) > 0 || t.Setof || t.PctType {
			return nil, nil
		}
		cast, arg = t, tc.Arg
	}
	k := arg.GetAConst()
	if k == nil || k.Isnull || k.GetSval() == nil {
		return nil, nil
	}
	return k.GetSval(), cast
}

// migSequenceName reads a regclass literal as a relation name with the
// real parser: it must be exactly one [schema.]name, nothing else. Names
// holding a dot are refused so that "schema.name" stays unambiguous for
// the caller. The guard renders the name it read quoted (qualifyCode), so
// PostgreSQL looks up exactly this name whatever the text's quirks.
func migSequenceName(text string) (schema, name string, ok bool) {
	tree, err := pg.Parse("SELECT FROM " + text)
	if err != nil || len(tree.Stmts) != 1 {
		return "", "", false
	}
	got := tree.Stmts[0].Stmt
	rv := got.GetSelectStmt().GetFromClause()
	if len(rv) != 1 || rv[0].GetRangeVar() == nil {
		return "", "", false
	}
	schema, name = rv[0].GetRangeVar().Schemaname, rv[0].GetRangeVar().Relname
	want := &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: &pg.SelectStmt{
		FromClause: []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: &pg.RangeVar{
			Schemaname: schema, Relname: name, Inh: true, Relpersistence: "p",
		}}}},
		LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT,
		Op:          pg.SetOperation_SETOP_NONE,
	}}}
	if !migSameTree(got, want) || strings.Contains(schema, ".") || strings.Contains(name, ".") {
		return "", "", false
	}
	return schema, name, true
}
