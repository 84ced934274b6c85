// Column references in reads: each one checked against every FROM item it
// could name, with the refusals for denied, unknown, * and whole-row uses.

package sqlguard

import (
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

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
