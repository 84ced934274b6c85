package reviewweb

import (
	"context"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/review"
)

func approvalsJSON(recs []review.ApprovalRecord) []ApprovalJSON {
	out := make([]ApprovalJSON, len(recs))
	for i, a := range recs {
		out[i] = ApprovalJSON{Reviewer: a.Reviewer, Login: a.Login, Approval: a.Approval, ApprovedAt: a.ApprovedAt}
	}
	return out
}

// loadChange reads change id with its approvals of its current content,
// and on undo: whether it can be reverted (a committed change) and the
// reverts recorded of it.
func (h *Handler) loadChange(ctx context.Context, id string) (*review.Change, ChangeJSON, error) {
	c, err := h.cfg.Store.Get(ctx, id)
	if err != nil {
		return nil, ChangeJSON{}, err
	}
	c, out, err := h.changeJSON(ctx, c)
	if err != nil {
		return nil, ChangeJSON{}, err
	}
	if c.Status == review.StatusCommitted {
		out.Revertibility = revertibilityJSON(h.cfg.Store.Revertibility(ctx, c.ID))
	}
	if out.RevertedBy, err = h.revertsOf(ctx, c.ID); err != nil {
		return nil, ChangeJSON{}, err
	}
	return c, out, nil
}

// revertsOf lists the reverts recorded of change id, oldest first. (The
// store has no such query; the review login reads airlock.changes.)
func (h *Handler) revertsOf(ctx context.Context, id string) ([]ChangeRef, error) {
	rows, err := h.cfg.Pool.Query(ctx, `SELECT id::text, status, coalesce(reviewer, '') FROM airlock.changes
		WHERE reverts = $1::uuid ORDER BY created_at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("read the reverts of %s: %w", id, err)
	}
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChangeRef, error) {
		var rid, status, reviewer string
		if err := r.Scan(&rid, &status, &reviewer); err != nil {
			return ChangeRef{}, err
		}
		ref := changeRef(rid)
		ref.Status, ref.Reviewer = review.Status(status), reviewer
		return ref, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the reverts of %s: %w", id, err)
	}
	return refs, nil
}

func (h *Handler) changeJSON(ctx context.Context, c *review.Change) (*review.Change, ChangeJSON, error) {
	doc, err := c.Doc()
	if err != nil {
		return nil, ChangeJSON{}, err
	}
	out := ChangeJSON{Change: doc, Approvals: []ApprovalJSON{}, Required: 1}
	if c.Reverts != "" {
		ref := changeRef(c.Reverts)
		out.Reverts = &ref
	}
	recs, err := h.cfg.Store.Approvals(ctx, c.ID)
	if err != nil {
		return nil, ChangeJSON{}, err
	}
	hash := doc.ApprovalHash
	for _, a := range approvalsJSON(recs) {
		if a.Approval == hash {
			out.Approvals = append(out.Approvals, a)
		}
	}
	if n, err := h.cfg.Store.RequiredApprovals(ctx, c.Scope); err == nil {
		out.Required = n
	}
	return c, out, nil
}

// loadBranch reads branch id with its change log, schema diff and
// approvals.
func (h *Handler) loadBranch(ctx context.Context, id string) (BranchJSON, []*review.Change, error) {
	b, err := h.cfg.Store.GetBranch(ctx, id)
	if err != nil {
		return BranchJSON{}, nil, err
	}
	changes, err := h.cfg.Store.BranchChanges(ctx, b.ID)
	if err != nil {
		return BranchJSON{}, nil, err
	}
	out := BranchJSON{Branch: b, Changes: []*review.ChangeDoc{}, SchemaDiff: []string{}, Approvals: []ApprovalJSON{}, Required: 1}
	var pending []*review.Change
	for _, c := range changes {
		d, err := c.Doc()
		if err != nil {
			return BranchJSON{}, nil, err
		}
		out.Changes = append(out.Changes, d)
		if c.Status == review.StatusPending {
			pending = append(pending, c)
		}
	}
	if b.Status == review.BranchLive {
		if len(pending) > 0 {
			out.ApprovalHash = review.BranchApprovalHash(b, pending)
		}
		diff, err := h.cfg.Store.SchemaDiff(ctx, b)
		if err != nil {
			out.SchemaDiffError = err.Error()
		} else if diff != nil {
			out.SchemaDiff = diff
		}
	}
	recs, err := h.cfg.Store.Approvals(ctx, b.ID)
	if err != nil {
		return BranchJSON{}, nil, err
	}
	for _, a := range approvalsJSON(recs) {
		if a.Approval == out.ApprovalHash {
			out.Approvals = append(out.Approvals, a)
		}
	}
	if n, err := h.cfg.Store.RequiredApprovals(ctx, b.Scope); err == nil {
		out.Required = n
	}
	return out, changes, nil
}

func (h *Handler) apiWhoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"reviewer": reviewerOf(r.Context()).name})
}

func (h *Handler) apiChanges(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqContext(r, readTimeout)
	defer cancel()
	list, err := h.cfg.Store.Pending(ctx)
	if err != nil {
		answer(w, Outcome{}, err)
		return
	}
	out := ChangesJSON{Changes: []ChangeJSON{}}
	for _, c := range list {
		_, cj, err := h.changeJSON(ctx, c)
		if err != nil {
			answer(w, Outcome{}, err)
			return
		}
		out.Changes = append(out.Changes, cj)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) apiChange(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqContext(r, readTimeout)
	defer cancel()
	_, cj, err := h.loadChange(ctx, r.PathValue("id"))
	if err != nil {
		answer(w, Outcome{}, err)
		return
	}
	writeJSON(w, http.StatusOK, cj)
}

func (h *Handler) apiCommit(w http.ResponseWriter, r *http.Request) {
	d, ok := decodeDecision(w, r)
	if !ok {
		return
	}
	ctx, cancel := reqContext(r, decideTimeout)
	defer cancel()
	out, err := h.commit(ctx, r.PathValue("id"), reviewerOf(r.Context()).name, d.Expect)
	answer(w, out, err)
}

func (h *Handler) apiRollback(w http.ResponseWriter, r *http.Request) {
	d, ok := decodeDecision(w, r)
	if !ok {
		return
	}
	ctx, cancel := reqContext(r, decideTimeout)
	defer cancel()
	out, err := h.rollback(ctx, r.PathValue("id"), reviewerOf(r.Context()).name, d.Reason)
	answer(w, out, err)
}

func (h *Handler) apiRevert(w http.ResponseWriter, r *http.Request) {
	d, ok := decodeRevert(w, r)
	if !ok {
		return
	}
	ctx, cancel := reqContext(r, decideTimeout)
	defer cancel()
	out, err := h.revert(ctx, r.PathValue("id"), reviewerOf(r.Context()).name, d.OnlyUnchanged)
	answer(w, out, err)
}

func (h *Handler) apiBranches(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqContext(r, readTimeout)
	defer cancel()
	bs, err := h.cfg.Store.Branches(ctx)
	if err != nil {
		answer(w, Outcome{}, err)
		return
	}
	if bs == nil {
		bs = []*review.Branch{}
	}
	writeJSON(w, http.StatusOK, BranchesJSON{Branches: bs})
}

func (h *Handler) apiBranch(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqContext(r, readTimeout)
	defer cancel()
	bj, _, err := h.loadBranch(ctx, r.PathValue("id"))
	if err != nil {
		answer(w, Outcome{}, err)
		return
	}
	writeJSON(w, http.StatusOK, bj)
}

func (h *Handler) apiMerge(w http.ResponseWriter, r *http.Request) {
	d, ok := decodeDecision(w, r)
	if !ok {
		return
	}
	ctx, cancel := reqContext(r, decideTimeout)
	defer cancel()
	out, err := h.merge(ctx, r.PathValue("id"), reviewerOf(r.Context()).name, d.Expect)
	answer(w, out, err)
}

func (h *Handler) apiDiscard(w http.ResponseWriter, r *http.Request) {
	d, ok := decodeDecision(w, r)
	if !ok {
		return
	}
	ctx, cancel := reqContext(r, decideTimeout)
	defer cancel()
	out, err := h.discard(ctx, r.PathValue("id"), reviewerOf(r.Context()).name, d.Reason)
	answer(w, out, err)
}
