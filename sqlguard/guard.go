package sqlguard

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Access says what a policy lets an agent do with one column.
type Access int

const (
	// Denied columns may not appear anywhere in a statement.
	Denied Access = iota
	// Allowed columns may be used freely.
	Allowed
	// Masked columns may only be selected as plain top-level output
	// columns; their values are replaced by a keyed hash by the caller.
	Masked
)

// Column is one column of an in-scope table, as the catalog has it.
type Column struct {
	Name   string
	Access Access
}

// Table is an in-scope table. Columns lists every column of the table in
// catalog order, including denied ones: the guard needs them to resolve
// unqualified column references.
type Table struct {
	Schema  string
	Name    string
	Columns []Column
	// Restricted is true when the scope lists columns or masks for this
	// table, so that * and whole-row references could expose more than the
	// allowed columns.
	Restricted bool
	// ReadSchema and ReadName, when set, are the relation reads of this
	// table are rewritten to: for a table with masked columns, the scope's
	// view that hashes them (docs/architecture.md, Masking). The rewrite
	// keeps the table's name as the reference's alias, so the query's
	// column references read as written.
	ReadSchema, ReadName string
	// RowFiltered is true when the scope may read only some of the rows
	// the planner's statistics count: the scope has a row_filter for the
	// table, row-level security is enabled on it, or it is a view (whose
	// query may filter the rows of the tables behind it). EXPLAIN over it
	// is refused, because its estimates count the hidden rows.
	RowFiltered bool
}

// QualifiedName is schema.name.
func (t *Table) QualifiedName() string { return t.Schema + "." + t.Name }

// Column returns the named column, or nil when the table has none.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// AllowedColumns lists the names of the columns that may be selected.
func (t *Table) AllowedColumns() []string {
	var out []string
	for _, c := range t.Columns {
		if c.Access != Denied {
			out = append(out, c.Name)
		}
	}
	return out
}

// FunctionChecker decides whether a function may be called. schema is ""
// for an unqualified name. It returns nil when the call is allowed and a
// *Refusal otherwise.
type FunctionChecker interface {
	CheckFunction(schema, name string) *Refusal
}

// Policy is everything the guard needs to decide on a statement.
type Policy struct {
	// Tables maps "schema.name" to an in-scope table.
	Tables map[string]*Table
	// SearchPath is the list of schemas an unqualified table name is
	// looked up in, in order (default: public).
	SearchPath []string
	// Functions decides on every function call; nil refuses all calls.
	Functions FunctionChecker
}

// Refusal is the error returned when a statement is refused. Code is
// stable and documented; Reason says what was refused and Hint what is
// allowed instead, in words an agent can act on.
type Refusal struct {
	Code   string
	Reason string
	Hint   string
}

func (r *Refusal) Error() string {
	if r.Hint == "" {
		return fmt.Sprintf("%s: %s", r.Code, r.Reason)
	}
	return fmt.Sprintf("%s: %s (%s)", r.Code, r.Reason, r.Hint)
}

func refuse(code, hint, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Reason: fmt.Sprintf(format, args...), Hint: hint}
}

// ReadPlan is an accepted read statement, rewritten to run.
type ReadPlan struct {
	// SQL is the statement to execute: deparsed from the checked tree,
	// with every table schema-qualified and the row cap applied as a LIMIT
	// (not for EXPLAIN).
	SQL string
	// Explain is true for EXPLAIN statements.
	Explain bool
	// MaskedOutputs holds the zero-based positions of output columns that
	// carry a masked column and must be masked by the caller.
	MaskedOutputs []int
	// Tables lists the in-scope tables the statement reads, qualified.
	Tables []string
	// Fingerprint is pg_query's fingerprint of the original statement.
	Fingerprint string
}

func joinNames(names []string) string { return strings.Join(names, ", ") }

// Warm runs the parser once. pg_query's first parse in a process sets up
// the parser's memory and costs milliseconds; a server calls Warm while it
// waits on the database at startup, so the agent's first call does not pay.
func Warm() { _, _ = pg_query.Parse("SELECT 1") }
