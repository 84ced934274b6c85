package review

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// Merging a branch: its change log replayed on the source in one
// transaction (docs/architecture.md, Write modes).

// MergeResult is what Merge did.
type MergeResult struct {
	Branch *Branch
	// Changes are the merged (or drifted) changes, in order.
	Changes []*Change
	// Report is the replay's report on the source.
	Report *migrate.Report
}

// Merge replays branch id's pending change log on the source in one
// transaction through the replay path: every statement must affect exactly
// the rows it affected on the branch, and the schema of the branch's write
// tables after the replay must equal the branch's. Then, in that same
// transaction, the changes are marked committed and the branch merged;
// after the commit the branch database is dropped. On a difference
// nothing is committed, the branch is kept, its pending changes are marked
// drifted and the error wraps the *migrate.Drift. Exactly one of several
// racing reviewer actions wins; the others get a *BranchNotLiveError.
func (s *Store) Merge(ctx context.Context, id, reviewer string) (*MergeResult, error) {
	return s.MergeApproved(ctx, id, reviewer, Approval{})
}

// MergeApproved is Merge bound to an approval: a.Expect, when set, must be
// the branch's approval hash (BranchApprovalHash over the pending changes
// airlock show lists), and every pending change must pass the Checker as
// CommitApproved requires.
func (s *Store) MergeApproved(ctx context.Context, id, reviewer string, a Approval) (*MergeResult, error) {
	start := time.Now()
	reviewer = strings.TrimSpace(reviewer)
	if reviewer == "" {
		return nil, errors.New("merge: a reviewer name is required")
	}
	res, err := s.merge(ctx, id, reviewer, a)
	decision, why := audit.Reviewed, "merged"
	if err != nil {
		decision, why = audit.Failed, err.Error()
	}
	if res != nil {
		s.recordBranchElapsed(res.Branch, reviewer, "merge", decision, why, time.Since(start))
	}
	return res, err
}

func (s *Store) merge(ctx context.Context, id, reviewer string, a Approval) (*MergeResult, error) {
	b, err := s.GetBranch(ctx, id)
	if err != nil {
		return nil, err
	}
	res := &MergeResult{Branch: b}
	if b.Status != BranchLive {
		return res, &BranchNotLiveError{Branch: b}
	}
	all, err := s.BranchChanges(ctx, b.ID)
	if err != nil {
		return res, err
	}
	for _, c := range all {
		if c.Status == StatusPending {
			res.Changes = append(res.Changes, c)
		}
	}
	if len(res.Changes) == 0 {
		return res, fmt.Errorf("merge branch %s: it has no pending changes to merge", b.ID)
	}
	if a.Expect != "" {
		if h := BranchApprovalHash(b, res.Changes); !matchesApproval(h, a.Expect) {
			return res, &ApprovalMismatchError{ID: b.ID, Expected: strings.TrimSpace(a.Expect), Actual: h}
		}
	}
	for _, c := range res.Changes {
		if err := s.verify(ctx, s.pool, c, Approval{}, false); err != nil {
			return res, fmt.Errorf("merge branch %s: %w", b.ID, err)
		}
	}
	plan, opt, expected := mergePlan(res.Changes, b.Strategy == StrategyTemplate)
	if opt.Role, err = writeRole(ctx, s.pool, b.Scope); err != nil {
		return res, err
	}
	opt.DoRunner = scopes.DoRunner(b.Scope)
	if opt.WriteTables, err = writeTables(ctx, s.pool, b.Scope); err != nil {
		return res, err
	}
	undo, err := undoSettings(ctx, s.pool, b.Scope)
	if err != nil {
		return res, err
	}
	var undoLog *migrate.UndoLog
	if undo != nil {
		// Each change's rows are captured under its own id, so each can
		// be reverted alone (docs/architecture.md, Undo).
		opt.Undo, undoLog = true, &migrate.UndoLog{}
		for _, c := range res.Changes {
			for range c.Statements {
				opt.CaptureEach = append(opt.CaptureEach, c.ID)
			}
		}
	}

	bpool, err := s.OpenBranch(ctx, b)
	if err != nil {
		return res, err
	}
	branchSchema, err := readTableSchema(ctx, bpool, b.Tables)
	bpool.Close()
	if err != nil {
		return res, fmt.Errorf("merge branch %s: read the branch's schema: %w", b.ID, err)
	}

	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("merge branch %s: %w", b.ID, err)
	}
	ids := make([]string, len(res.Changes))
	for i, c := range res.Changes {
		ids[i] = c.ID
	}
	rep, err := migrate.Run(ctx, pc.Conn(), plan, opt, migrate.EndCommitIfSame, migrate.RunArg{
		Expected:         &expected,
		IgnoreSchemaDiff: true,
		Undo:             undoLog,
		BeforeCommit: func(ctx context.Context, tx pgx.Tx) error {
			sourceSchema, err := migrate.ReadTableSchema(ctx, tx, b.Tables)
			if err != nil {
				return fmt.Errorf("read the source's schema: %w", err)
			}
			if d := migrate.CompareTableSchemas(sourceSchema, branchSchema); !d.Empty() {
				return &migrate.Drift{Differences: schemaDrift(d)}
			}
			tag, err := tx.Exec(ctx, `UPDATE airlock.branches SET status = 'merged', reviewer = $2, decided_at = clock_timestamp()
				WHERE id = $1 AND status = 'live' AND expires_at > clock_timestamp()`, b.ID, reviewer)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return errBranchDecided
			}
			// Holding the branch row now, no change can join the log
			// (Record takes it FOR SHARE): the log must be what we replayed.
			var more bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM airlock.changes
				WHERE branch_id = $1 AND status = 'pending' AND NOT (id = ANY($2::uuid[])))`, b.ID, ids).Scan(&more); err != nil {
				return err
			}
			if more {
				return errLogGrew
			}
			tag, err = tx.Exec(ctx, `UPDATE airlock.changes SET status = 'committed', reviewer = $2, decided_at = clock_timestamp(), reason = 'merged with branch ' || $3
				WHERE id = ANY($1::uuid[]) AND status = 'pending'`, ids, reviewer, b.ID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != int64(len(ids)) {
				return errBranchDecided
			}
			if undo != nil {
				for _, c := range res.Changes {
					if err := recordCapture(ctx, tx, c, undo, undoLog); err != nil {
						return err
					}
				}
			}
			return nil
		},
	})
	unlockAll(ctx, pc.Conn())
	pc.Release()
	res.Report = rep
	var drift *migrate.Drift
	switch {
	case err == nil:
	case errors.As(err, &drift):
		if drift.Report != nil {
			res.Report = drift.Report
		}
		reason := "drifted: " + strings.Join(drift.Differences, "; ")
		if _, uerr := s.pool.Exec(ctx, `UPDATE airlock.changes SET status = 'drifted', reviewer = $2, decided_at = clock_timestamp(), reason = $3
			WHERE id = ANY($1::uuid[]) AND status = 'pending'`, ids, reviewer, reason); uerr != nil {
			return res, fmt.Errorf("merge branch %s: %w; marking the changes drifted failed: %v", b.ID, err, uerr)
		}
		_, _ = s.pool.Exec(ctx, "UPDATE airlock.branches SET reason = $2 WHERE id = $1 AND status = 'live'", b.ID, reason)
		s.refresh(ctx, res)
		return res, fmt.Errorf("merge branch %s: nothing was committed and the branch is kept: %w", b.ID, err)
	case errors.Is(err, errLogGrew):
		return res, fmt.Errorf("merge branch %s: %w", b.ID, errLogGrew)
	default:
		if nb, gerr := s.GetBranch(ctx, b.ID); gerr == nil && nb.Status != BranchLive {
			res.Branch = nb
			return res, &BranchNotLiveError{Branch: nb}
		}
		return res, fmt.Errorf("merge branch %s: %w; nothing was committed and the branch is kept", b.ID, err)
	}
	derr := s.finishDrop(ctx, b.ID, b.Database)
	s.refresh(ctx, res)
	if derr != nil {
		return res, fmt.Errorf("branch %s was merged, but dropping its database failed (the next reap retries): %w", b.ID, derr)
	}
	return res, nil
}

var errBranchDecided = errors.New("the branch was decided by someone else meanwhile")

// errLogGrew is a merge's refusal when the session recorded more changes
// after the merge read the log.
var errLogGrew = errors.New("the session applied more changes to the branch while it was being merged; nothing was committed, merge again")

// refresh rereads res's branch and changes after a decision.
func (s *Store) refresh(ctx context.Context, res *MergeResult) {
	if nb, err := s.GetBranch(ctx, res.Branch.ID); err == nil {
		res.Branch = nb
	}
	for i, c := range res.Changes {
		if nc, err := s.Get(ctx, c.ID); err == nil {
			res.Changes[i] = nc
		}
	}
}

// BranchApprovalHash is the hex SHA-256 a merge is bound to: the branch and
// the approval hash of each pending change of its log, in order.
func BranchApprovalHash(b *Branch, pending []*Change) string {
	h := sha256.New()
	fmt.Fprintf(h, "airlock-branch-approval-v1\n%s\n", b.ID)
	for _, c := range pending {
		fmt.Fprintf(h, "%s\n", c.ApprovalHash())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// mergePlan concatenates the change log into one plan with the rows each
// statement must affect, and the first change's options with the longest
// statement timeout of the log. Who runs the plan and what it may touch
// are not taken from those stored options: merge replaces the role with
// the scope's write role recorded in airlock.scopes (writeRole), and the
// DO runner and the write tables with the scope's as applied, so the
// merge, like every commit, runs as that role whatever the changes'
// stored options or the reviewer's login say (docs/architecture.md,
// Approvals).
//
// A template branch began as a full copy of the source, so the merge also
// compares the rows each statement touched (docs/architecture.md,
// Effects); a schema branch holds sampled rows, and only counts compare.
func mergePlan(changes []*Change, images bool) (*sqlguard.MigrationPlan, migrate.Options, migrate.Effects) {
	plan := &sqlguard.MigrationPlan{}
	var expected migrate.Effects
	opt := changes[0].Options
	var fps []string
	for _, c := range changes {
		plan.Statements = append(plan.Statements, slices.Clone(c.Statements)...)
		expected.RowsAffected = append(expected.RowsAffected, c.Effects.RowsAffected...)
		rows := c.Effects.Rows
		if !images || len(rows) != len(c.Statements) {
			rows = make([]migrate.RowsEffect, len(c.Statements))
		}
		expected.Rows = append(expected.Rows, rows...)
		opt.StatementTimeout = max(opt.StatementTimeout, c.Options.StatementTimeout)
		fps = append(fps, c.SQLFingerprint)
	}
	plan.Fingerprint = strings.Join(fps, ",")
	return plan, opt, expected
}
