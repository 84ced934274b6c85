package reviewweb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/review"
)

// setChange puts c, when there is one, in the outcome. A change that
// cannot be encoded is left out rather than failing a decision already
// made.
func (o *Outcome) setChange(c *review.Change) {
	if c == nil {
		return
	}
	if d, err := c.Doc(); err == nil {
		o.Change = d
	}
}

// setApprovals puts the approvals so far, when there are any, in the
// outcome.
func (o *Outcome) setApprovals(st *review.Approved) {
	if st != nil {
		o.Approvals, o.Required = approvalsJSON(st.Approvals), st.Required
	}
}

// setWaiting says that reviewer's approval was recorded and the decision
// waits for more; waits has one %d, the approvals still missing.
func (o *Outcome) setWaiting(reviewer string, st *review.Approved, waits string) {
	o.Status = "approved"
	o.Message = fmt.Sprintf("approved by %s: approval %d of %d (%s); ", reviewer, len(st.Approvals), st.Required, strings.Join(st.Names(), ", ")) +
		fmt.Sprintf(waits, st.Waiting())
}

// commit approves change id as the signed-in reviewer: it commits once
// the scope's write.approvals reviewers approved.
func (h *Handler) commit(ctx context.Context, id, reviewer, expect string) (Outcome, error) {
	c, st, err := h.cfg.Store.Approve(ctx, id, reviewer, review.Approval{Expect: expect})
	out := Outcome{}
	out.setChange(c)
	out.setApprovals(st)
	if err != nil {
		return out, err
	}
	if !st.Done {
		out.setWaiting(reviewer, st, "it waits for %d more reviewer(s) and nothing is committed yet")
		return out, nil
	}
	out.Status = string(review.StatusCommitted)
	out.Message = fmt.Sprintf("committed by %s at %s", c.Reviewer, c.DecidedAt.UTC().Format(time.RFC3339))
	if st.Required > 1 {
		out.Message += " (approved by " + strings.Join(st.Names(), ", ") + ")"
	}
	return out, nil
}

func (h *Handler) rollback(ctx context.Context, id, reviewer, reason string) (Outcome, error) {
	c, err := h.cfg.Store.Rollback(ctx, id, reviewer, reason)
	out := Outcome{}
	out.setChange(c)
	if err != nil {
		return out, err
	}
	out.Status = string(review.StatusRolledBack)
	out.Message = fmt.Sprintf("rolled back by %s at %s", c.Reviewer, c.DecidedAt.UTC().Format(time.RFC3339))
	return out, nil
}

// notCommittedError refuses to revert a change that was never committed:
// there is nothing to undo (a pending one is rejected instead).
type notCommittedError struct {
	id     string
	status review.Status
}

func (e *notCommittedError) Error() string {
	what := "reject it instead"
	if e.status != review.StatusPending && e.status != review.StatusCommitting {
		what = "nothing of it reached the database"
	}
	return fmt.Sprintf("change %s is %s, not committed: only a committed change can be reverted (%s)", e.id, e.status, what)
}

// revert records, on behalf of reviewer, a pending change that undoes
// committed change id: a reviewer approves it like any other change.
func (h *Handler) revert(ctx context.Context, id, reviewer string, onlyUnchanged bool) (Outcome, error) {
	orig, err := h.cfg.Store.Get(ctx, id)
	if err != nil {
		return Outcome{}, err
	}
	if orig.Status != review.StatusCommitted {
		return Outcome{}, &notCommittedError{id: orig.ID, status: orig.Status}
	}
	rev, err := h.cfg.Store.Revert(ctx, orig.ID, reviewer, onlyUnchanged)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Status: string(review.StatusPending)}
	out.setChange(rev)
	var rows, skipped int64
	if rev.Revert != nil {
		for _, t := range rev.Revert.Tables {
			rows += t.PutBack + t.Restored + t.Removed
			skipped += int64(len(t.Skipped))
		}
	}
	out.Message = fmt.Sprintf("revert %s of change %s recorded by %s: it restores %d row(s)", rev.ID, orig.ID, reviewer, rows)
	if rev.Revert != nil && len(rev.Revert.DDL) > 0 {
		out.Message += fmt.Sprintf(" and undoes %d schema change(s)", len(rev.Revert.DDL))
	}
	if skipped > 0 {
		out.Message += fmt.Sprintf(", leaving %d row(s) changed since as they are", skipped)
	}
	out.Message += "; it is pending: nothing is restored until a reviewer approves it"
	return out, nil
}

func (h *Handler) merge(ctx context.Context, id, reviewer, expect string) (Outcome, error) {
	res, st, err := h.cfg.Store.ApproveMerge(ctx, id, reviewer, review.Approval{Expect: expect})
	out := Outcome{}
	if res != nil {
		out.Branch = res.Branch
	}
	out.setApprovals(st)
	if err != nil {
		return out, err
	}
	if !st.Done {
		out.setWaiting(reviewer, st, "the merge waits for %d more reviewer(s)")
		return out, nil
	}
	out.Status = string(review.BranchMerged)
	out.Message = fmt.Sprintf("merged by %s: %d change(s) committed; the branch database is dropped", reviewer, len(res.Changes))
	return out, nil
}

func (h *Handler) discard(ctx context.Context, id, reviewer, reason string) (Outcome, error) {
	b, err := h.cfg.Store.Discard(ctx, id, reviewer, reason)
	out := Outcome{Branch: b}
	if err != nil {
		return out, err
	}
	out.Status = string(review.BranchDiscarded)
	out.Message = fmt.Sprintf("discarded by %s: its changes are rolled back and its database is dropped", reviewer)
	return out, nil
}
