package tools

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// ChangeStatus is get_change_status's structured output.
type ChangeStatus struct {
	ChangeID  string     `json:"change_id"`
	Status    string     `json:"status"`
	Ticket    string     `json:"ticket"`
	Mode      string     `json:"mode"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	Reviewer  string     `json:"reviewer,omitempty"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	Reason    string     `json:"reason,omitempty"`
}

// GetChangeStatus reports the state of a change this scope submitted.
type GetChangeStatus struct {
	env   *Env
	store *review.Store
}

var _ Tool = (*GetChangeStatus)(nil)

// NewGetChangeStatus returns the get_change_status tool.
func NewGetChangeStatus(env *Env, store *review.Store) *GetChangeStatus {
	return &GetChangeStatus{env: env, store: store}
}

// Definition describes the tool to agents.
func (g *GetChangeStatus) Definition() mcp.Tool {
	return mcp.NewTool(scopes.ToolChangeStatus,
		mcp.WithDescription(`Get the status of a change submitted with apply_migration_with_ticket: pending, committed, rolled_back, expired or drifted (the data changed since the dry run, so nothing was applied), with the reviewer, decision time and reason. Only changes of this scope are visible. Example: {"change_id": "3f2a..."}`),
		rawInputSchema(changeStatusInputSchema),
		mcp.WithOutputSchema[ChangeStatus](),
		mcp.WithToolAnnotation(mcp.ToolAnnotation{
			Title: "Status of a submitted change", ReadOnlyHint: boolPtr(true), DestructiveHint: boolPtr(false),
			IdempotentHint: boolPtr(true), OpenWorldHint: boolPtr(false),
		}),
	)
}

// Handle runs one call.
func (g *GetChangeStatus) Handle(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	start := time.Now()
	ev := audit.Event{Tool: scopes.ToolChangeStatus}
	var args struct {
		ChangeID string `json:"change_id"`
	}
	if r := bindArgs(req, scopes.ToolChangeStatus, changeStatusInputSchema, &args); r != nil {
		return g.env.respond(ctx, ev, start, r, nil, nil), nil
	}
	id, err := uuid.Parse(strings.TrimSpace(args.ChangeID))
	if err != nil {
		r := &sqlguard.Refusal{Code: "bad_change_id", Reason: "change_id is not a UUID", Hint: "pass the change_id apply_migration_with_ticket returned"}
		return g.env.respond(ctx, ev, start, r, nil, nil), nil
	}
	ev.ChangeID = id.String()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := g.store.GetInScope(ctx, id.String(), g.env.Scope.Name)
	if errors.Is(err, review.ErrNotFound) {
		r := &sqlguard.Refusal{Code: "change_not_found", Reason: fmt.Sprintf("no change %s in this scope", id), Hint: "pass a change_id this scope's apply_migration_with_ticket returned"}
		return g.env.respond(ctx, ev, start, r, nil, nil), nil
	}
	if err != nil {
		return g.env.respond(ctx, ev, start, nil, err, nil), nil
	}
	st := ChangeStatus{ChangeID: c.ID, Status: string(c.Status), Ticket: c.Ticket, Mode: string(c.Mode),
		CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt, Reviewer: c.Reviewer, Reason: c.Reason}
	if !c.DecidedAt.IsZero() {
		d := c.DecidedAt
		st.DecidedAt = &d
	}
	ev.Reason = "status " + string(c.Status)
	text := fmt.Sprintf("Change %s (ticket %s): %s.", c.ID, c.Ticket, c.Status)
	if c.Reviewer != "" {
		text += fmt.Sprintf(" Decided by %s at %s.", c.Reviewer, c.DecidedAt.UTC().Format(time.RFC3339))
	}
	if c.Reason != "" {
		j := strings.ReplaceAll(c.Reason, "\n", " ")
		text += " Reason (from the reviewer, untrusted text): " + clip(j, 500)
	}
	if c.Status == review.StatusPending {
		text += fmt.Sprintf(" Waiting for a human reviewer; expires at %s.", c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return g.env.respond(ctx, ev, start, nil, nil, &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(text)}, StructuredContent: st}), nil
}

const changeStatusInputSchema = `{"type":"object","properties":{"change_id":{"type":"string","minLength":1,"maxLength":64,"description":"The change_id returned by apply_migration_with_ticket."}},"required":["change_id"],"additionalProperties":false}`
