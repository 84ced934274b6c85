package reviewweb

import (
	"net/url"
	"time"

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
