package tools

import (
	"context"
	"errors"
	"fmt"
	"github.com/google/uuid"
	"strings"
	"time"
	"unicode/utf8"

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

// ApplyMigration holds a migration for human review: as a prepared
// transaction or as a recorded replay, by the scope's write mode.
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
		Scope: a.env.Scope.Name, ScopeVersion: a.env.Scope.Version(), Session: a.env.For(ctx).Session, Mode: string(w.Mode), TTL: w.ReviewTTL,
		Limits: review.Limits{PerScope: w.MaxPending, PerSession: w.MaxPendingPerSession}}
	// Refused before anything runs; Record checks again atomically.
	if refusal, err := a.limitRefusal(a.store.CheckLimits(ctx, change.Scope, change.Session, change.Limits)); refusal != nil || err != nil {
		return nil, plan, refusal, err
	}
	if w.Mode == review.ModePrepared {
		slots, err := review.ReadPreparedSlots(ctx, a.env.Pool)
		if err != nil {
			return nil, plan, nil, err
		}
		if !slots.Available() {
			return nil, plan, &sqlguard.Refusal{Code: "prepared_slots_full", Reason: (&review.PreparedSlotsError{Slots: slots}).Error(),
				Hint: "ask a reviewer to commit or roll back pending changes (airlock pending), then try again"}, nil
		}
	}
	var rep *migrate.Report
	switch w.Mode {
	case review.ModeBranch:
		var br *sessionBranch
		br, refusal, err = a.env.ensureBranch(ctx)
		if refusal != nil || err != nil {
			return nil, plan, refusal, err
		}
		// The branch is the session's own copy: the change commits there
		// at once, and the reviewer merges the whole log later.
		rep, err = a.env.runMigrationOn(ctx, br.pool, req, plan, migrate.EndCommit, migrate.RunArg{}, "")
		if err == nil {
			change.BranchID, change.ExpiresAt = br.branch.ID, br.branch.ExpiresAt
			if definesTables(plan) && a.env.Branching.Prepare != nil {
				// DDL may have made a table the scope's roles hold nothing on.
				if perr := a.env.Branching.Prepare(ctx, br.pool); perr != nil {
					a.env.Log.Warn("re-apply the scope's roles on the branch", "err", perr)
				}
			}
			if _, rerr := br.catalog.Reload(ctx); rerr != nil {
				a.env.Log.Warn("reload the branch's catalog", "err", rerr)
			}
		}
	case review.ModePrepared:
		// PREPARE first, then record: a crash in between leaves an orphan
		// prepared transaction, which the reaper rolls back; never a
		// recorded change whose transaction does not exist.
		change.GID = review.NewGID()
		arg, capture := migrate.RunArg{GID: change.GID}, ""
		if w.Undo.On() {
			// The capture is part of the prepared transaction: it commits
			// or rolls back with the change itself (docs/architecture.md,
			// Undo).
			change.ID = uuid.NewString()
			capture = change.ID
			arg.BeforeCommit, arg.Undo = review.PreparedCapture(change.ID, change.Scope, plan.Statements, w.ReviewTTL, w.Undo)
		}
		pool, _ := a.env.Target(ctx)
		rep, err = a.env.runMigrationOn(ctx, pool, req, plan, migrate.EndPrepare, arg, capture)
	default:
		rep, err = a.env.runMigration(ctx, req, plan, migrate.EndRollback, migrate.RunArg{})
	}
	var blocking *migrate.BlockingLockError
	if errors.As(err, &blocking) {
		return nil, plan, &sqlguard.Refusal{Code: "blocking_lock", Reason: blocking.Error(),
			Hint: "in prepared mode a held change may not keep a lock that blocks reads of a table in use: make the change without DDL on existing tables, or ask for a replay-mode scope (or write.allow_blocking_locks)"}, nil
	}
	if err != nil {
		return nil, plan, nil, err
	}
	filled := review.NewChange(plan, rep, migrateOptions(a.env.Scope))
	change.Statements, change.SQLFingerprint, change.Report = filled.Statements, filled.SQLFingerprint, filled.Report
	change.Effects, change.Fingerprint, change.Options = filled.Effects, filled.Fingerprint, filled.Options
	if err := a.store.Record(ctx, change); err != nil {
		if change.GID != "" {
			a.rollbackOrphan(change.GID)
		}
		if refusal, _ := a.limitRefusal(err); refusal != nil {
			return nil, plan, refusal, nil
		}
		if errors.Is(err, review.ErrBranchClosed) {
			return nil, plan, &sqlguard.Refusal{Code: "branch_closed",
				Reason: "a reviewer decided this session's branch while the change was being applied; the change is not part of any review",
				Hint:   "check get_change_status for your earlier changes and start a new session for further ones"}, nil
		}
		return nil, plan, nil, fmt.Errorf("record change: %w", err)
	}
	return &ApplyResult{ChangeID: change.ID, Status: review.StatusPending, Mode: change.Mode,
		Ticket: change.Ticket, ExpiresAt: change.ExpiresAt, Report: rep}, plan, nil, nil
}

// limitRefusal turns a pending-change limit into a refusal.
func (a *ApplyMigration) limitRefusal(err error) (*sqlguard.Refusal, error) {
	var tooMany *review.TooManyPendingError
	if errors.As(err, &tooMany) {
		return &sqlguard.Refusal{Code: "too_many_pending", Reason: tooMany.Error(),
			Hint: "wait for a reviewer to decide your pending changes (get_change_status), or fold several changes into one"}, nil
	}
	return nil, err
}

// rollbackOrphan undoes a prepared transaction whose change could not be
// recorded, so that nothing is held that no reviewer can see.
func (a *ApplyMigration) rollbackOrphan(gid string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.env.Pool.Exec(ctx, "ROLLBACK PREPARED '"+gid+"'"); err != nil {
		a.env.Log.Error("could not roll back an unrecorded prepared transaction; the reaper will", "gid", gid, "err", err)
	}
}

func renderApply(res *ApplyResult) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Change %s is PENDING human review (mode %s, ticket %s, risk %s). Nothing is permanent until a reviewer commits it; unreviewed, it expires at %s.\n",
		res.ChangeID, res.Mode, res.Ticket, res.Report.Risk, res.ExpiresAt.UTC().Format(time.RFC3339))
	if res.Mode == review.ModeBranch {
		sb.WriteString("It is committed on this session's branch database, which your reads and dry runs now use; the source database is unchanged until a reviewer merges the branch.\n")
	}
	if res.Mode == review.ModePrepared && len(res.Report.HeldLocks) > 0 {
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
