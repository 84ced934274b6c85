package tools

import (
	"context"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/scopes"
)

// MigrateDryRun runs a migration in a transaction that is always rolled
// back and reports what it did.
type MigrateDryRun struct{ env *Env }

var _ Tool = (*MigrateDryRun)(nil)

// NewMigrateDryRun returns the migrate_dry_run tool.
func NewMigrateDryRun(env *Env) *MigrateDryRun { return &MigrateDryRun{env: env} }

const dryRunDescription = `Dry-run a migration: one or more SQL statements (DDL or DML) are checked against this scope, executed for real inside a transaction, measured, and ALWAYS rolled back. Nothing is changed.

The report gives, per statement: its kind, rows affected, elapsed time, the locks it took, whether it rewrote a table and what a reviewer's commit compares of the rows it touched; for the whole migration: the schema diff, warnings (stable codes with a fix each) and a risk level (low / moderate / high).
Only the statement kinds and tables the scope allows pass; transaction control, roles and privileges, COPY, session settings, and statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY, VACUUM) are always refused. Use this before apply_migration_with_ticket.
Example: {"sql": "ALTER TABLE orders ADD COLUMN shipped_at timestamptz; CREATE INDEX orders_shipped_at ON orders (shipped_at)"}`

const dryRunInputSchema = `{
  "type": "object",
  "properties": {
    "sql": {"type": "string", "minLength": 1, "description": "One or more SQL statements separated by semicolons. No BEGIN/COMMIT: airlock runs them in its own transaction."}
  },
  "required": ["sql"],
  "additionalProperties": false
}`

// Definition describes the tool to agents.
func (d *MigrateDryRun) Definition() mcp.Tool {
	return mcp.NewTool(scopes.ToolMigrateDryRun,
		mcp.WithDescription(dryRunDescription),
		rawInputSchema(dryRunInputSchema),
		mcp.WithOutputSchema[migrate.Report](),
		mcp.WithToolAnnotation(mcp.ToolAnnotation{
			// Not read-only: a rolled-back run still advances sequences and
			// takes the migration's locks while it runs.
			Title: "Dry-run a migration (always rolled back)", ReadOnlyHint: boolPtr(false),
			DestructiveHint: boolPtr(false), IdempotentHint: boolPtr(true), OpenWorldHint: boolPtr(false),
		}),
	)
}

// approvalNote says what a reviewer's approval of this migration would be
// bound to (docs/architecture.md, Approvals).
func approvalNote(w *scopes.Write) string {
	note := "Applied with apply_migration_with_ticket, it waits for a human reviewer, who approves exactly these statements, their effects and the scope's version (an approval hash); the reviewer's commit first checks the statements again against the scope as applied then"
	switch w.Mode {
	case "prepared":
		return note + ", and commits the prepared transaction as it is.\n"
	case "branch":
		return note + "; the merge replays the branch's log, committed only if each statement affects the rows it did on the branch.\n"
	}
	return note + ", replays them and commits only if each affects the same rows (as compared above) and the same schema changes.\n"
}

// Handle runs one call.
func (d *MigrateDryRun) Handle(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	start := time.Now()
	ev := audit.Event{Tool: scopes.ToolMigrateDryRun}
	var args struct {
		SQL string `json:"sql"`
	}
	if r := bindArgs(req, scopes.ToolMigrateDryRun, dryRunInputSchema, &args); r != nil {
		return d.env.respond(ctx, ev, start, r, nil, nil), nil
	}
	ev.SQL = args.SQL
	plan, refusal, err := d.env.checkMigration(ctx, args.SQL)
	if plan != nil {
		ev.Fingerprint = plan.Fingerprint
	}
	if refusal != nil || err != nil {
		return d.env.respond(ctx, ev, start, refusal, err, nil), nil
	}
	rep, err := d.env.runMigration(ctx, req, plan, migrate.EndRollback, migrate.RunArg{})
	if err != nil {
		return d.env.respond(ctx, ev, start, nil, err, nil), nil
	}
	ev.Reason = "risk " + string(rep.Risk)
	for _, s := range rep.Statements {
		ev.Rows += s.RowsAffected
	}
	return d.env.respond(ctx, ev, start, nil, nil, &mcp.CallToolResult{
		Content:           []mcp.Content{mcp.NewTextContent("DRY RUN: every statement ran and was rolled back; nothing changed.\n" + rep.Text() + approvalNote(d.env.Scope.Write))},
		StructuredContent: rep,
	}), nil
}
