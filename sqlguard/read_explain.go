// EXPLAIN in reads: the closed list of options, and the refusal of EXPLAIN
// over row-filtered tables.

package sqlguard

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

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
