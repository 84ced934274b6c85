package reviewweb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/review"
)

// The JSON API's shapes. The page's own script and the CLI's --server
// mode read them; ChangeDoc rebuilds a change exactly (review.FromDoc).

// ApprovalJSON is one recorded approval.
type ApprovalJSON struct {
	Reviewer   string    `json:"reviewer"`
	Login      string    `json:"login,omitempty"`
	Approval   string    `json:"approval_hash"`
	ApprovedAt time.Time `json:"approved_at"`
}

// ChangeJSON is GET changes/{id}, and each element of GET changes.
type ChangeJSON struct {
	Change    *review.ChangeDoc `json:"change"`
	Approvals []ApprovalJSON    `json:"approvals"`
	Required  int               `json:"approvals_required"`
	// Reverts, on a revert, is the committed change it undoes; what it
	// restores is Change.Revert (review.RevertPlan).
	Reverts *ChangeRef `json:"reverts,omitempty"`
	// Revertibility (GET changes/{id} of a committed change) says whether
	// and until when it can be reverted (POST changes/{id}/revert).
	Revertibility *RevertibilityJSON `json:"revertibility,omitempty"`
	// RevertedBy (GET changes/{id}) are the reverts recorded of this
	// change, whatever became of them, oldest first.
	RevertedBy []ChangeRef `json:"reverted_by,omitempty"`
}

// ChangeRef names another change and where to read it.
type ChangeRef struct {
	ID string `json:"id"`
	// Status and Reviewer (who decided it) are there when read.
	Status   review.Status `json:"status,omitempty"`
	Reviewer string        `json:"reviewer,omitempty"`
	// Link is the change's review page and API its API path, both paths
	// on this service.
	Link string `json:"link"`
	API  string `json:"api"`
}

func changeRef(id string) ChangeRef {
	return ChangeRef{ID: id, Link: Prefix + "/changes/" + url.PathEscape(id), API: Prefix + "/api/changes/" + url.PathEscape(id)}
}

// RevertibilityJSON is whether a committed change can be reverted
// (docs/architecture.md, Undo).
type RevertibilityJSON struct {
	// Possible: its commit captured what it did, the capture is live and
	// nothing in it is irreversible. It does not say that no row changed
	// since: a revert over such rows is refused with their keys (or,
	// only_unchanged, leaves them out).
	Possible bool `json:"possible"`
	// Until is when the capture expires (when there is one).
	Until time.Time `json:"until,omitzero"`
	// Reason says why not, when not Possible.
	Reason   string `json:"reason,omitempty"`
	Captured bool   `json:"captured"`
	// Expired: the capture is past its retention (or purged).
	Expired      bool   `json:"expired,omitempty"`
	Irreversible string `json:"irreversible,omitempty"`
	// Rows counts the captured row images per table.
	Rows map[string]RowImages `json:"rows,omitempty"`
	// DDL are the statements a revert would run to undo what it added.
	DDL []string `json:"ddl,omitempty"`
	// Error says why the capture could not be read (Possible is false).
	Error string `json:"error,omitempty"`
}

// RowImages counts one table's captured images: the rows as they were
// before the change and as it left them.
type RowImages struct {
	Before int64 `json:"before"`
	After  int64 `json:"after"`
}

// revertibilityJSON turns the store's answer into the API's.
func revertibilityJSON(r *review.Revertibility, err error) *RevertibilityJSON {
	if err != nil {
		return &RevertibilityJSON{Reason: "could not read the capture: " + err.Error(), Error: err.Error()}
	}
	out := &RevertibilityJSON{Until: r.Until, Captured: r.Captured, Expired: r.Purged, Irreversible: r.Irreversible, DDL: r.DDL}
	if len(r.Rows) > 0 {
		out.Rows = make(map[string]RowImages, len(r.Rows))
		for rel, n := range r.Rows {
			out.Rows[rel] = RowImages{Before: n[0], After: n[1]}
		}
	}
	switch {
	case !r.Captured:
		out.Reason = "nothing was captured when it was committed (write.undo was off, or an airlock older than undo committed it)"
	case r.Purged:
		out.Reason = "its capture expired on " + r.Until.UTC().Format(time.RFC3339)
	case r.Irreversible != "":
		out.Reason = r.Irreversible
	default:
		out.Possible = true
	}
	return out
}

// Revertibility rebuilds the store's answer from the API's (what
// `airlock show --server` renders).
func (r *RevertibilityJSON) Revertibility() *review.Revertibility {
	out := &review.Revertibility{Captured: r.Captured, Until: r.Until, Purged: r.Expired, Irreversible: r.Irreversible,
		Rows: map[string][2]int64{}, DDL: r.DDL}
	for rel, n := range r.Rows {
		out.Rows[rel] = [2]int64{n.Before, n.After}
	}
	return out
}

// ChangesJSON is GET changes: the pending changes, oldest first.
type ChangesJSON struct {
	Changes []ChangeJSON `json:"changes"`
}

// BranchJSON is GET branches/{id}.
type BranchJSON struct {
	Branch *review.Branch `json:"branch"`
	// Changes is the branch's change log, in the order applied.
	Changes []*review.ChangeDoc `json:"changes"`
	// SchemaDiff lists the write tables' schema differences ("- source"
	// and "+ branch" lines) while the branch is live.
	SchemaDiff      []string       `json:"schema_diff"`
	SchemaDiffError string         `json:"schema_diff_error,omitempty"`
	ApprovalHash    string         `json:"approval_hash,omitempty"`
	Approvals       []ApprovalJSON `json:"approvals"`
	Required        int            `json:"approvals_required"`
}

// BranchesJSON is GET branches.
type BranchesJSON struct {
	Branches []*review.Branch `json:"branches"`
}

// DecisionRequest is the body of commit, rollback, merge and discard.
type DecisionRequest struct {
	// Expect (commit, merge) is the approval hash, or a prefix of at
	// least 16 hex digits, the reviewer read.
	Expect string `json:"expect,omitempty"`
	// Reason (rollback, discard) is why, for the agent and the audit log.
	Reason string `json:"reason,omitempty"`
}

// RevertRequest is the body of POST changes/{id}/revert.
type RevertRequest struct {
	// OnlyUnchanged restores only the rows nobody changed since the
	// change was committed and leaves the others as they are; without it
	// such rows refuse the revert (revert_conflict, with their keys).
	OnlyUnchanged bool `json:"only_unchanged,omitempty"`
}

// Outcome is what a decision did.
type Outcome struct {
	// Status is committed, approved (waiting for more approvals),
	// rolled_back, merged or discarded; pending for a revert recorded
	// (Change is the revert: its id, and its plan in Change.Revert).
	Status    string            `json:"status"`
	Message   string            `json:"message"`
	Change    *review.ChangeDoc `json:"change,omitempty"`
	Branch    *review.Branch    `json:"branch,omitempty"`
	Approvals []ApprovalJSON    `json:"approvals,omitempty"`
	Required  int               `json:"approvals_required,omitempty"`
}

// ErrorJSON is every error answer of the API.
type ErrorJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		// Keys (revert_conflict) are, per table, the keys (as JSON) of
		// the rows changed since the change was committed, at most 20 a
		// table; Count is how many rows there are in all.
		Keys  map[string][]string `json:"keys,omitempty"`
		Count int                 `json:"count,omitempty"`
	} `json:"error"`
}

// AuditJSON is GET audit.
type AuditJSON struct {
	Events []AuditEvent `json:"events"`
}

// AuditEvent is one row of airlock.audit_log.
type AuditEvent struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Session   string    `json:"session"`
	Scope     string    `json:"scope"`
	Actor     string    `json:"actor"`
	Tool      string    `json:"tool"`
	SQL       string    `json:"sql,omitempty"`
	Decision  string    `json:"decision"`
	Reason    string    `json:"reason,omitempty"`
	Rows      *int64    `json:"rows,omitempty"`
	ElapsedMS *float64  `json:"elapsed_ms,omitempty"`
	ChangeID  string    `json:"change_id,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"failed","message":"could not encode the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	var e ErrorJSON
	e.Error.Code, e.Error.Message = code, msg
	writeJSON(w, status, e)
}

// classify maps a review error to the API's status and code.
func classify(err error) (int, string) {
	var (
		drift    *migrate.Drift
		conflict *review.RevertConflictError
		notRev   *review.NotRevertibleError
		notComm  *notCommittedError
		np       *review.NotPendingError
		notLive  *review.BranchNotLiveError
		mismatch *review.ApprovalMismatchError
		recheck  *review.RecheckError
		already  *review.AlreadyApprovedError
		noScope  *review.ScopeNotAppliedError
		pgErr    *pgconn.PgError
	)
	switch {
	case errors.Is(err, review.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.As(err, &drift):
		return http.StatusConflict, "drifted"
	case errors.As(err, &conflict):
		return http.StatusConflict, "revert_conflict"
	case errors.As(err, &notComm):
		return http.StatusConflict, "not_committed"
	case errors.As(err, &notRev):
		return http.StatusConflict, "not_revertible"
	case errors.As(err, &np), errors.As(err, &notLive):
		return http.StatusConflict, "not_pending"
	case errors.As(err, &mismatch):
		return http.StatusConflict, "approval_mismatch"
	case errors.As(err, &recheck):
		return http.StatusConflict, "recheck_failed"
	case errors.As(err, &already):
		return http.StatusConflict, "already_approved"
	case errors.As(err, &noScope):
		return http.StatusConflict, "scope_not_applied"
	case errors.As(err, &pgErr) && pgErr.Code == pgerrcode.InsufficientPrivilege:
		return http.StatusForbidden, "not_allowed"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "timeout"
	}
	return http.StatusInternalServerError, "failed"
}

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

// commit approves change id as the signed-in reviewer: it commits once
// the scope's write.approvals reviewers approved.
func (h *Handler) commit(ctx context.Context, id, reviewer, expect string) (Outcome, error) {
	c, st, err := h.cfg.Store.Approve(ctx, id, reviewer, review.Approval{Expect: expect})
	out := Outcome{}
	if c != nil {
		if d, derr := c.Doc(); derr == nil {
			out.Change = d
		}
	}
	if st != nil {
		out.Approvals, out.Required = approvalsJSON(st.Approvals), st.Required
	}
	if err != nil {
		return out, err
	}
	if !st.Done {
		out.Status = "approved"
		out.Message = fmt.Sprintf("approved by %s: approval %d of %d (%s); it waits for %d more reviewer(s) and nothing is committed yet",
			reviewer, len(st.Approvals), st.Required, strings.Join(st.Names(), ", "), st.Waiting())
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
	if c != nil {
		if d, derr := c.Doc(); derr == nil {
			out.Change = d
		}
	}
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
	if d, derr := rev.Doc(); derr == nil {
		out.Change = d
	}
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
	if st != nil {
		out.Approvals, out.Required = approvalsJSON(st.Approvals), st.Required
	}
	if err != nil {
		return out, err
	}
	if !st.Done {
		out.Status = "approved"
		out.Message = fmt.Sprintf("approved by %s: approval %d of %d (%s); the merge waits for %d more reviewer(s)",
			reviewer, len(st.Approvals), st.Required, strings.Join(st.Names(), ", "), st.Waiting())
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

func decodeDecision(w http.ResponseWriter, r *http.Request) (DecisionRequest, bool) {
	var d DecisionRequest
	ok := decodeBody(w, r, &d, `{"expect": "HASH"} or {"reason": "TEXT"}`)
	return d, ok
}

func decodeRevert(w http.ResponseWriter, r *http.Request) (RevertRequest, bool) {
	var d RevertRequest
	ok := decodeBody(w, r, &d, `{"only_unchanged": true}`)
	return d, ok
}

// decodeBody reads a request's JSON object into dst: an empty body is an
// empty object, an unknown field a bad request.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any, example string) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, "bad_request", "the request body is over 64 KiB")
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		apiError(w, http.StatusBadRequest, "bad_request", "the body must be a JSON object such as "+example+": "+err.Error())
		return false
	}
	return true
}

// answer writes a decision's outcome, or its refusal.
func answer(w http.ResponseWriter, out Outcome, err error) {
	if err != nil {
		status, code := classify(err)
		var e ErrorJSON
		e.Error.Code, e.Error.Message = code, err.Error()
		var conflict *review.RevertConflictError
		if errors.As(err, &conflict) {
			e.Error.Keys, e.Error.Count = conflict.Keys, conflict.Count
		}
		writeJSON(w, status, e)
		return
	}
	writeJSON(w, http.StatusOK, out)
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

// auditFilter is the audit log's query: each field empty means any.
type auditFilter struct {
	Scope, Tool, Decision string
	Since, Until          time.Time
	Limit                 int
}

// maxAuditRows bounds one page of the audit log.
const maxAuditRows = 500

func parseAuditFilter(r *http.Request) (auditFilter, error) {
	q := r.URL.Query()
	f := auditFilter{Scope: q.Get("scope"), Tool: q.Get("tool"), Decision: q.Get("decision"), Limit: 200}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v := strings.TrimSpace(q.Get(p.name))
		if v == "" {
			continue
		}
		t, err := parseTime(v)
		if err != nil {
			return f, fmt.Errorf("%s: %w", p.name, err)
		}
		*p.dst = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, errors.New("limit: a positive number")
		}
		f.Limit = min(n, maxAuditRows)
	}
	return f, nil
}

// parseTime reads RFC 3339 or what an <input type="datetime-local">
// sends (taken as UTC).
func parseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("a time such as 2026-12-01T09:30 or 2026-12-01T09:30:00Z")
}

func (h *Handler) auditEvents(ctx context.Context, f auditFilter) ([]AuditEvent, error) {
	var since, until any
	if !f.Since.IsZero() {
		since = f.Since
	}
	if !f.Until.IsZero() {
		until = f.Until
	}
	rows, err := h.cfg.Pool.Query(ctx, `SELECT id, at, session, scope, actor, tool, coalesce(sql, ''), decision,
		coalesce(reason, ''), rows, elapsed_ms, coalesce(change_id::text, '')
		FROM airlock.audit_log
		WHERE ($1 = '' OR scope = $1) AND ($2 = '' OR tool = $2) AND ($3 = '' OR decision = $3)
		AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at <= $5)
		ORDER BY at DESC, id DESC LIMIT $6`, f.Scope, f.Tool, f.Decision, since, until, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEvent, error) {
		var e AuditEvent
		err := r.Scan(&e.ID, &e.At, &e.Session, &e.Scope, &e.Actor, &e.Tool, &e.SQL, &e.Decision, &e.Reason, &e.Rows, &e.ElapsedMS, &e.ChangeID)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	if evs == nil {
		evs = []AuditEvent{}
	}
	return evs, nil
}

func (h *Handler) apiAudit(w http.ResponseWriter, r *http.Request) {
	f, err := parseAuditFilter(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	ctx, cancel := reqContext(r, readTimeout)
	defer cancel()
	evs, err := h.auditEvents(ctx, f)
	if err != nil {
		answer(w, Outcome{}, err)
		return
	}
	writeJSON(w, http.StatusOK, AuditJSON{Events: evs})
}
