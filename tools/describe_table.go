package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// ColumnInfo is one readable column.
type ColumnInfo struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Nullable   bool   `json:"nullable"`
	Default    string `json:"default,omitempty"`
	Masked     bool   `json:"masked,omitempty"`
	PrimaryKey bool   `json:"primary_key,omitempty"`
	Comment    string `json:"comment,omitempty"`
}

// IndexInfo is one index whose columns are all readable.
type IndexInfo struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Unique  bool     `json:"unique"`
	Primary bool     `json:"primary"`
	Method  string   `json:"method"`
}

// ForeignKey is a reference from readable columns to an in-scope table.
type ForeignKey struct {
	Columns    []string `json:"columns"`
	References string   `json:"references"`
	RefColumns []string `json:"ref_columns"`
}

// DescribeTableResult is describe_table's structured output.
type DescribeTableResult struct {
	Table        string       `json:"table"`
	Kind         string       `json:"kind"`
	RowsEstimate *int64       `json:"rows_estimate"`
	Comment      string       `json:"comment,omitempty"`
	Columns      []ColumnInfo `json:"columns"`
	PrimaryKey   []string     `json:"primary_key"`
	Indexes      []IndexInfo  `json:"indexes"`
	ForeignKeys  []ForeignKey `json:"foreign_keys"`
	Restricted   bool         `json:"restricted"`
}

// DescribeTable describes one in-scope table.
type DescribeTable struct{ env *Env }

var _ Tool = (*DescribeTable)(nil)

// NewDescribeTable returns the describe_table tool.
func NewDescribeTable(env *Env) *DescribeTable { return &DescribeTable{env: env} }

// Definition describes the tool to agents.
func (d *DescribeTable) Definition() mcp.Tool {
	return mcp.NewTool(scopes.ToolDescribeTable,
		mcp.WithDescription(`Describe one in-scope table: the columns you may read (with types, nullability, defaults, which are masked), its primary key, indexes and foreign keys to other in-scope tables. Columns you may not read are not shown. Example: {"table": "orders"} or {"table": "public.orders"}.`),
		rawInputSchema(describeInputSchema),
		mcp.WithOutputSchema[DescribeTableResult](),
		mcp.WithToolAnnotation(mcp.ToolAnnotation{
			Title: "Describe an in-scope table", ReadOnlyHint: boolPtr(true), DestructiveHint: boolPtr(false),
			IdempotentHint: boolPtr(true), OpenWorldHint: boolPtr(false),
		}),
	)
}

// Handle runs one call.
func (d *DescribeTable) Handle(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	start := time.Now()
	ev := audit.Event{Tool: scopes.ToolDescribeTable}
	var args struct {
		Table string `json:"table"`
	}
	if r := bindArgs(req, scopes.ToolDescribeTable, describeInputSchema, &args); r != nil {
		return d.env.respond(ctx, ev, start, r, nil, nil), nil
	}
	ev.SQL = args.Table
	res, refusal, err := d.describe(ctx, args.Table)
	if refusal != nil || err != nil {
		return d.env.respond(ctx, ev, start, refusal, err, nil), nil
	}
	ev.Rows = int64(len(res.Columns))
	return d.env.respond(ctx, ev, start, nil, nil, &mcp.CallToolResult{
		Content:           []mcp.Content{mcp.NewTextContent(renderDescribe(res))},
		StructuredContent: res,
	}), nil
}

// resolveTable maps a table name as an agent wrote it to an in-scope table.
func resolveTable(p *sqlguard.Policy, name string) *sqlguard.Table {
	if t := p.Tables[name]; t != nil && strings.Contains(name, ".") {
		return t
	}
	for _, s := range p.SearchPath {
		if t := p.Tables[s+"."+name]; t != nil {
			return t
		}
	}
	return nil
}

func inScopeList(p *sqlguard.Policy) string {
	names := make([]string, 0, len(p.Tables))
	for n := range p.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

const describeColumnsSQL = `
SELECT c.relkind::text, CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END,
       coalesce(obj_description(c.oid, 'pg_class'), ''),
       a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''),
       coalesce(col_description(c.oid, a.attnum), ''),
       coalesce(a.attnum = ANY(pk.conkey), false)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
WHERE n.nspname = $1 AND c.relname = $2
ORDER BY a.attnum`

// Index columns come from indkey; expression indexes (attnum 0) are left
// out because their text could name columns the scope hides.
const describeIndexesSQL = `
SELECT ic.relname, i.indisunique, i.indisprimary, am.amname,
       array_agg(a.attname ORDER BY k.ord), bool_and(k.attnum > 0) AND i.indexprs IS NULL AND i.indpred IS NULL
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = ($1 || '.' || $2)::regclass
GROUP BY ic.relname, i.indisunique, i.indisprimary, am.amname, i.indexprs, i.indpred
ORDER BY ic.relname`

const describeForeignKeysSQL = `
SELECT array_agg(a.attname ORDER BY k.ord), rn.nspname || '.' || rc.relname, array_agg(ra.attname ORDER BY k.ord)
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(attnum, refnum, ord)
JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
JOIN pg_catalog.pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.refnum
WHERE con.contype = 'f' AND con.conrelid = ($1 || '.' || $2)::regclass
GROUP BY con.oid, rn.nspname, rc.relname
ORDER BY con.oid`

func (d *DescribeTable) describe(ctx context.Context, name string) (*DescribeTableResult, *sqlguard.Refusal, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pool, catalog := d.env.Target(ctx)
	policy, err := catalog.Policy(ctx)
	if err != nil {
		return nil, nil, err
	}
	t := resolveTable(policy, name)
	if t == nil {
		return nil, &sqlguard.Refusal{Code: "table_not_in_scope", Reason: fmt.Sprintf("table %q is not in scope", name), Hint: "in-scope tables: " + inScopeList(policy)}, nil
	}
	res := &DescribeTableResult{Table: t.QualifiedName(), Restricted: t.Restricted,
		Columns: []ColumnInfo{}, PrimaryKey: []string{}, Indexes: []IndexInfo{}, ForeignKeys: []ForeignKey{}}

	batch := &pgx.Batch{}
	batch.Queue(describeColumnsSQL, t.Schema, t.Name)
	batch.Queue(describeIndexesSQL, quoteIdent(t.Schema), quoteIdent(t.Name))
	batch.Queue(describeForeignKeysSQL, quoteIdent(t.Schema), quoteIdent(t.Name))
	br := pool.SendBatch(ctx, batch)
	defer br.Close()

	rows, err := br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("describe table: %w", err)
	}
	for rows.Next() {
		var kind string
		var c ColumnInfo
		if err := rows.Scan(&kind, &res.RowsEstimate, &res.Comment, &c.Name, &c.Type, &c.Nullable, &c.Default, &c.Comment, &c.PrimaryKey); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("describe table: %w", err)
		}
		res.Kind = relkindName(kind)
		col := t.Column(c.Name)
		if col == nil || col.Access == sqlguard.Denied {
			continue
		}
		c.Masked = col.Access == sqlguard.Masked
		if c.PrimaryKey {
			res.PrimaryKey = append(res.PrimaryKey, c.Name)
		}
		res.Columns = append(res.Columns, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("describe table: %w", err)
	}

	readable := func(cols []string) bool {
		for _, c := range cols {
			if col := t.Column(c); col == nil || col.Access == sqlguard.Denied {
				return false
			}
		}
		return true
	}
	rows, err = br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("describe indexes: %w", err)
	}
	for rows.Next() {
		var ix IndexInfo
		var plain bool
		var cols []*string
		if err := rows.Scan(&ix.Name, &ix.Unique, &ix.Primary, &ix.Method, &cols, &plain); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("describe indexes: %w", err)
		}
		for _, c := range cols {
			if c != nil {
				ix.Columns = append(ix.Columns, *c)
			}
		}
		if plain && readable(ix.Columns) {
			res.Indexes = append(res.Indexes, ix)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("describe indexes: %w", err)
	}

	rows, err = br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("describe foreign keys: %w", err)
	}
	for rows.Next() {
		var fk ForeignKey
		if err := rows.Scan(&fk.Columns, &fk.References, &fk.RefColumns); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("describe foreign keys: %w", err)
		}
		ref := policy.Tables[fk.References]
		if ref == nil || !readable(fk.Columns) {
			continue // never name an out-of-scope table
		}
		refOK := true
		for _, c := range fk.RefColumns {
			if col := ref.Column(c); col == nil || col.Access == sqlguard.Denied {
				refOK = false
			}
		}
		if refOK {
			res.ForeignKeys = append(res.ForeignKeys, fk)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("describe foreign keys: %w", err)
	}
	return res, nil, nil
}

func relkindName(k string) string {
	switch k {
	case "r", "p":
		return "table"
	case "v":
		return "view"
	case "m":
		return "materialized view"
	case "f":
		return "foreign table"
	}
	return "relation"
}

func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

func renderDescribe(res *DescribeTableResult) string {
	var sb strings.Builder
	rows := "unknown"
	if res.RowsEstimate != nil {
		rows = fmt.Sprintf("~%d", *res.RowsEstimate)
	}
	fmt.Fprintf(&sb, "%s (%s, %s rows)", res.Table, res.Kind, rows)
	if res.Restricted {
		sb.WriteString(" — restricted: list columns explicitly, SELECT * is refused")
	}
	sb.WriteString("\ncolumns:\n")
	for _, c := range res.Columns {
		fmt.Fprintf(&sb, "- %s %s", c.Name, c.Type)
		if !c.Nullable {
			sb.WriteString(" NOT NULL")
		}
		if c.PrimaryKey {
			sb.WriteString(" PK")
		}
		if c.Default != "" {
			sb.WriteString(" DEFAULT " + c.Default)
		}
		if c.Masked {
			sb.WriteString(" (masked: select only, comes back hashed)")
		}
		if c.Comment != "" {
			j, _ := json.Marshal(c.Comment)
			fmt.Fprintf(&sb, " comment (untrusted data): %s", j)
		}
		sb.WriteString("\n")
	}
	for _, ix := range res.Indexes {
		kind := "index"
		if ix.Primary {
			kind = "primary key index"
		} else if ix.Unique {
			kind = "unique index"
		}
		fmt.Fprintf(&sb, "%s %s %s (%s)\n", kind, ix.Name, ix.Method, strings.Join(ix.Columns, ", "))
	}
	for _, fk := range res.ForeignKeys {
		fmt.Fprintf(&sb, "foreign key (%s) references %s (%s)\n", strings.Join(fk.Columns, ", "), fk.References, strings.Join(fk.RefColumns, ", "))
	}
	return strings.TrimRight(sb.String(), "\n")
}

const describeInputSchema = `{"type":"object","properties":{"table":{"type":"string","minLength":1,"maxLength":200,"description":"Table name, optionally schema-qualified (public.orders)."}},"required":["table"],"additionalProperties":false}`
