package roles

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	dbcatalog "github.com/airlock-dev/airlock/catalog"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// filter is a validated row filter of one existing read table.
type filter struct {
	Schema, Table string
	// Source is the filter as the scope file has it; Qual its parse tree.
	Source string
	Qual   *pg_query.Node
}

func (f filter) table() string { return f.Schema + "." + f.Table }

// FilterError is a row filter that Plan refuses, with the table it belongs
// to and why.
type FilterError struct {
	Table  string // "schema.table"
	Reason string
}

// Path is where the filter is in the scope file, as `airlock check`
// writes it.
func (e *FilterError) Path() string {
	return `$.read.tables[` + strconv.Quote(e.Table) + `].row_filter`
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("row_filter of %s refused: %s", e.Table, e.Reason)
}

// Aggregates and window functions are in pg_proc too. max() picks the
// strongest volatility over all overloads because 'v' > 's' > 'i'.
const functionsSQL = `
SELECT p.proname, max(p.provolatile)::text
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'pg_catalog'::regnamespace
GROUP BY p.proname`

// filterFunctions is the read guard's function rule, with volatile
// functions refused too: the rule lets a few harmless volatile functions
// such as random() into queries, but a row filter must say the same thing
// every time it is evaluated.
type filterFunctions struct{ sqlguard.FunctionRule }

func (f filterFunctions) CheckFunction(schema, name string) *sqlguard.Refusal {
	if r := f.FunctionRule.CheckFunction(schema, name); r != nil {
		return r
	}
	if (schema == "" || schema == "pg_catalog") && f.Volatility[name] == 'v' {
		return &sqlguard.Refusal{
			Code:   "function_not_allowed",
			Reason: fmt.Sprintf("%s is volatile; a row filter must give the same answer every time", name),
			Hint:   "use immutable or stable functions",
		}
	}
	return nil
}

func loadFunctionRule(ctx context.Context, q querier) (sqlguard.FunctionRule, error) {
	rows, err := q.Query(ctx, functionsSQL)
	if err != nil {
		return sqlguard.FunctionRule{}, fmt.Errorf("plan roles: load functions: %w", err)
	}
	defer rows.Close()
	vol := map[string]byte{}
	for rows.Next() {
		var name, v string
		if err := rows.Scan(&name, &v); err != nil {
			return sqlguard.FunctionRule{}, fmt.Errorf("plan roles: load functions: %w", err)
		}
		vol[name] = v[0]
	}
	if err := rows.Err(); err != nil {
		return sqlguard.FunctionRule{}, fmt.Errorf("plan roles: load functions: %w", err)
	}
	return sqlguard.FunctionRule{Volatility: vol, Allowed: map[string]bool{}}, nil
}

// validateFilters checks every row filter of an existing read table and
// returns them sorted by table. The first refused filter is returned as a
// *FilterError.
func validateFilters(ctx context.Context, q querier, scope *scopes.Scope, cat *catalog) ([]filter, error) {
	var tables []string
	for table, rule := range scope.Read.Tables {
		if rule.RowFilter != "" && len(cat.columns[table]) > 0 {
			tables = append(tables, table)
		}
	}
	if len(tables) == 0 {
		return nil, nil
	}
	sort.Strings(tables)
	rule, err := loadFunctionRule(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []filter
	for _, table := range tables {
		if k := cat.kinds[table]; k != "r" && k != "p" {
			// Row-level security exists on tables only.
			return nil, &FilterError{Table: table, Reason: "is not a table (a view, materialized view or foreign table); row filters need row-level security, which only tables have"}
		}
		f, err := validateFilter(table, cat.columns[table], scope.Read.Tables[table].RowFilter, filterFunctions{rule})
		if err != nil {
			return nil, err
		}
		if err := explainFilter(ctx, q, f); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// validateFilter checks source with sqlguard.ParseRowFilter (what needs no
// database: one boolean expression, no subquery, no other table) and then
// runs the read guard over it with only this table in scope and the
// catalog's columns and functions.
func validateFilter(table string, columns []string, source string, funcs sqlguard.FunctionChecker) (filter, error) {
	schema, rel := splitQualified(table)
	qual, r := sqlguard.ParseRowFilter(table, source)
	if r != nil {
		return filter{}, &FilterError{Table: table, Reason: r.Reason}
	}
	t := &sqlguard.Table{Schema: schema, Name: rel}
	for _, c := range columns {
		t.Columns = append(t.Columns, sqlguard.Column{Name: c, Access: sqlguard.Allowed})
	}
	policy := &sqlguard.Policy{
		Tables:     map[string]*sqlguard.Table{table: t},
		SearchPath: []string{schema},
		Functions:  funcs,
	}
	if _, err := policy.CheckRead("SELECT 1 FROM "+qualified(schema, rel)+" WHERE "+source, 1); err != nil {
		var ref *sqlguard.Refusal
		if errors.As(err, &ref) {
			return filter{}, &FilterError{Table: table, Reason: ref.Reason}
		}
		return filter{}, &FilterError{Table: table, Reason: err.Error()}
	}
	return filter{Schema: schema, Table: rel, Source: source, Qual: qual}, nil
}

// explainFilter has PostgreSQL analyze the validated filter without running
// it, which catches what the guard leaves to the server: unknown columns,
// and expressions that are not boolean. The statement is deparsed from the
// checked tree, not built from the file's text.
func explainFilter(ctx context.Context, q querier, f filter) error {
	// doctor runs this as a principal that may not read the table (the
	// read role reads a masked table through its view): the admin's plan,
	// which can, has checked the filter.
	readable, err := dbcatalog.MaySelect(ctx, q, qualified(f.Schema, f.Table))
	if err != nil {
		return fmt.Errorf("plan roles: %w", err)
	}
	if !readable {
		return nil
	}
	tree, err := pg_query.Parse("SELECT 1 FROM " + qualified(f.Schema, f.Table) + " WHERE true")
	if err != nil {
		return fmt.Errorf("plan roles: %w", err)
	}
	tree.Stmts[0].Stmt.GetSelectStmt().WhereClause = f.Qual
	sql, err := pg_query.Deparse(tree)
	if err != nil {
		return fmt.Errorf("plan roles: %w", err)
	}
	rows, err := q.Query(ctx, "EXPLAIN (COSTS OFF) "+sql)
	if err == nil {
		rows.Close()
		err = rows.Err()
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return &FilterError{Table: f.Schema + "." + f.Table, Reason: pe.Message}
	}
	if err != nil {
		return fmt.Errorf("plan roles: check row_filter of %s.%s: %w", f.Schema, f.Table, err)
	}
	return nil
}
