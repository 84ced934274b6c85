package tools

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// maxSummary bounds the summary shown to the reviewer.
const maxSummary = 4000

// ApplyResult is apply_migration_with_ticket's structured output.
type ApplyResult struct {
	ChangeID  string          `json:"change_id"`
	Status    string          `json:"status"`
	Mode      string          `json:"mode"`
	Ticket    string          `json:"ticket"`
	ExpiresAt time.Time       `json:"expires_at"`
	Report    *migrate.Report `json:"report"`
}

// ApplyMigration holds a migration for human review. It checks the
// arguments and the migration; how the change is held (a recorded replay,
// a prepared transaction, a commit on the session's branch) is the
// review.Holder of the scope's write mode.
type ApplyMigration struct {
	env   *Env
	store *review.Store
}

var _ Tool = (*ApplyMigration)(nil)

// NewApplyMigration returns the apply_migration_with_ticket tool.
func NewApplyMigration(env *Env, store *review.Store) *ApplyMigration {
	return &ApplyMigration{env: env, store: store}
}

const applyDescription = `Submit a migration for human review, under a ticket. The statements are checked and run exactly like migrate_dry_run, then HELD: nothing becomes permanent until a human reviewer commits the change from their own terminal. You cannot commit, roll back or extend it yourself.

Returns change_id, status "pending", expires_at (an unreviewed change expires and is discarded) and the dry-run report. Use get_change_status with the change_id to learn the reviewer's decision. Run migrate_dry_run first and fix its warnings.
Example: {"ticket": "OPS-123", "summary": "Add shipped_at to orders for the shipping dashboard", "sql": "ALTER TABLE orders ADD COLUMN shipped_at timestamptz"}`

const applyInputSchema = `{
  "type": "object",
  "properties": {
    "ticket": {"type": "string", "minLength": 1, "maxLength": 200, "description": "The ticket this change is for; must match the scope's ticket pattern."},
    "summary": {"type": "string", "minLength": 1, "maxLength": 4000, "description": "What the change does and why, for the human reviewer."},
    "sql": {"type": "string", "minLength": 1, "description": "One or more SQL statements; no BEGIN/COMMIT."}
  },
  "required": ["ticket", "summary", "sql"],
  "additionalProperties": false
}`

// Definition describes the tool to agents.
func (a *ApplyMigration) Definition() mcp.Tool {
	return mcp.NewTool(scopes.ToolApplyMigration,
		mcp.WithDescription(applyDescription),
		rawInputSchema(applyInputSchema),
		mcp.WithOutputSchema[ApplyResult](),
		mcp.WithToolAnnotation(mcp.ToolAnnotation{
			// It records a pending change (and in prepared mode holds a
			// transaction open); the change itself is destructive only
			// once a human commits it.
			Title: "Submit a migration for human review", ReadOnlyHint: boolPtr(false),
			DestructiveHint: boolPtr(false), IdempotentHint: boolPtr(false), OpenWorldHint: boolPtr(false),
		}),
	)
}

type applyArgs struct {
	Ticket  string `json:"ticket"`
	Summary string `json:"summary"`
	SQL     string `json:"sql"`
}

// Handle runs one call.
func (a *ApplyMigration) Handle(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	start := time.Now()
	ev := audit.Event{Tool: scopes.ToolApplyMigration}
	var args applyArgs
	if r := bindArgs(req, scopes.ToolApplyMigration, applyInputSchema, &args); r != nil {
		return a.env.respond(ctx, ev, start, r, nil, nil), nil
	}
	ev.SQL = args.SQL
	res, plan, refusal, err := a.apply(ctx, req, args)
	if plan != nil {
		ev.Fingerprint = plan.Fingerprint
	}
	if refusal != nil || err != nil {
		return a.env.respond(ctx, ev, start, refusal, err, nil), nil
	}
	ev.ChangeID = res.ChangeID
	ev.Reason = fmt.Sprintf("held as pending (%s, ticket %s, risk %s)", res.Mode, res.Ticket, res.Report.Risk)
	return a.env.respond(ctx, ev, start, nil, nil, &mcp.CallToolResult{
		Content:           []mcp.Content{mcp.NewTextContent(renderApply(res))},
		StructuredContent: res,
	}), nil
}

func (a *ApplyMigration) apply(ctx context.Context, req mcp.CallToolRequest, args applyArgs) (*ApplyResult, *sqlguard.MigrationPlan, *sqlguard.Refusal, error) {
	w := a.env.Scope.Write
	if !w.TicketOK(args.Ticket) {
		return nil, nil, &sqlguard.Refusal{Code: "bad_ticket",
			Reason: fmt.Sprintf("ticket %q does not match this scope's ticket pattern", clip(args.Ticket, 64)),
			Hint:   "use a ticket matching " + w.TicketPattern}, nil
	}
	summary := strings.TrimSpace(args.Summary)
	if summary == "" || len(summary) > maxSummary || !utf8.ValidString(summary) {
		return nil, nil, &sqlguard.Refusal{Code: "bad_summary", Reason: "summary is empty or too long",
			Hint: fmt.Sprintf("say in up to %d characters what the change does and why", maxSummary)}, nil
	}
	plan, refusal, err := a.env.checkMigration(ctx, args.SQL)
	if refusal != nil || err != nil {
		return nil, plan, refusal, err
	}
	change := &review.Change{Ticket: args.Ticket, Summary: summary, SQL: args.SQL,
		Scope: a.env.Scope.Name, ScopeVersion: a.env.Scope.Version(), Session: a.env.For(ctx).Session, Mode: review.Mode(w.Mode), TTL: w.ReviewTTL,
		Limits: review.Limits{PerScope: w.MaxPending, PerSession: w.MaxPendingPerSession}}
	rep, err := a.env.holder(ctx, a.store).Hold(ctx, &review.Hold{Change: change, Plan: plan, Options: migrateOptions(a.env.Scope),
		Run: func(ctx context.Context, pool *pgxpool.Pool, plan *sqlguard.MigrationPlan, end migrate.Ending, arg migrate.RunArg, capture string) (*migrate.Report, error) {
			return a.env.runMigrationOn(ctx, pool, req, plan, end, arg, capture)
		}})
	if refusal := holdRefusal(err); refusal != nil {
		return nil, plan, refusal, nil
	}
	if err != nil {
		return nil, plan, nil, err
	}
	return &ApplyResult{ChangeID: change.ID, Status: string(review.StatusPending), Mode: string(change.Mode),
		Ticket: change.Ticket, ExpiresAt: change.ExpiresAt, Report: rep}, plan, nil, nil
}

// holdRefusal turns what a holder fails with into the refusal an agent
// can act on, or nil for a failure.
func holdRefusal(err error) *sqlguard.Refusal {
	var (
		tooMany     *review.TooManyPendingError
		slots       *review.PreparedSlotsError
		blocking    *migrate.BlockingLockError
		tooBranches *review.TooManyBranchesError
		inUse       *review.SourceInUseError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooMany):
		return &sqlguard.Refusal{Code: "too_many_pending", Reason: tooMany.Error(),
			Hint: "wait for a reviewer to decide your pending changes (get_change_status), or fold several changes into one"}
	case errors.As(err, &slots):
		return &sqlguard.Refusal{Code: "prepared_slots_full", Reason: slots.Error(),
			Hint: "ask a reviewer to commit or roll back pending changes (airlock pending), then try again"}
	case errors.As(err, &blocking):
		return &sqlguard.Refusal{Code: "blocking_lock", Reason: blocking.Error(),
			Hint: "in prepared mode a held change may not keep a lock that blocks reads of a table in use: make the change without DDL on existing tables, or ask for a replay-mode scope (or write.allow_blocking_locks)"}
	case errors.Is(err, review.ErrSessionBranchClosed):
		return &sqlguard.Refusal{Code: "branch_closed",
			Reason: "this session's branch was merged, discarded or expired; a session gets one branch",
			Hint:   "start a new session to make further changes; get_change_status tells what happened to earlier ones"}
	case errors.As(err, &tooBranches):
		return &sqlguard.Refusal{Code: "too_many_branches", Reason: tooBranches.Error(),
			Hint: "ask a reviewer to merge or discard a branch, then try again"}
	case errors.As(err, &inUse):
		return &sqlguard.Refusal{Code: "branch_unavailable", Reason: inUse.Error(),
			Hint: "try again when the source database is idle, or ask the operator to change the scope's branch strategy"}
	case errors.Is(err, review.ErrBranchClosed):
		return &sqlguard.Refusal{Code: "branch_closed",
			Reason: "a reviewer decided this session's branch while the change was being applied; the change is not part of any review",
			Hint:   "check get_change_status for your earlier changes and start a new session for further ones"}
	}
	return nil
}

func renderApply(res *ApplyResult) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Change %s is PENDING human review (mode %s, ticket %s, risk %s). Nothing is permanent until a reviewer commits it; unreviewed, it expires at %s.\n",
		res.ChangeID, res.Mode, res.Ticket, res.Report.Risk, res.ExpiresAt.UTC().Format(time.RFC3339))
	if res.Mode == string(review.ModeBranch) {
		sb.WriteString("It is committed on this session's branch database, which your reads and dry runs now use; the source database is unchanged until a reviewer merges the branch.\n")
	}
	if res.Mode == string(review.ModePrepared) && len(res.Report.HeldLocks) > 0 {
		sb.WriteString("The prepared transaction holds its locks until it is reviewed.\n")
	}
	sb.WriteString("get_change_status reports the decision.\n")
	sb.WriteString(res.Report.Text())
	return sb.String()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s, _ = truncateString(s, n)
	return s + "…"
}
