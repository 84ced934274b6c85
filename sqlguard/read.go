// The read guard's entry: CheckRead parses one statement, walks it with a
// readChecker, applies the row cap and checks the rewritten SQL once more.
// The walk itself lives in the other read_*.go files.

package sqlguard

import (
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
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
