package sqlguard

import (
	"strings"

	"github.com/airlock-dev/airlock/scopes"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// ParseRowFilter is scopes.ParseRowFilter, the offline check of a scope's
// row_filter, with its reason wrapped in the guard's Refusal
// (row_filter_not_allowed).
//
// What needs the catalog (that the columns exist, that the functions are
// not volatile, that the expression is boolean) is checked by the caller
// against the database; `airlock check` runs this alone, `airlock scope
// plan` and `airlock doctor` run both, so all three say the same words.
func ParseRowFilter(table, source string) (*pg_query.Node, *Refusal) {
	where, err := scopes.ParseRowFilter(table, source)
	if err != nil {
		return nil, &Refusal{Code: "row_filter_not_allowed", Reason: err.Error(),
			Hint: "a row filter is one boolean expression over this table's columns, such as tenant_id = 42"}
	}
	return where, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
