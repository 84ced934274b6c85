package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// SchemaDiff is what a migration changed in the user schemas' catalog.
type SchemaDiff struct {
	// Changes are sorted by Name, then Object, then Action.
	Changes []SchemaChange `json:"changes"`
}

// SchemaChange is one catalog object added, dropped, changed or renamed.
type SchemaChange struct {
	// Object is "table", "view", "column", "index" or "constraint".
	Object string `json:"object"`
	// Name is qualified: schema.table for tables and views, schema.index
	// for indexes, schema.table.column and schema.table.constraint. A
	// renamed object is named by its old name.
	Name string `json:"name"`
	// Action is "added", "dropped", "changed" or "renamed".
	Action string `json:"action"`
	// Before and After are readable definitions (a column's type, nullity
	// and default; an index's CREATE INDEX; a constraint's definition; a
	// table's column list; a renamed object's old and new names).
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// catalog is a snapshot of the user schemas, taken inside the migration's
// transaction. Relations are keyed by oid so that a rename is a rename, not
// a drop and an add. Indexes and constraints are keyed by table and name:
// ALTER COLUMN TYPE rebuilds them under new oids but the same names.
type catalog struct {
	rels        map[uint32]*relation
	columns     map[columnKey]*column
	indexes     map[objectKey]string // definition
	constraints map[objectKey]string // definition
	// unvalidated are the constraints added NOT VALID and not validated
	// since.
	unvalidated map[objectKey]bool
}

type relation struct {
	OID      uint32  `json:"oid"`
	Schema   string  `json:"schema"`
	Name     string  `json:"name"`
	Kind     string  `json:"kind"`   // pg_class.relkind
	Tuples   float64 `json:"tuples"` // pg_class.reltuples, -1 if never analyzed
	Filenode uint32  `json:"filenode"`
	Comment  *string `json:"comment"`
	ViewDef  *string `json:"viewdef"`
	// Signature stands for the whole definition of a relation outside the
	// migration's targets, whose columns, indexes and constraints are not
	// read (see snapshotSQL).
	Signature *string `json:"signature"`
}

func (r *relation) qualified() string { return r.Schema + "." + r.Name }

func (r *relation) isView() bool { return r.Kind == "v" || r.Kind == "m" }

// hasStorage says whether the relation has a heap file a rewrite replaces.
func (r *relation) hasStorage() bool { return r.Kind == "r" || r.Kind == "m" }

type column struct {
	Rel       uint32  `json:"rel"`
	Num       int     `json:"num"`
	Name      string  `json:"name"`
	Type      string  `json:"type"`
	TypeOID   uint32  `json:"typid"`
	TypeMod   int32   `json:"typmod"`
	NotNull   bool    `json:"notnull"`
	Default   *string `json:"default"`
	Identity  string  `json:"identity"`
	Generated string  `json:"generated"`
	Comment   *string `json:"comment"`
}

type columnKey struct {
	rel uint32
	num int
}

type objectKey struct {
	rel  uint32
	name string
}

// snapshotSQL returns the catalog of the user schemas as one JSON document:
// one round trip. pg_* schemas are reserved for the system (pg_catalog,
// pg_toast*, pg_temp*); airlock's own schema is bookkeeping, and what is in
// airlock_trash was dropped (a table moved there reads as dropped). With $4 set it
// reads only those relations (see snapshotAfter). With $6 set it reads
// exactly the relations so named, whatever their kind or schema, columns
// of views included (see ReadTableSchema).
//
// Relations come in two tiers. The migration's targets ($2, by name or by
// one of their indexes, or $5 by oid: a target may be renamed) and the
// relations created since the first snapshot (not in $3) are read in full: columns, defaults, indexes, constraints,
// view query. Every other relation gets one signature, an md5 over its raw
// catalog rows: enough to notice a change, and it keeps the snapshot fast
// with hundreds of tables.
//
// It must not wait for locks other sessions hold on tables the migration
// does not touch (a prepared change keeps ACCESS EXCLUSIVE until its
// review), nor keep any lock afterwards. pg_get_indexdef, pg_get_expr with
// a relation and pg_get_viewdef all lock the relation, so only the full
// tier calls them. Defaults never reference columns, so
// pg_get_expr(adbin, 0) renders them without a lock.
const snapshotSQL = `
WITH wanted AS (
  SELECT unnest($2::text[]) AS name
), detailed AS (
  SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN wanted w ON w.name = n.nspname || '.' || c.relname
  UNION
  SELECT i.indrelid FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = ic.relnamespace JOIN wanted w ON w.name = n.nspname || '.' || ic.relname
), rel AS (
  SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
         c.reltuples::float8 AS tuples, c.relfilenode::int8 AS filenode, ds.description AS comment,
         coalesce(c.oid IN (SELECT oid FROM detailed) OR c.oid = ANY ($5::oid[])
          OR ($3::oid[] IS NOT NULL AND c.oid <> ALL ($3::oid[])), false) AS detail
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_description ds ON ds.objoid = c.oid AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = 0
  WHERE ($6::text[] IS NULL AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND n.nspname NOT LIKE 'pg\_%' AND n.nspname NOT IN ('information_schema', $1, 'airlock_trash')
    AND ($4::oid[] IS NULL OR c.oid = ANY ($4::oid[])))
    OR n.nspname || '.' || c.relname = ANY ($6::text[])
)
SELECT json_build_object(
  'relations', (
    SELECT coalesce(json_agg(json_build_object(
      'oid', oid::int8, 'schema', schema, 'name', name, 'kind', kind, 'tuples', tuples,
      'filenode', filenode, 'comment', comment,
      'viewdef', CASE WHEN detail AND kind IN ('v', 'm') THEN pg_get_viewdef(oid, true) END,
      'signature', CASE WHEN NOT detail THEN md5(concat_ws('|',
        (SELECT string_agg(concat_ws(',', a.attnum, a.attname, a.atttypid, a.atttypmod, a.attnotnull,
                 a.attidentity, a.attgenerated, md5(d.adbin::text), cd.description), ';' ORDER BY a.attnum)
           FROM pg_attribute a
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           LEFT JOIN pg_description cd ON cd.objoid = a.attrelid AND cd.classoid = 'pg_class'::regclass AND cd.objsubid = a.attnum
           WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped),
        (SELECT string_agg(concat_ws(',', ic.relname, i.indisunique, i.indkey, i.indclass, i.indoption,
                 md5(i.indexprs::text), md5(i.indpred::text)), ';' ORDER BY ic.relname)
           FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = rel.oid),
        (SELECT string_agg(concat_ws(',', co.conname, co.contype, co.conkey, co.confrelid, co.confkey,
                 co.convalidated, md5(co.conbin::text)), ';' ORDER BY co.conname)
           FROM pg_constraint co WHERE co.conrelid = rel.oid),
        (SELECT md5(r.ev_action::text) FROM pg_rewrite r WHERE r.ev_class = rel.oid AND r.rulename = '_RETURN')))
      END)), '[]')
    FROM rel),
  'columns', (
    SELECT coalesce(json_agg(json_build_object(
      'rel', a.attrelid::int8, 'num', a.attnum, 'name', a.attname,
      'type', format_type(a.atttypid, a.atttypmod), 'typid', a.atttypid::int8, 'typmod', a.atttypmod,
      'notnull', a.attnotnull,
      'default', CASE WHEN d.adbin IS NULL THEN NULL
                      WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, 0)
                      ELSE pg_get_expr(d.adbin, d.adrelid) END,
      'identity', a.attidentity::text, 'generated', a.attgenerated::text,
      'comment', ds.description)), '[]')
    FROM pg_attribute a
    JOIN rel ON rel.oid = a.attrelid AND rel.detail AND (rel.kind IN ('r', 'p', 'f') OR $6::text[] IS NOT NULL)
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    LEFT JOIN pg_description ds ON ds.objoid = a.attrelid AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped),
  'indexes', (
    SELECT coalesce(json_agg(json_build_object(
      'rel', i.indrelid::int8, 'name', ic.relname, 'def', pg_get_indexdef(i.indexrelid))), '[]')
    FROM pg_index i JOIN rel ON rel.oid = i.indrelid AND rel.detail JOIN pg_class ic ON ic.oid = i.indexrelid),
  'constraints', (
    SELECT coalesce(json_agg(json_build_object(
      'rel', co.conrelid::int8, 'name', co.conname, 'def', pg_get_constraintdef(co.oid),
      'validated', co.convalidated)), '[]')
    FROM pg_constraint co JOIN rel ON rel.oid = co.conrelid AND rel.detail)
)`

type namedDef struct {
	Rel       uint32 `json:"rel"`
	Name      string `json:"name"`
	Def       string `json:"def"`
	Validated *bool  `json:"validated"` // constraints only
}

// snapshotBefore reads the whole catalog of the user schemas. detail
// names the relations (tables, or indexes standing for their table) to
// read in full.
func snapshotBefore(ctx context.Context, tx pgx.Tx, detail []string) (*catalog, error) {
	return snapshot(ctx, tx, detail, nil, nil, nil, nil)
}

// snapshotAfter reads the catalog again after the statements, but only for
// the relations the transaction holds a lock on: PostgreSQL locks every
// relation whose definition a statement changes (new ones included), so
// the others are copied from before. With hundreds of tables this halves
// a dry run's cost.
func snapshotAfter(ctx context.Context, tx pgx.Tx, before *catalog, locked []uint32) (*catalog, error) {
	known := make([]uint32, 0, len(before.rels))
	var detailed []uint32
	for oid, r := range before.rels {
		known = append(known, oid)
		if r.Signature == nil {
			detailed = append(detailed, oid)
		}
	}
	if locked == nil {
		locked = []uint32{}
	}
	part, err := snapshot(ctx, tx, nil, known, locked, detailed, nil)
	if err != nil {
		return nil, err
	}
	reread := make(map[uint32]bool, len(locked))
	for _, oid := range locked {
		reread[oid] = true
	}
	for oid, r := range before.rels {
		if !reread[oid] {
			part.rels[oid] = r
		}
	}
	for k, col := range before.columns {
		if !reread[k.rel] {
			part.columns[k] = col
		}
	}
	for k, def := range before.indexes {
		if !reread[k.rel] {
			part.indexes[k] = def
		}
	}
	for k, def := range before.constraints {
		if !reread[k.rel] {
			part.constraints[k] = def
		}
	}
	for k := range before.unvalidated {
		if !reread[k.rel] {
			part.unvalidated[k] = true
		}
	}
	return part, nil
}

// snapshot runs snapshotSQL: detail names and detailOIDs select the full
// tier; known (the oids of the first snapshot) and only are nil for the
// first snapshot; named, when not nil, replaces the user schemas with
// exactly the relations it names.
func snapshot(ctx context.Context, tx pgx.Tx, detail []string, known, only, detailOIDs []uint32, named []string) (*catalog, error) {
	if detail == nil {
		detail = []string{}
	}
	var raw []byte
	if err := tx.QueryRow(ctx, snapshotSQL, airlockSchema, detail, known, only, detailOIDs, named).Scan(&raw); err != nil {
		return nil, fmt.Errorf("catalog snapshot: %w", err)
	}
	var doc struct {
		Relations   []*relation `json:"relations"`
		Columns     []*column   `json:"columns"`
		Indexes     []namedDef  `json:"indexes"`
		Constraints []namedDef  `json:"constraints"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("catalog snapshot: decode: %w", err)
	}
	c := &catalog{
		rels:        make(map[uint32]*relation, len(doc.Relations)),
		columns:     make(map[columnKey]*column, len(doc.Columns)),
		indexes:     make(map[objectKey]string, len(doc.Indexes)),
		constraints: make(map[objectKey]string, len(doc.Constraints)),
		unvalidated: map[objectKey]bool{},
	}
	for _, r := range doc.Relations {
		c.rels[r.OID] = r
	}
	for _, col := range doc.Columns {
		c.columns[columnKey{col.Rel, col.Num}] = col
	}
	for _, d := range doc.Indexes {
		c.indexes[objectKey{d.Rel, d.Name}] = d.Def
	}
	for _, d := range doc.Constraints {
		c.constraints[objectKey{d.Rel, d.Name}] = d.Def
		if d.Validated != nil && !*d.Validated {
			c.unvalidated[objectKey{d.Rel, d.Name}] = true
		}
	}
	return c, nil
}

// byName finds a relation by its qualified name.
func (c *catalog) byName(qualified string) *relation {
	for _, r := range c.rels {
		if r.qualified() == qualified {
			return r
		}
	}
	return nil
}

// columnsOf lists a relation's columns in attnum order.
func (c *catalog) columnsOf(rel uint32) []*column {
	var out []*column
	for k, col := range c.columns {
		if k.rel == rel {
			out = append(out, col)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Num < out[j].Num })
	return out
}

// definition renders a column the way a reader compares it: type,
// nullity, default or generation expression, identity, comment.
func (col *column) definition() string {
	var b strings.Builder
	b.WriteString(col.Type)
	if col.NotNull {
		b.WriteString(" not null")
	}
	switch {
	case col.Generated == "s" && col.Default != nil:
		b.WriteString(" generated always as (" + *col.Default + ") stored")
	case col.Default != nil:
		b.WriteString(" default " + *col.Default)
	}
	switch col.Identity {
	case "a":
		b.WriteString(" generated always as identity")
	case "d":
		b.WriteString(" generated by default as identity")
	}
	if col.Comment != nil {
		b.WriteString(" comment " + quoteLiteral(*col.Comment))
	}
	return b.String()
}

// definition renders a table as its column list, a view as its query.
func (c *catalog) definition(r *relation) string {
	if r.isView() || r.Signature != nil {
		return r.ownDefinition()
	}
	var b strings.Builder
	b.WriteString("(")
	for i, col := range c.columnsOf(r.OID) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(col.Name + " " + col.definition())
	}
	b.WriteString(")")
	if r.Comment != nil {
		b.WriteString(" comment " + quoteLiteral(*r.Comment))
	}
	return b.String()
}

// ownDefinition is what a "changed" relation compares: a view's query, a
// table's comment, the signature of a relation read in summary. A fully
// read table's columns are compared one by one.
func (r *relation) ownDefinition() string {
	var parts []string
	if r.Signature != nil {
		parts = append(parts, "definition signature "+*r.Signature)
	}
	if r.isView() && r.ViewDef != nil {
		parts = append(parts, strings.Join(strings.Fields(*r.ViewDef), " "))
	}
	if r.Comment != nil {
		parts = append(parts, "comment "+quoteLiteral(*r.Comment))
	}
	return strings.Join(parts, " ")
}

// relationObject names a relation's kind in a SchemaChange.
func relationObject(r *relation) string {
	if r.isView() {
		return "view"
	}
	return "table"
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// diffCatalogs compares two snapshots of the same transaction.
func diffCatalogs(before, after *catalog) SchemaDiff {
	out := []SchemaChange{} // JSON [] rather than null
	add := func(object, name, action, b, a string) {
		out = append(out, SchemaChange{Object: object, Name: name, Action: action, Before: b, After: a})
	}
	// name gives the relation's current name, or its last one if dropped.
	name := func(oid uint32) string {
		if r := after.rels[oid]; r != nil {
			return r.qualified()
		}
		return before.rels[oid].qualified()
	}
	schemaOf := func(oid uint32) string {
		if r := after.rels[oid]; r != nil {
			return r.Schema
		}
		return before.rels[oid].Schema
	}

	for oid, b := range before.rels {
		a := after.rels[oid]
		switch {
		case a == nil:
			add(relationObject(b), b.qualified(), "dropped", before.definition(b), "")
		case a.qualified() != b.qualified():
			add(relationObject(b), b.qualified(), "renamed", b.qualified(), a.qualified())
		}
		if a != nil {
			if bd, ad := b.ownDefinition(), a.ownDefinition(); bd != ad {
				add(relationObject(a), a.qualified(), "changed", bd, ad)
			}
		}
	}
	for oid, a := range after.rels {
		if before.rels[oid] == nil {
			add(relationObject(a), a.qualified(), "added", "", after.definition(a))
		}
	}

	// Columns of added or dropped tables are in the table's definition.
	for k, b := range before.columns {
		if after.rels[k.rel] == nil {
			continue
		}
		a := after.columns[k]
		switch {
		case a == nil:
			add("column", name(k.rel)+"."+b.Name, "dropped", b.definition(), "")
		default:
			if a.Name != b.Name {
				add("column", name(k.rel)+"."+b.Name, "renamed", b.Name, a.Name)
			}
			if bd, ad := b.definition(), a.definition(); bd != ad {
				add("column", name(k.rel)+"."+a.Name, "changed", bd, ad)
			}
		}
	}
	for k, a := range after.columns {
		if before.rels[k.rel] != nil && before.columns[k] == nil {
			add("column", name(k.rel)+"."+a.Name, "added", "", a.definition())
		}
	}

	diffObjects := func(object string, bm, am map[objectKey]string, qualify func(objectKey) string) {
		for k, bd := range bm {
			ad, ok := am[k]
			switch {
			case after.rels[k.rel] == nil:
				// dropped with its table
			case !ok:
				add(object, qualify(k), "dropped", bd, "")
			case ad != bd:
				add(object, qualify(k), "changed", bd, ad)
			}
		}
		for k, ad := range am {
			if _, ok := bm[k]; !ok {
				add(object, qualify(k), "added", "", ad)
			}
		}
	}
	diffObjects("index", before.indexes, after.indexes, func(k objectKey) string { return schemaOf(k.rel) + "." + k.name })
	diffObjects("constraint", before.constraints, after.constraints, func(k objectKey) string { return name(k.rel) + "." + k.name })

	sortChanges(out)
	return SchemaDiff{Changes: out}
}

var objectOrder = map[string]int{"table": 0, "view": 1, "column": 2, "constraint": 3, "index": 4}

func sortChanges(cs []SchemaChange) {
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Object != b.Object {
			return objectOrder[a.Object] < objectOrder[b.Object]
		}
		if a.Action != b.Action {
			return a.Action < b.Action
		}
		return a.Before+a.After < b.Before+b.After
	})
}
