// What a read's column references resolve against: query levels, the CTE
// names visible at each, and the FROM items (readItem) with their columns.

package sqlguard

import (
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

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
// column that is not plainly allowed is treated as restricted. The
// migration guard decides which tables have restricted columns with it too.
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
