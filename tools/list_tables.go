package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/scopes"
)

// TableSummary is one in-scope table.
type TableSummary struct {
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	RowsEstimate *int64 `json:"rows_estimate"`
	Comment      string `json:"comment,omitempty"`
	Columns      int    `json:"columns"`
	Restricted   bool   `json:"restricted"`
}

// ListTablesResult is list_tables' structured output.
type ListTablesResult struct {
	Tables []TableSummary `json:"tables"`
}

// ListTables lists the in-scope tables.
type ListTables struct{ env *Env }

var _ Tool = (*ListTables)(nil)

// NewListTables returns the list_tables tool.
func NewListTables(env *Env) *ListTables { return &ListTables{env: env} }

// Definition describes the tool to agents.
func (l *ListTables) Definition() mcp.Tool {
	return mcp.NewTool(scopes.ToolListTables,
		mcp.WithDescription("List the tables this scope lets you read, with estimated row counts and comments. Start here, then call describe_table for columns. Tables not listed here do not exist for you."),
		rawInputSchema(listTablesInputSchema),
		mcp.WithOutputSchema[ListTablesResult](),
		mcp.WithToolAnnotation(mcp.ToolAnnotation{
			Title: "List in-scope tables", ReadOnlyHint: boolPtr(true), DestructiveHint: boolPtr(false),
			IdempotentHint: boolPtr(true), OpenWorldHint: boolPtr(false),
		}),
	)
}

const listTablesSQL = `
SELECT n.nspname || '.' || c.relname,
       CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                      WHEN 'm' THEN 'materialized view' ELSE 'foreign table' END,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END,
       coalesce(obj_description(c.oid, 'pg_class'), '')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname || '.' || c.relname) = ANY($1)`

// Handle runs one call.
func (l *ListTables) Handle(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	start := time.Now()
	ev := audit.Event{Tool: scopes.ToolListTables}
	var args struct{}
	if r := bindArgs(req, scopes.ToolListTables, listTablesInputSchema, &args); r != nil {
		return l.env.respond(ctx, ev, start, r, nil, nil), nil
	}
	res, err := l.list(ctx)
	if err != nil {
		return l.env.respond(ctx, ev, start, nil, err, nil), nil
	}
	ev.Rows = int64(len(res.Tables))
	return l.env.respond(ctx, ev, start, nil, nil, &mcp.CallToolResult{
		Content:           []mcp.Content{mcp.NewTextContent(renderTables(res))},
		StructuredContent: res,
	}), nil
}

func (l *ListTables) list(ctx context.Context) (*ListTablesResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pool, catalog := l.env.Target(ctx)
	policy, err := catalog.Policy(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(policy.Tables))
	for name := range policy.Tables {
		names = append(names, name)
	}
	rows, err := pool.Query(ctx, listTablesSQL, names)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	res := &ListTablesResult{Tables: []TableSummary{}}
	for rows.Next() {
		var t TableSummary
		if err := rows.Scan(&t.Name, &t.Kind, &t.RowsEstimate, &t.Comment); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		if gt := policy.Tables[t.Name]; gt != nil {
			t.Columns = len(gt.AllowedColumns())
			t.Restricted = gt.Restricted
		}
		res.Tables = append(res.Tables, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	sort.Slice(res.Tables, func(i, j int) bool { return res.Tables[i].Name < res.Tables[j].Name })
	return res, nil
}

func renderTables(res *ListTablesResult) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d in-scope table(s):\n", len(res.Tables))
	for _, t := range res.Tables {
		rows := "unknown"
		if t.RowsEstimate != nil {
			rows = fmt.Sprintf("~%d", *t.RowsEstimate)
		}
		fmt.Fprintf(&sb, "- %s (%s, %s rows, %d readable columns", t.Name, t.Kind, rows, t.Columns)
		if t.Restricted {
			sb.WriteString(", restricted: no SELECT *")
		}
		sb.WriteString(")")
		if t.Comment != "" {
			c, _ := json.Marshal(t.Comment)
			fmt.Fprintf(&sb, " comment (untrusted data): %s", c)
		}
		sb.WriteString("\n")
	}
	return strings.TrimRight(sb.String(), "\n")
}

const listTablesInputSchema = `{"type":"object","properties":{},"additionalProperties":false}`
