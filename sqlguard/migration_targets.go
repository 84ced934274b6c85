// Which relations a migration statement writes and reads: names resolved
// through the search path, targets that must be writable and reads that
// must be in scope.

package sqlguard

import (
	"slices"
	"sort"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// migListTarget is a table or index named by a list of strings; the last
// trim names are not part of it (the column of COMMENT ON COLUMN).
type migListTarget struct {
	list     *pg.List
	trim     int
	index    bool
	resolved string
}

func (t *migListTarget) names() []string {
	names := migStrings(t.list.GetItems())
	return names[:max(len(names)-t.trim, 0)]
}

func (c *migStmt) searchPath() []string {
	if len(c.read.SearchPath) > 0 {
		return c.read.SearchPath
	}
	return []string{"public"}
}

// resolve qualifies a relation name: a new object goes to the first schema
// of the search path, an existing one to the first schema where known()
// holds (or the first schema, so that the refusal names something).
func (c *migStmt) resolve(schema, name string, known func(string) bool) string {
	if schema != "" {
		return schema + "." + name
	}
	path := c.searchPath()
	if known != nil {
		for _, s := range path {
			if known(s + "." + name) {
				return s + "." + name
			}
		}
	}
	return path[0] + "." + name
}

func (c *migStmt) writable(q string) bool { return c.w.Tables[q] }

func (c *migStmt) readable(q string) bool { return c.w.Tables[q] || c.read.Tables[q] != nil }

func (c *migStmt) crossDatabase(name string) *Refusal {
	return c.refuse("cross_database", "name tables as schema.table in the current database",
		"%s names another database", name)
}

// checkTargets resolves every target and requires it to be writable.
func (c *migStmt) checkTargets() *Refusal {
	add := func(q string) {
		if !slices.Contains(c.out.Targets, q) {
			c.out.Targets = append(c.out.Targets, q)
		}
	}
	// Walk order keeps Targets in the order the statement names them.
	for _, ref := range c.walk.rangeVars {
		rv := ref.rv
		if _, ok := c.targets[rv]; !ok {
			continue
		}
		if rv.Catalogname != "" {
			return c.crossDatabase(rv.Catalogname + "." + rv.Schemaname + "." + rv.Relname)
		}
		if slices.Contains(c.indexRels, rv) {
			q := c.resolve(rv.Schemaname, rv.Relname, nil)
			c.targets[rv] = q
			add(q)
			c.out.IndexTargets = append(c.out.IndexTargets, q)
			continue
		}
		var q string
		if rv == c.newRel {
			q = c.resolve(rv.Schemaname, rv.Relname, nil)
		} else {
			q = c.resolve(rv.Schemaname, rv.Relname, c.writable)
		}
		c.targets[rv] = q
		if !c.writable(q) {
			verb := migKindVerb(c.kinds[0])
			if c.newRel != nil && rv != c.newRel {
				verb = "the new table attaches to" // INHERITS, PARTITION OF
			}
			return c.notWritable(verb, q)
		}
		add(q)
	}
	for _, t := range c.listTargets {
		names := t.names()
		var schema, name string
		switch len(names) {
		case 1:
			name = names[0]
		case 2:
			schema, name = names[0], names[1]
		default:
			return c.crossDatabase(strings.Join(names, "."))
		}
		if t.index {
			t.resolved = c.resolve(schema, name, nil)
			add(t.resolved)
			c.out.IndexTargets = append(c.out.IndexTargets, t.resolved)
			continue
		}
		t.resolved = c.resolve(schema, name, c.writable)
		if !c.writable(t.resolved) {
			return c.notWritable(migKindVerb(c.kinds[0]), t.resolved)
		}
		add(t.resolved)
	}
	return nil
}

func (c *migStmt) notWritable(verb, q string) *Refusal {
	hint := "writable tables: " + joinNames(migSortedKeys(c.w.Tables))
	if len(c.w.Tables) == 0 {
		hint = "this scope has no writable tables"
	}
	return c.refuse("table_not_writable", hint, "%s %s, which is not a writable table", verb, q)
}

// checkReads requires every relation that is not a target or a CTE to be
// writable or readable.
func (c *migStmt) checkReads() *Refusal {
	for _, ref := range c.walk.rangeVars {
		rv := ref.rv
		if _, ok := c.targets[rv]; ok || ref.cte {
			continue
		}
		if rv.Catalogname != "" {
			return c.crossDatabase(rv.Catalogname + "." + rv.Schemaname + "." + rv.Relname)
		}
		q := c.resolve(rv.Schemaname, rv.Relname, c.readable)
		if !c.readable(q) {
			names := migSortedKeys(c.w.Tables)
			for t := range c.read.Tables {
				if !c.w.Tables[t] {
					names = append(names, t)
				}
			}
			sort.Strings(names)
			return c.refuse("table_not_in_scope", "tables a migration may read: "+joinNames(names),
				"the statement reads %s, which is not in scope", q)
		}
		c.reads[rv] = q
		if !slices.Contains(c.out.Reads, q) && !slices.Contains(c.out.Targets, q) {
			c.out.Reads = append(c.out.Reads, q)
		}
	}
	return nil
}

// relationName is the resolved name of a non-CTE RangeVar, target or read.
func (c *migStmt) relationName(rv *pg.RangeVar) string {
	if q, ok := c.targets[rv]; ok {
		return q
	}
	return c.reads[rv]
}
