package migrate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// TableSchema is the definition of some tables of one database, read by
// the catalog snapshot, for comparing the same tables in two databases
// (a branch and its source, docs/architecture.md, Write modes). It is
// compared by name where diffCatalogs compares by oid: the two databases
// give a table different oids and, where one has dropped columns,
// different column numbers.
//
// What it compares is what a branch must share with its source for a
// merge to be the same change: each relation's kind; each column's name,
// type, nullity and default (or generation expression), not its position;
// each constraint's definition, not whether it is validated (a
// schema-strategy branch adds constraints its sampled rows violate NOT
// VALID); each index's definition. Comments and identity options are left
// out: the catalog copy of a schema branch does not carry them.
type TableSchema struct {
	lines []string // sorted
}

// ReadTableSchema reads the definitions of tables, named schema.name as a
// scope lists them, inside tx. It sets the search_path to pg_catalog for
// the rest of tx, so that types, expressions and index definitions name
// every object qualified, alike in both databases.
func ReadTableSchema(ctx context.Context, tx pgx.Tx, tables []string) (*TableSchema, error) {
	if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config('search_path', 'pg_catalog', true)"); err != nil {
		return nil, fmt.Errorf("table schema: %w", err)
	}
	if tables == nil {
		tables = []string{} // nil would read the whole catalog
	}
	c, err := snapshot(ctx, tx, tables, nil, nil, nil, tables)
	if err != nil {
		return nil, fmt.Errorf("table schema: %w", err)
	}
	var lines []string
	for _, r := range c.rels {
		lines = append(lines, r.qualified()+": relation kind "+r.Kind)
	}
	for _, col := range c.columns {
		line := c.rels[col.Rel].qualified() + ": column " + col.Name + " " + col.Type
		if col.NotNull {
			line += " not null"
		}
		if col.Default != nil {
			line += " default " + *col.Default
		}
		lines = append(lines, line)
	}
	for k, def := range c.constraints {
		if c.unvalidated[k] {
			// pg_get_constraintdef appends exactly this to an unvalidated
			// constraint's definition.
			def = strings.TrimSuffix(def, " NOT VALID")
		}
		lines = append(lines, c.rels[k.rel].qualified()+": constraint "+k.name+" "+def)
	}
	for k, def := range c.indexes {
		lines = append(lines, c.rels[k.rel].qualified()+": index "+def)
	}
	slices.Sort(lines)
	return &TableSchema{lines: lines}, nil
}

// TableDiff is how two TableSchemas differ: each side's definition lines
// (e.g. "public.orders: column gift boolean") the other lacks, sorted.
type TableDiff struct {
	// Removed are only in the first schema, Added only in the second.
	Removed, Added []string
}

// Empty says whether the two schemas were the same.
func (d TableDiff) Empty() bool { return len(d.Removed) == 0 && len(d.Added) == 0 }

// CompareTableSchemas compares from with to.
func CompareTableSchemas(from, to *TableSchema) TableDiff {
	only := func(a, b []string) []string {
		seen := map[string]int{}
		for _, l := range b {
			seen[l]++
		}
		var out []string
		for _, l := range a {
			if seen[l] > 0 {
				seen[l]--
				continue
			}
			out = append(out, l)
		}
		return out
	}
	return TableDiff{Removed: only(from.lines, to.lines), Added: only(to.lines, from.lines)}
}
