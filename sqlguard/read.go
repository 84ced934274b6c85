package sqlguard

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Hints shared by several refusals. They say what is allowed instead, in
// words an agent can act on.
const (
	readHintStatement = "only SELECT (and EXPLAIN without ANALYZE) are allowed here; writes go through migrate_dry_run / apply_migration_with_ticket"
	readHintMasked    = "masked columns may only be selected as plain output columns; they come back as a keyed hash, so equality still works on the returned values"
	readHintSyntax    = "rewrite it as a plain SELECT: joins, subqueries, CTEs, aggregates, window functions and built-in functions are fine"
	readHintReference = "qualify columns with a table name or alias that appears in FROM"
)

// CheckRead decides whether sql may run as a read under p, and returns the
// statement to execute. On refusal the error is a *Refusal (see the codes
// below); any other error is an internal failure.
//
// Accepted are exactly one SELECT (VALUES, TABLE, set operations, CTEs whose
// queries are SELECTs) or one EXPLAIN of such a SELECT without ANALYZE. The
// parse tree is walked with a closed list of node kinds and fields: anything
// the walker does not know is refused as unsupported_syntax, so a parser
// upgrade can only make the guard stricter.
//
// Tables: every relation must be an in-scope table (p.Tables), named
// schema-qualified or found through p.SearchPath; a name that is visible as a
// CTE at that point is a CTE reference. Resolved tables are rewritten to be
// schema-qualified in ReadPlan.SQL, so the statement does not depend on the
// caller's search_path (which only leaves pg_catalog for functions, operators
// and types).
//
// Columns are resolved conservatively: a reference is checked against every
// FROM item it could possibly name, at its own query level and all enclosing
// ones, and is refused if any candidate makes it denied. q.col must be a
// column the policy lists for q (PostgreSQL would otherwise read it as the
// call col(q)). A bare name that is neither a listed column, nor a column
// of a subquery, CTE or VALUES list, nor (in ORDER BY and DISTINCT ON) an
// output column, is refused when a restricted table is visible: with an
// incomplete column list it could be a column the scope never allowed. So
// GROUP BY an output alias is refused next to a restricted table; GROUP BY
// its position works.
//
// Masked columns are accepted only as the direct value of an output column
// of the outermost plain SELECT, and their zero-based output positions are
// returned in ReadPlan.MaskedOutputs; every other use (predicates, joins,
// grouping, ordering, expressions, subqueries, CTEs, set operations,
// EXPLAIN) is refused, and so are ORDER BY, GROUP BY and DISTINCT ON that
// reach a masked output by its name or position, plain DISTINCT (which
// orders rows by every output), and * next to a masked output (which would
// shift positions).
//
// * and q.* over a restricted table are refused rather than expanded to the
// allowed columns: the expansion would happen in the database, after this
// check, and a column list that silently differs from what the agent wrote
// is worse than a refusal that lists the columns to write. Whole-row
// references to a restricted table (c, c.*, (c).x, to_json(c)) are refused
// for the same reason.
//
// Every function call, in expressions and in FROM, is decided by
// p.Functions (nil refuses all calls). Operators, types and collations may
// be qualified only with pg_catalog, and xml, aclitem and the object
// identifier types (regclass, ...) are refused. System columns (ctid,
// xmin, tableoid, ...) are refused.
//
// EXPLAIN is refused when the statement reads a table whose rows are
// filtered for the scope (Table.RowFiltered): the plan's estimates count
// the rows the filter hides.
//
// For a SELECT, maxRows > 0 caps the rows the database produces at
// maxRows+1, so the caller can tell that the result was cut: a missing
// LIMIT is added, a larger constant LIMIT is lowered, and any other LIMIT
// (LIMIT ALL, a parameter, an expression, FETCH ... WITH TIES) is kept and
// the statement wrapped in SELECT * FROM (...) AS airlock_capped LIMIT n.
// EXPLAIN is never capped. maxRows <= 0 means no cap.
//
// The rewritten statement is deparsed, parsed again and re-checked; it is
// refused unless the second check accepts it with every table already
// qualified and agrees with the first on masked outputs and tables, so a
// deparser bug cannot turn an accepted tree into SQL that reads something
// else.
//
// Refusal codes:
//
//	empty_statement          no SQL, or only comments
//	invalid_input            invalid UTF-8 or a NUL byte
//	syntax_error             the PostgreSQL parser rejected the text
//	multiple_statements      more than one statement
//	statement_not_allowed    not a SELECT or an EXPLAIN of one
//	explain_option_not_allowed  EXPLAIN ANALYZE or an option not on the list
//	explain_not_allowed      EXPLAIN over a row-filtered table (Table.RowFiltered)
//	select_into              SELECT ... INTO
//	locking_clause           FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE
//	data_modifying_cte       a WITH query that is not a SELECT
//	unsupported_syntax       a node kind or clause the guard does not handle
//	table_not_in_scope       a relation that is not an in-scope table
//	column_not_allowed       a denied column, or a system column
//	unknown_column           a column the policy does not list for that table
//	unknown_reference        a qualifier that names no FROM item
//	star_not_allowed         * or q.* over a restricted table
//	whole_row_not_allowed    a whole-row reference to a restricted table
//	column_alias_not_allowed column aliases on a restricted table
//	natural_join_not_allowed NATURAL JOIN with a restricted table
//	masked_column_misuse     a masked column used other than as plain output
//	function_not_allowed     a function call the FunctionChecker refused
//	operator_not_allowed     an operator qualified with a schema other than pg_catalog
//	type_not_allowed         a type outside pg_catalog, or a refused type
//	collation_not_allowed    a collation qualified with a schema other than pg_catalog
func (p *Policy) CheckRead(sql string, maxRows int) (*ReadPlan, error) {
	plan, r := p.checkRead(sql, maxRows)
	if r != nil {
		return nil, r
	}
	return plan, nil
}

func (p *Policy) checkRead(sql string, maxRows int) (*ReadPlan, *Refusal) {
	if r := readCheckInput(sql); r != nil {
		return nil, r
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil, refuse("syntax_error", "fix the SQL and send one SELECT statement", "%s", err.Error())
	}
	switch len(tree.Stmts) {
	case 0:
		return nil, refuse("empty_statement", "send one SELECT statement", "the SQL contains no statement")
	case 1:
	default:
		return nil, refuse("multiple_statements", "send one statement per call", "the SQL contains %d statements", len(tree.Stmts))
	}
	raw := tree.Stmts[0]

	c := newReadChecker(p)
	if r := c.statement(raw); r != nil {
		return nil, r
	}
	wrapped := false
	if !c.explain {
		wrapped = readCapRows(raw, maxRows)
	}
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return nil, refuse("unsupported_syntax", readHintSyntax, "the statement cannot be rewritten: %s", err.Error())
	}
	if r := p.readVerify(out, c, wrapped); r != nil {
		return nil, r
	}
	fp, err := pg_query.Fingerprint(sql)
	if err != nil {
		return nil, refuse("syntax_error", "fix the SQL and send one SELECT statement", "%s", err.Error())
	}
	return &ReadPlan{
		SQL:           out,
		Explain:       c.explain,
		MaskedOutputs: c.masked,
		Tables:        c.tableList(),
		Fingerprint:   fp,
	}, nil
}

// readCheckInput repeats the caller's input sanity checks, so the guard is
// safe on its own.
func readCheckInput(sql string) *Refusal {
	if strings.TrimSpace(sql) == "" {
		return refuse("empty_statement", "send one SELECT statement", "the SQL is empty")
	}
	if !utf8.ValidString(sql) {
		return refuse("invalid_input", "send the SQL as valid UTF-8 text", "the SQL is not valid UTF-8")
	}
	if strings.IndexByte(sql, 0) >= 0 {
		return refuse("invalid_input", "remove the NUL byte", "the SQL contains a NUL byte")
	}
	return nil
}

// readVerify parses the rewritten SQL again and checks it with a fresh
// checker: the deparsed text is what runs, so it is what must pass, with
// every table already qualified and the same masked outputs and tables as
// the first check found. The row cap wrapper, which the first pass built
// itself, is peeled off by shape.
func (p *Policy) readVerify(sql string, first *readChecker, wrapped bool) *Refusal {
	fail := func(why string) *Refusal {
		return refuse("unsupported_syntax", readHintSyntax, "the rewritten statement does not survive a parse round trip (%s)", why)
	}
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return fail("it does not parse as one statement")
	}
	c := newReadChecker(p)
	c.verifying = true
	if wrapped {
		inner := readUnwrapCap(tree.Stmts[0])
		if inner == nil {
			return fail("the row cap is not where it was put")
		}
		if inner.Op == pg_query.SetOperation_SETOP_NONE {
			c.top = inner
		}
		if _, r := c.selectStmt(inner, nil); r != nil {
			return fail(r.Error())
		}
	} else if r := c.statement(tree.Stmts[0]); r != nil {
		return fail(r.Error())
	}
	if !slices.Equal(c.masked, first.masked) || !slices.Equal(c.tableList(), first.tableList()) || c.explain != first.explain {
		return fail("the second check disagrees with the first")
	}
	return nil
}

// readChecker walks one statement. It is used once.
type readChecker struct {
	policy  *Policy
	explain bool
	// top is the outermost SELECT when it is a plain one (no set
	// operation, not under EXPLAIN): the only place masked columns may be
	// selected.
	top         *pg_query.SelectStmt
	masked      []int
	maskedNames map[string]bool
	tables      map[string]bool
	// verifying is set when checking the rewritten SQL, where every table
	// must already be schema-qualified.
	verifying bool
}

func newReadChecker(p *Policy) *readChecker {
	return &readChecker{policy: p, maskedNames: map[string]bool{}, tables: map[string]bool{}}
}

func (c *readChecker) tableList() []string {
	out := make([]string, 0, len(c.tables))
	for t := range c.tables {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// readLevel is one query level: the FROM items of one SELECT and the CTE
// names its WITH clause declares. Levels chain outward, to the enclosing
// query of a subquery.
type readLevel struct {
	parent *readLevel
	ctes   []string
	// cteOut holds the output columns of the CTEs declared here, once
	// checked.
	cteOut map[string]readOutputs
	// outputs are the output column names of this level's select list,
	// which ORDER BY and DISTINCT ON may name.
	outputs []string
	// items holds every FROM item of the level, including those nested
	// in joins and aliased joins themselves. That is more than PostgreSQL
	// makes visible at any one point (it hides tables inside an aliased
	// join, and non-LATERAL subqueries do not see their siblings), which
	// only ever makes the column checks stricter.
	items []*readItem
}

// cteVisible reports whether an unqualified relation name refers to a CTE.
// Unlike items, CTE visibility is exact: treating a table as a CTE would
// skip its check, so a name counts only when PostgreSQL would resolve it to
// a CTE.
func (lv *readLevel) cteVisible(name string) bool {
	for l := lv; l != nil; l = l.parent {
		if slices.Contains(l.ctes, name) {
			return true
		}
	}
	return false
}

// cteOutputs returns the output columns of the visible CTE name; a CTE
// still being checked (a recursive reference) is opaque.
func (lv *readLevel) cteOutputs(name string) readOutputs {
	for l := lv; l != nil; l = l.parent {
		if slices.Contains(l.ctes, name) {
			if out, ok := l.cteOut[name]; ok {
				return out
			}
			break
		}
	}
	return readOutputs{opaque: true}
}

// readOutputs are the output column names of a query or FROM item. opaque
// means it may have columns the guard cannot name (a function in FROM, a *
// it cannot expand), so any name might be one of them.
type readOutputs struct {
	names  []string
	opaque bool
}

// readAliased applies a column alias list, which renames the first
// columns.
func readAliased(out readOutputs, alias *pg_query.Alias) readOutputs {
	var names []string
	for _, n := range alias.GetColnames() {
		names = append(names, n.GetString_().GetSval())
	}
	if len(out.names) > len(names) {
		names = append(names, out.names[len(names):]...)
	}
	return readOutputs{names: names, opaque: out.opaque}
}

// readItem is a FROM item that columns may be qualified with.
type readItem struct {
	// refname is the alias, or the relation's bare name when it has none.
	refname string
	// schema is set for an unaliased base table, which may also be
	// referenced as schema.table.column.
	schema string
	// table is set for a base table.
	table *Table
	// colAliases renames the first columns of an (unrestricted) base table.
	colAliases []string
	// members are the base tables inside an aliased join.
	members []*readItem
	// out are the columns of a subquery, CTE or function.
	out readOutputs
	// node is the subquery this item stands for, if it is one.
	node *pg_query.RangeSubselect
}

func (it *readItem) column(name string) *Column {
	if it.table == nil {
		return nil
	}
	for i, a := range it.colAliases {
		if a == name && i < len(it.table.Columns) {
			return &it.table.Columns[i]
		}
	}
	for i := len(it.colAliases); i < len(it.table.Columns); i++ {
		if it.table.Columns[i].Name == name {
			return &it.table.Columns[i]
		}
	}
	return nil
}

// columnNames lists a base table's columns under the names the query sees.
func (it *readItem) columnNames() []string {
	names := make([]string, len(it.table.Columns))
	for i, col := range it.table.Columns {
		names[i] = col.Name
		if i < len(it.colAliases) {
			names[i] = it.colAliases[i]
		}
	}
	return names
}

// restricted reports whether the item's whole row could expose a column
// that is not plainly allowed.
func (it *readItem) restricted() bool {
	if it.table != nil {
		return readTableRestricted(it.table)
	}
	for _, m := range it.members {
		if m.restricted() {
			return true
		}
	}
	return false
}

// readTableRestricted does not trust Restricted alone: a table with any
// column that is not plainly allowed is treated as restricted.
func readTableRestricted(t *Table) bool {
	if t.Restricted {
		return true
	}
	for _, c := range t.Columns {
		if c.Access != Allowed {
			return true
		}
	}
	return false
}

func (c *readChecker) statement(raw *pg_query.RawStmt) *Refusal {
	if r := readKnownFields(raw); r != nil {
		return r
	}
	switch n := raw.GetStmt().GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		if n.SelectStmt.Op == pg_query.SetOperation_SETOP_NONE {
			c.top = n.SelectStmt
		}
		_, r := c.selectStmt(n.SelectStmt, nil)
		return r
	case *pg_query.Node_ExplainStmt:
		c.explain = true
		return c.explainStmt(n.ExplainStmt)
	default:
		return refuse("statement_not_allowed", readHintStatement, "%s is not allowed", readStatementName(raw.GetStmt()))
	}
}

// readExplainBooleans are the EXPLAIN options that only change how a plan
// is printed.
var readExplainBooleans = map[string]bool{"verbose": true, "costs": true, "settings": true, "generic_plan": true}

// readExplainOffOnly are the EXPLAIN options allowed only when switched
// off: ANALYZE runs the statement, and BUFFERS and SUMMARY are kept to
// their no-ANALYZE meaning.
var readExplainOffOnly = map[string]bool{"analyze": true, "buffers": true, "summary": true}

func (c *readChecker) explainStmt(e *pg_query.ExplainStmt) *Refusal {
	if r := readKnownFields(e); r != nil {
		return r
	}
	for _, o := range e.Options {
		if r := c.explainOption(o); r != nil {
			return r
		}
	}
	q := e.GetQuery().GetSelectStmt()
	if q == nil {
		return refuse("statement_not_allowed", readHintStatement, "EXPLAIN of %s is not allowed", readStatementName(e.GetQuery()))
	}
	if _, r := c.selectStmt(q, nil); r != nil {
		return r
	}
	return c.explainRowFiltered()
}

// readHintExplainFiltered is the hint of an EXPLAIN refused over a
// row-filtered table.
const readHintExplainFiltered = "EXPLAIN is not available on tables with a row filter: its estimates count the rows the filter hides; run the query itself"

// explainRowFiltered refuses an EXPLAIN that reads a row-filtered table
// anywhere. The planner estimates from statistics over every row of the
// table, so an estimate of 45 rows against 1 for a value only hidden rows
// hold tells the agent about rows it may not read; VERBOSE also prints the
// filter (docs/architecture.md, Catalog lookups).
func (c *readChecker) explainRowFiltered() *Refusal {
	for _, name := range c.tableList() {
		if t := c.policy.Tables[name]; t != nil && t.RowFiltered {
			return refuse("explain_not_allowed", readHintExplainFiltered,
				"EXPLAIN over %s is not allowed: the rows you may read there are filtered, and the plan's estimates count the rows the filter hides", name)
		}
	}
	return nil
}

func (c *readChecker) explainOption(o *pg_query.Node) *Refusal {
	const hint = "EXPLAIN options allowed: VERBOSE, COSTS, SETTINGS, GENERIC_PLAN, FORMAT TEXT|JSON|YAML|XML, and ANALYZE, BUFFERS, SUMMARY only as false"
	d := o.GetDefElem()
	if d == nil {
		return refuse("unsupported_syntax", hint, "EXPLAIN option of kind %s is not supported", readNodeName(o))
	}
	if r := readKnownFields(d); r != nil {
		return r
	}
	if d.Defaction != pg_query.DefElemAction_DEFELEM_UNSPEC {
		return refuse("explain_option_not_allowed", hint, "EXPLAIN option %s is not allowed", d.Defname)
	}
	arg, ok := readOptionValue(d.Arg)
	if !ok {
		return refuse("explain_option_not_allowed", hint, "EXPLAIN option %s has a value of kind %s", d.Defname, readNodeName(d.Arg))
	}
	switch {
	case readExplainBooleans[d.Defname]:
		return nil
	case readExplainOffOnly[d.Defname]:
		if d.Arg != nil && (arg == "false" || arg == "off" || arg == "0") {
			return nil
		}
		if d.Defname == "analyze" {
			return refuse("explain_option_not_allowed", hint, "EXPLAIN ANALYZE runs the statement")
		}
		return refuse("explain_option_not_allowed", hint, "EXPLAIN option %s is only allowed as false", strings.ToUpper(d.Defname))
	case d.Defname == "format":
		switch arg {
		case "text", "json", "yaml", "xml":
			return nil
		}
		return refuse("explain_option_not_allowed", hint, "EXPLAIN FORMAT %s is not allowed", arg)
	}
	return refuse("explain_option_not_allowed", hint, "EXPLAIN option %s is not allowed", d.Defname)
}

// readOptionValue renders an option argument lower-cased, the way
// PostgreSQL compares it. ok is false for an argument that is not a plain
// value.
func readOptionValue(n *pg_query.Node) (v string, ok bool) {
	if n == nil {
		return "", true
	}
	switch x := n.Node.(type) {
	case *pg_query.Node_String_:
		return strings.ToLower(x.String_.Sval), true
	case *pg_query.Node_Integer:
		if x.Integer.Ival == 0 {
			return "0", true
		}
		return "1", true
	case *pg_query.Node_Boolean:
		if x.Boolean.Boolval {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

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

// readIsStarIndirection reports (x).* in a select list, which expands to
// several output columns.
func readIsStarIndirection(n *pg_query.Node) bool {
	ind := n.GetAIndirection()
	if ind == nil || len(ind.Indirection) == 0 {
		return false
	}
	return ind.Indirection[len(ind.Indirection)-1].GetAStar() != nil
}

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

// readColumnRef is what a column reference resolved to.
type readColumnRef struct {
	name   string // the column name as written (last field)
	masked bool   // it may name a masked column
	star   bool   // it is * or q.*
}

// readUse says where a column reference stands.
type readUse int

const (
	readUseExpr readUse = iota
	// readUseTarget is the whole value of a select-list entry, where *
	// and q.* expand to columns.
	readUseTarget
	// readUseOutputName is a whole ORDER BY or DISTINCT ON item, where a
	// bare name may be an output column.
	readUseOutputName
)

// columnRef checks a column reference against every FROM item it could
// name.
func (c *readChecker) columnRef(cr *pg_query.ColumnRef, lv *readLevel, use readUse) (readColumnRef, *Refusal) {
	var ref readColumnRef
	if r := readKnownFields(cr); r != nil {
		return ref, r
	}
	names := make([]string, 0, len(cr.Fields))
	for i, f := range cr.Fields {
		switch x := f.GetNode().(type) {
		case *pg_query.Node_String_:
			names = append(names, x.String_.Sval)
		case *pg_query.Node_AStar:
			if i != len(cr.Fields)-1 {
				return ref, refuse("unsupported_syntax", readHintSyntax, "malformed column reference")
			}
			ref.star = true
		default:
			return ref, refuse("unsupported_syntax", readHintSyntax, "%s in a column reference is not supported", readNodeName(f))
		}
	}
	if len(names) > 3 || (ref.star && len(names) > 2) {
		return ref, refuse("unknown_reference", readHintReference, "database-qualified column reference %s is not allowed", readDotted(names, ref.star))
	}
	if ref.star && len(names) == 0 {
		for _, it := range lv.items {
			if it.table != nil && it.restricted() {
				return ref, readStarRefusal(it, "*")
			}
		}
		return ref, nil
	}
	if !ref.star && len(names) == 1 {
		ref.name = names[0]
		masked, r := c.unqualifiedColumn(names[0], lv, use == readUseOutputName)
		ref.masked = masked
		return ref, r
	}
	qual := names
	if !ref.star {
		qual = names[:len(names)-1]
		ref.name = names[len(names)-1]
	}
	cands := readCandidates(qual, lv)
	if len(cands) == 0 {
		return ref, refuse("unknown_reference", readHintReference, "%s does not name a table or alias in FROM", strings.Join(qual, "."))
	}
	for _, it := range cands {
		if ref.star {
			if it.restricted() {
				if use == readUseTarget {
					return ref, readStarRefusal(it, readDotted(names, true))
				}
				return ref, readWholeRowRefusal(it, readDotted(names, true))
			}
			continue
		}
		masked, r := readQualifiedColumn(it, ref.name)
		if r != nil {
			return ref, r
		}
		ref.masked = ref.masked || masked
	}
	return ref, nil
}

// readSystemColumns are refused by name: they are not in the policy's
// column lists, and there is nothing an agent needs them for.
var readSystemColumns = map[string]bool{"ctid": true, "xmin": true, "xmax": true, "cmin": true, "cmax": true, "tableoid": true}

// unqualifiedColumn checks a bare name against every base table visible at
// lv and outward. PostgreSQL picks the innermost match, or a whole-row
// reference when no column matches; the guard refuses if any of the
// possible readings is refused.
func (c *readChecker) unqualifiedColumn(name string, lv *readLevel, outputName bool) (masked bool, r *Refusal) {
	if readSystemColumns[name] {
		return false, refuse("column_not_allowed", "select ordinary columns only", "system column %s is not allowed", name)
	}
	known := outputName && slices.Contains(lv.outputs, name)
	var restricted *Table
	for l := lv; l != nil; l = l.parent {
		for _, it := range l.items {
			if col := it.column(name); col != nil {
				if r := readColumnAccess(it, col); r != nil {
					return false, r
				}
				masked = masked || col.Access == Masked
				known = true
			}
			if it.refname == name {
				if (it.table != nil || it.members != nil) && it.restricted() {
					return false, readWholeRowRefusal(it, name)
				}
				known = true
			}
			switch {
			case it.table != nil:
				if restricted == nil && it.restricted() {
					restricted = it.table
				}
			case it.members == nil:
				known = known || it.out.opaque || slices.Contains(it.out.names, name)
			}
		}
	}
	// A name that is no column the guard knows of, next to a restricted
	// table, could be a column the policy does not list (a stale or
	// incomplete column list): refuse rather than let PostgreSQL resolve
	// it.
	if !known && restricted != nil {
		hint := readColumnsHint(restricted)
		if slices.Contains(lv.outputs, name) {
			hint = "an output column can be named only in ORDER BY and DISTINCT ON; elsewhere repeat its expression, or GROUP BY its position"
		}
		return false, refuse("unknown_column", hint, "no table in FROM has a column %s", name)
	}
	return masked, nil
}

// readCandidates lists every FROM item, at lv and outward, that the
// qualifier could name: an alias or bare table name, or schema.table.
func readCandidates(qual []string, lv *readLevel) []*readItem {
	var out []*readItem
	for l := lv; l != nil; l = l.parent {
		for _, it := range l.items {
			switch len(qual) {
			case 1:
				if it.refname == qual[0] {
					out = append(out, it)
				}
			case 2:
				// PostgreSQL accepts schema.table only for an unaliased
				// table; matching aliased ones too is stricter. A table
				// read through its masked view is aliased by the rewrite,
				// so only its bare name or alias can qualify a column.
				if it.table != nil && it.table.Schema == qual[0] && it.table.Name == qual[1] && it.table.ReadName == "" {
					out = append(out, it)
				}
			}
		}
	}
	return out
}

// readQualifiedColumn checks q.col where q names it. A name that is not a
// column of a table is refused even though PostgreSQL might accept it:
// q.f with no column f is the function call f(q), which would hand the
// whole row to f.
func readQualifiedColumn(it *readItem, name string) (masked bool, r *Refusal) {
	switch {
	case it.table != nil:
		col := it.column(name)
		if col == nil || readSystemColumns[name] {
			return false, refuse("unknown_column", readColumnsHint(it.table), "%s has no column %s", it.refname, name)
		}
		if r := readColumnAccess(it, col); r != nil {
			return false, r
		}
		return col.Access == Masked, nil
	case it.members != nil:
		found := false
		for _, m := range it.members {
			col := m.column(name)
			if col == nil {
				continue
			}
			found = true
			if r := readColumnAccess(m, col); r != nil {
				return false, r
			}
			masked = masked || col.Access == Masked
		}
		if !found && it.restricted() {
			return false, refuse("unknown_column", readHintReference, "join %s has no column %s", it.refname, name)
		}
		return masked, nil
	}
	// A subquery, CTE or function: its columns were checked where they
	// were computed.
	return false, nil
}

func readColumnAccess(it *readItem, col *Column) *Refusal {
	switch col.Access {
	case Allowed, Masked:
		return nil
	case Denied:
		return refuse("column_not_allowed", readColumnsHint(it.table), "column %s of %s is not allowed", col.Name, it.table.QualifiedName())
	}
	return refuse("column_not_allowed", readColumnsHint(it.table), "column %s of %s has an unknown access level", col.Name, it.table.QualifiedName())
}

func readColumnsHint(t *Table) string {
	cols := t.AllowedColumns()
	if len(cols) == 0 {
		return "no columns of " + t.QualifiedName() + " may be read"
	}
	return "columns of " + t.QualifiedName() + " you may use: " + joinNames(cols)
}

func readStarRefusal(it *readItem, written string) *Refusal {
	return refuse("star_not_allowed", "list the columns you need: "+joinNames(readItemColumns(it)),
		"%s is not allowed over %s, which has restricted columns", written, readItemName(it))
}

func readWholeRowRefusal(it *readItem, written string) *Refusal {
	return refuse("whole_row_not_allowed", "select individual columns instead: "+joinNames(readItemColumns(it)),
		"whole-row reference %s to %s is not allowed, because it has restricted columns", written, readItemName(it))
}

func readItemName(it *readItem) string {
	if it.table != nil {
		return it.table.QualifiedName()
	}
	return it.refname
}

func readItemColumns(it *readItem) []string {
	if it.table != nil {
		return it.table.AllowedColumns()
	}
	var out []string
	for _, m := range it.members {
		out = append(out, m.table.AllowedColumns()...)
	}
	return out
}

func readDotted(names []string, star bool) string {
	s := strings.Join(names, ".")
	if star {
		if s == "" {
			return "*"
		}
		return s + ".*"
	}
	return s
}

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

// readRefusedTypes are pg_catalog types refused in casts and column
// definitions: xml input runs the XML parser on agent text, the object
// identifier types look up any object by name, so a cast such as
// 'public.secrets'::regclass tells whether a table outside the scope
// exists, and aclitem's input looks up the roles it names. oid itself
// stays: it is a number, and everything that maps an oid to an object is
// refused with the catalog lookup class (docs/architecture.md, Catalog
// lookups).
var readRefusedTypes = map[string]bool{"xml": true, "_xml": true, "aclitem": true, "_aclitem": true,
	"regclass": true, "regproc": true, "regprocedure": true, "regoper": true, "regoperator": true,
	"regtype": true, "regnamespace": true, "regrole": true, "regcollation": true, "regconfig": true,
	"regdictionary": true, "_regclass": true, "_regproc": true, "_regprocedure": true, "_regoper": true,
	"_regoperator": true, "_regtype": true, "_regnamespace": true, "_regrole": true, "_regcollation": true,
	"_regconfig": true, "_regdictionary": true}

func (c *readChecker) typeName(t *pg_query.TypeName, lv *readLevel) *Refusal {
	const hint = "use built-in types (unqualified or pg_catalog.)"
	if t == nil {
		return refuse("unsupported_syntax", readHintSyntax, "missing type name")
	}
	if r := readKnownFields(t); r != nil {
		return r
	}
	if r := readStrings(t.Names, "type name"); r != nil {
		return r
	}
	var name string
	switch len(t.Names) {
	case 1:
		name = t.Names[0].GetString_().GetSval()
	case 2:
		if s := t.Names[0].GetString_().GetSval(); s != "pg_catalog" {
			return refuse("type_not_allowed", hint, "type %s is not allowed", readJoinStrings(t.Names))
		}
		name = t.Names[1].GetString_().GetSval()
	default:
		return refuse("type_not_allowed", hint, "type %s is not allowed", readJoinStrings(t.Names))
	}
	if readRefusedTypes[name] {
		return refuse("type_not_allowed", hint, "type %s is not allowed", name)
	}
	for _, b := range t.ArrayBounds {
		if b.GetInteger() == nil {
			return refuse("unsupported_syntax", readHintSyntax, "malformed array bounds")
		}
	}
	return c.exprs(lv, t.Typmods...)
}

func readOperator(name []*pg_query.Node) *Refusal {
	if r := readStrings(name, "operator name"); r != nil {
		return r
	}
	if len(name) <= 1 {
		return nil
	}
	if len(name) == 2 && name[0].GetString_().GetSval() == "pg_catalog" {
		return nil
	}
	return refuse("operator_not_allowed", "use built-in operators (unqualified or OPERATOR(pg_catalog.op))",
		"operator %s is not allowed", readJoinStrings(name))
}

func readCollation(name []*pg_query.Node) *Refusal {
	if r := readStrings(name, "collation name"); r != nil {
		return r
	}
	if len(name) <= 1 || (len(name) == 2 && name[0].GetString_().GetSval() == "pg_catalog") {
		return nil
	}
	return refuse("collation_not_allowed", "use built-in collations (unqualified or pg_catalog.)", "collation %s is not allowed", readJoinStrings(name))
}

func readAlias(a *pg_query.Alias) *Refusal {
	if r := readKnownFields(a); r != nil {
		return r
	}
	return readStrings(a.Colnames, "column alias")
}

// readStrings refuses a name list holding anything but String nodes.
func readStrings(ns []*pg_query.Node, what string) *Refusal {
	for _, n := range ns {
		if n.GetString_() == nil {
			return refuse("unsupported_syntax", readHintSyntax, "%s of kind %s is not supported", what, readNodeName(n))
		}
	}
	return nil
}

func readJoinStrings(ns []*pg_query.Node) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = n.GetString_().GetSval()
	}
	return strings.Join(parts, ".")
}

// readFields is the closed list of parse-tree messages the read guard
// understands, each with the fields it may carry. A message of another kind,
// or one with any other field set, is refused: every field listed here is
// walked (or deliberately ignored because it cannot hold a name or an
// expression) by the code above, so a field the guard does not look at can
// never carry a table, column or call past it.
var readFields = readFieldSets(map[protoreflect.Name]string{
	"RawStmt":          "stmt stmt_location stmt_len",
	"SelectStmt":       "distinct_clause target_list from_clause where_clause group_clause group_distinct having_clause window_clause values_lists sort_clause limit_offset limit_count limit_option with_clause op all larg rarg",
	"ExplainStmt":      "query options",
	"DefElem":          "defname arg defaction location arg_location",
	"WithClause":       "ctes recursive location",
	"CommonTableExpr":  "ctename aliascolnames ctematerialized ctequery location",
	"ResTarget":        "name val location",
	"ColumnRef":        "fields location",
	"A_Const":          "ival fval boolval sval bsval isnull location",
	"ParamRef":         "number location",
	"A_Expr":           "kind name lexpr rexpr location",
	"BoolExpr":         "boolop args location",
	"NullTest":         "arg nulltesttype argisrow location",
	"BooleanTest":      "arg booltesttype location",
	"FuncCall":         "funcname args agg_order agg_filter over agg_within_group agg_star agg_distinct func_variadic funcformat location",
	"NamedArgExpr":     "arg name argnumber location",
	"TypeCast":         "arg type_name location",
	"TypeName":         "names typmods typemod array_bounds location",
	"CollateClause":    "arg collname location",
	"CaseExpr":         "arg args defresult location",
	"CaseWhen":         "expr result location",
	"CoalesceExpr":     "args location",
	"MinMaxExpr":       "op args location",
	"SubLink":          "sub_link_type testexpr oper_name subselect location",
	"RowExpr":          "args row_format colnames location",
	"A_ArrayExpr":      "elements location",
	"A_Indirection":    "arg indirection",
	"A_Indices":        "is_slice lidx uidx",
	"SQLValueFunction": "op typmod location",
	"GroupingSet":      "kind content location",
	"GroupingFunc":     "args location",
	"SortBy":           "node sortby_dir sortby_nulls use_op location",
	"WindowDef":        "name refname partition_clause order_clause frame_options start_offset end_offset location",
	"RangeVar":         "schemaname relname inh relpersistence alias location",
	"Alias":            "aliasname colnames",
	"RangeSubselect":   "lateral subquery alias",
	"RangeFunction":    "lateral ordinality is_rowsfrom functions alias coldeflist",
	"ColumnDef":        "colname type_name is_local coll_clause location",
	"JoinExpr":         "jointype is_natural larg rarg using_clause quals alias",
	"List":             "items",
})

func readFieldSets(in map[protoreflect.Name]string) map[protoreflect.Name]map[protoreflect.Name]bool {
	out := make(map[protoreflect.Name]map[protoreflect.Name]bool, len(in))
	for msg, fields := range in {
		set := map[protoreflect.Name]bool{}
		for _, f := range strings.Fields(fields) {
			set[protoreflect.Name(f)] = true
		}
		out[msg] = set
	}
	return out
}

// readKnownFields refuses a message that is not on the readFields list or
// has a field set that is not listed for it.
func readKnownFields(m proto.Message) *Refusal {
	pr := m.ProtoReflect()
	name := pr.Descriptor().Name()
	allowed, ok := readFields[name]
	if !ok {
		return refuse("unsupported_syntax", readHintSyntax, "%s is not supported", name)
	}
	var bad protoreflect.Name
	pr.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !allowed[fd.Name()] {
			bad = fd.Name()
			return false
		}
		return true
	})
	if bad != "" {
		return refuse("unsupported_syntax", readHintSyntax, "%s with %s is not supported", name, bad)
	}
	return nil
}

// readNodeName is the parse-tree kind of n, such as "XmlExpr".
func readNodeName(n *pg_query.Node) string {
	if n == nil {
		return "nothing"
	}
	pr := n.ProtoReflect()
	fd := pr.WhichOneof(pr.Descriptor().Oneofs().ByName("node"))
	if fd == nil {
		return "an empty node"
	}
	return string(fd.Message().Name())
}

// readStatementKinds names the statements agents most often try, in SQL.
var readStatementKinds = map[string]string{
	"InsertStmt":         "INSERT",
	"UpdateStmt":         "UPDATE",
	"DeleteStmt":         "DELETE",
	"MergeStmt":          "MERGE",
	"TransactionStmt":    "transaction control (BEGIN, COMMIT, ROLLBACK, PREPARE TRANSACTION, ...)",
	"VariableSetStmt":    "SET / RESET",
	"VariableShowStmt":   "SHOW",
	"CopyStmt":           "COPY",
	"DoStmt":             "DO",
	"CallStmt":           "CALL",
	"CreateStmt":         "CREATE TABLE",
	"CreateTableAsStmt":  "CREATE TABLE AS",
	"ViewStmt":           "CREATE VIEW",
	"IndexStmt":          "CREATE INDEX",
	"CreateFunctionStmt": "CREATE FUNCTION",
	"DropStmt":           "DROP",
	"TruncateStmt":       "TRUNCATE",
	"AlterTableStmt":     "ALTER TABLE",
	"GrantStmt":          "GRANT / REVOKE",
	"GrantRoleStmt":      "GRANT / REVOKE role",
	"VacuumStmt":         "VACUUM / ANALYZE",
	"NotifyStmt":         "NOTIFY",
	"ListenStmt":         "LISTEN",
	"UnlistenStmt":       "UNLISTEN",
	"LockStmt":           "LOCK",
	"PrepareStmt":        "PREPARE",
	"ExecuteStmt":        "EXECUTE",
	"DeallocateStmt":     "DEALLOCATE",
	"DeclareCursorStmt":  "DECLARE CURSOR",
	"FetchStmt":          "FETCH",
	"CheckPointStmt":     "CHECKPOINT",
	"DiscardStmt":        "DISCARD",
	"LoadStmt":           "LOAD",
	"RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW",
	"AlterSystemStmt":    "ALTER SYSTEM",
	"ExplainStmt":        "EXPLAIN",
}

func readStatementName(n *pg_query.Node) string {
	kind := readNodeName(n)
	if sql, ok := readStatementKinds[kind]; ok {
		return sql + " (" + kind + ")"
	}
	return kind
}
