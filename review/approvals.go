package review

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/audit"
)

// The two-person rule (docs/architecture.md, Reviewers): a scope's
// write.approvals says how many distinct reviewers must approve a change
// or a branch merge. Every approval but the last is recorded in
// airlock.approvals, bound to the approval hash the reviewer saw; the last
// one runs the commit or merge, bound to that same hash. One rejection
// (rollback, discard) ends it. The database itself refuses an approval by
// the login that applied the change, by an agent or a service login, and
// on anything no longer open (review.Schema, approvalGuard).

// Approval subjects, as airlock.approvals.kind names them.
const (
	subjectChange = "change"
	subjectBranch = "branch"
	actionApprove = "approve"
)

// ApprovalRecord is one reviewer's recorded approval.
type ApprovalRecord struct {
	Reviewer string
	// Login is the database login that recorded it (the review service's
	// own login for approvals made on the review page).
	Login string
	// Approval is the approval hash that was approved.
	Approval   string
	ApprovedAt time.Time
}

// Approved says where a change or a branch stands after an approval.
type Approved struct {
	// Approvals are the approvals of its current content, this one
	// included, oldest first.
	Approvals []ApprovalRecord
	// Required is write.approvals of its scope as applied.
	Required int
	// Done is true when this approval was the last one needed, and the
	// commit or merge ran (its error, if any, is the call's error).
	Done bool
}

// Waiting is how many more approvals are needed.
func (a *Approved) Waiting() int { return max(0, a.Required-len(a.Approvals)) }

// Names lists the reviewers who approved.
func (a *Approved) Names() []string {
	out := make([]string, len(a.Approvals))
	for i, r := range a.Approvals {
		out[i] = r.Reviewer
	}
	return out
}

// AlreadyApprovedError says the reviewer's approval is recorded already:
// another reviewer must approve.
type AlreadyApprovedError struct {
	Kind, ID, Reviewer string
	Waiting            int
}

func (e *AlreadyApprovedError) Error() string {
	return fmt.Sprintf("%s %s: %s approved it already; it waits for %d more approval(s) from other reviewers (write.approvals)", e.Kind, e.ID, e.Reviewer, e.Waiting)
}

// RequiredApprovals returns write.approvals of scope as the admin applied
// it: the registry, not the service's copy, says how many must approve.
func (s *Store) RequiredApprovals(ctx context.Context, scope string) (int, error) {
	sc, _, err := appliedScope(ctx, s.pool, scope)
	if err != nil {
		return 0, err
	}
	if sc.Write == nil || sc.Write.Approvals < 1 {
		return 1, nil
	}
	return sc.Write.Approvals, nil
}

// Approvals returns the approvals recorded for a change or a branch,
// oldest first.
func (s *Store) Approvals(ctx context.Context, subject string) ([]ApprovalRecord, error) {
	return approvalsOf(ctx, s.pool, subject, "")
}

func approvalsOf(ctx context.Context, q querier, subject, hash string) ([]ApprovalRecord, error) {
	rows, err := q.Query(ctx, `SELECT reviewer, login::text, approval, approved_at FROM airlock.approvals
		WHERE subject = $1::uuid AND ($2 = '' OR approval = $2) ORDER BY approved_at, reviewer`, subject, hash)
	if err != nil {
		return nil, fmt.Errorf("read the approvals of %s: %w", subject, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ApprovalRecord, error) {
		var a ApprovalRecord
		err := r.Scan(&a.Reviewer, &a.Login, &a.Approval, &a.ApprovedAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the approvals of %s: %w", subject, err)
	}
	return out, nil
}

// Approve is a reviewer's approval of change id. With write.approvals 1 it
// is CommitApproved. Otherwise the change must pass the same checks a
// commit makes first (a.Expect, the re-check against the scope as applied
// now); the approval is recorded against the change's approval hash, and
// the approval that completes the count commits the change, bound to that
// hash. A reviewer approves a change once; the returned Approved says how
// many approved and how many must.
func (s *Store) Approve(ctx context.Context, id, reviewer string, a Approval) (*Change, *Approved, error) {
	start := time.Now()
	reviewer = strings.TrimSpace(reviewer)
	if reviewer == "" {
		return nil, nil, errors.New("approve: a reviewer name is required")
	}
	r, err := s.get(ctx, s.pool, id)
	if err != nil {
		s.recordOutcome(nil, id, reviewer, actionCommit, err, time.Since(start))
		return nil, nil, err
	}
	required, err := s.RequiredApprovals(ctx, r.Scope)
	if err != nil {
		s.recordOutcome(r.Change, id, reviewer, actionCommit, err, time.Since(start))
		return r.Change, nil, err
	}
	if required <= 1 {
		c, err := s.CommitApproved(ctx, r.ID, reviewer, a)
		st := &Approved{Required: 1, Done: true}
		if err == nil {
			st.Approvals = []ApprovalRecord{{Reviewer: reviewer, Approval: c.ApprovalHash(), ApprovedAt: c.DecidedAt}}
		}
		return c, st, err
	}
	switch {
	case r.Mode == ModeBranch:
		err = errBranchChange(r.Change)
	case r.Status != StatusPending:
		err = &NotPendingError{Change: r.Change, Action: actionCommit}
	default:
		err = s.verify(ctx, s.pool, r.Change, a, true)
	}
	if err != nil {
		s.recordOutcome(r.Change, id, reviewer, actionCommit, err, time.Since(start))
		return r.Change, nil, err
	}
	hash := r.ApprovalHash()
	st, err := s.recordApproval(ctx, subjectChange, r.ID, reviewer, hash, required)
	if err != nil {
		s.record(r.Change, r.ID, reviewer, actionApprove, audit.Failed, err.Error(), 0, time.Since(start))
		return r.Change, st, err
	}
	s.record(r.Change, r.ID, reviewer, actionApprove, audit.Reviewed,
		fmt.Sprintf("approval %d of %d (%s)", len(st.Approvals), required, strings.Join(st.Names(), ", ")), 0, time.Since(start))
	if st.Waiting() > 0 {
		return r.Change, st, nil
	}
	st.Done = true
	c, err := s.CommitApproved(ctx, r.ID, reviewer, Approval{Expect: hash})
	return c, st, err
}

// ApproveMerge is a reviewer's approval of merging branch id: as Approve,
// over the branch's approval hash (BranchApprovalHash of its pending
// changes). An approval counts only for the content it saw: a branch that
// gained changes since needs its approvals again.
func (s *Store) ApproveMerge(ctx context.Context, id, reviewer string, a Approval) (*MergeResult, *Approved, error) {
	start := time.Now()
	reviewer = strings.TrimSpace(reviewer)
	if reviewer == "" {
		return nil, nil, errors.New("approve: a reviewer name is required")
	}
	b, err := s.GetBranch(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	required, err := s.RequiredApprovals(ctx, b.Scope)
	if err != nil {
		return &MergeResult{Branch: b}, nil, err
	}
	if required <= 1 {
		res, err := s.MergeApproved(ctx, b.ID, reviewer, a)
		return res, &Approved{Required: 1, Done: true}, err
	}
	if b.Status != BranchLive {
		return &MergeResult{Branch: b}, nil, &BranchNotLiveError{Branch: b}
	}
	all, err := s.BranchChanges(ctx, b.ID)
	if err != nil {
		return &MergeResult{Branch: b}, nil, err
	}
	var pending []*Change
	for _, c := range all {
		if c.Status == StatusPending {
			pending = append(pending, c)
			if err := s.verify(ctx, s.pool, c, Approval{}, false); err != nil {
				return &MergeResult{Branch: b}, nil, err
			}
		}
	}
	hash := BranchApprovalHash(b, pending)
	if a.Expect != "" && !matchesApproval(hash, a.Expect) {
		return &MergeResult{Branch: b}, nil, &ApprovalMismatchError{ID: b.ID, Expected: strings.TrimSpace(a.Expect), Actual: hash}
	}
	st, err := s.recordApproval(ctx, subjectBranch, b.ID, reviewer, hash, required)
	decision, why := audit.Reviewed, ""
	if err != nil {
		decision, why = audit.Failed, err.Error()
	} else {
		why = fmt.Sprintf("approval %d of %d (%s)", len(st.Approvals), required, strings.Join(st.Names(), ", "))
	}
	s.recordBranchElapsed(b, reviewer, actionApprove, decision, why, time.Since(start))
	if err != nil || st.Waiting() > 0 {
		return &MergeResult{Branch: b}, st, err
	}
	st.Done = true
	res, err := s.MergeApproved(ctx, b.ID, reviewer, Approval{Expect: hash})
	return res, st, err
}

// recordApproval inserts reviewer's approval of hash under a lock on the
// subject's row, so that of reviewers approving at the same moment each
// counts the others' approvals and exactly the last one sees the count
// complete.
func (s *Store) recordApproval(ctx context.Context, kind, id, reviewer, hash string, required int) (*Approved, error) {
	st := &Approved{Required: required}
	table := "airlock.changes"
	if kind == subjectBranch {
		table = "airlock.branches"
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM "+table+" WHERE id = $1::uuid FOR UPDATE", id).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return notFound(id)
			}
			return fmt.Errorf("lock %s %s: %w", kind, id, err)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO airlock.approvals (subject, kind, reviewer, approval) VALUES ($1::uuid, $2, $3, $4)
			ON CONFLICT (subject, reviewer, approval) DO NOTHING`, id, kind, reviewer, hash)
		if err != nil {
			return fmt.Errorf("record the approval of %s %s: %w", kind, id, err)
		}
		if st.Approvals, err = approvalsOf(ctx, tx, id, hash); err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return &AlreadyApprovedError{Kind: kind, ID: id, Reviewer: reviewer, Waiting: st.Waiting()}
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	return st, nil
}
