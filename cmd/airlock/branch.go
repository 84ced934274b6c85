package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/airlock-dev/airlock/internal/safetext"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/review"
)

// The reviewer's side of branch mode: list live branches, merge one into
// the source, discard one. `airlock show` takes a branch id too.

func cmdBranches(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := mustLookup("branches")
	fs := c.flagSet()
	logJSON := reviewLogFlag(fs)
	if _, err := c.parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	store, done, err := openReview(ctx, c.name, stderr, false, *logJSON)
	if err != nil {
		return err
	}
	defer done()
	branches, err := store.Branches(ctx)
	if err != nil {
		return err
	}
	if len(branches) == 0 {
		fmt.Fprintln(stdout, "no live branches")
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSESSION\tSCOPE\tAGE\tCHANGES\tSIZE\tEXPIRES IN")
	for _, b := range branches {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", cell(b.ID, 36), cell(b.Session, 36), cell(b.Scope, 24),
			human(now.Sub(b.CreatedAt)), b.Changes, size(b.SizeBytes), branchExpiresIn(b, now))
	}
	return tw.Flush()
}

func size(n int64) string {
	switch {
	case n < 0:
		return "-"
	case n < 1<<20:
		return fmt.Sprintf("%d kB", n>>10)
	}
	return fmt.Sprintf("%d MB", n>>20)
}

func branchExpiresIn(b *review.Branch, now time.Time) string {
	if !now.Before(b.ExpiresAt) {
		return "expired " + human(now.Sub(b.ExpiresAt)) + " ago"
	}
	return "in " + human(b.ExpiresAt.Sub(now))
}

// showBranch renders branch b, its whole change log and its schema diff
// against the source, its strings through safetext as showText does.
func showBranch(ctx context.Context, store *review.Store, b *review.Branch, now time.Time) (string, error) {
	changes, err := store.BranchChanges(ctx, b.ID)
	if err != nil {
		return "", err
	}
	var diff []string
	var diffErr error
	if b.Status == review.BranchLive {
		diff, diffErr = store.SchemaDiff(ctx, b)
	}
	return showBranchText(b, changes, diff, diffErr, now), nil
}

// showBranchText renders what showBranch gathered (or the review API sent).
func showBranchText(b *review.Branch, changes []*review.Change, diff []string, diffErr error, now time.Time) string {
	var sb strings.Builder
	field := func(name, value string) { fmt.Fprintf(&sb, "%-10s %s\n", name+":", value) }
	fmt.Fprintf(&sb, "branch %s\n", safetext.Line(b.ID))
	field("database", safetext.Line(b.Database))
	field("strategy", safetext.Line(string(b.Strategy)))
	field("scope", safetext.Line(b.Scope))
	field("session", safetext.Line(b.Session))
	field("status", safetext.Line(string(b.Status)))
	field("created", fmt.Sprintf("%s (%s ago)", stamp(b.CreatedAt), human(now.Sub(b.CreatedAt))))
	field("expires", fmt.Sprintf("%s (%s)", stamp(b.ExpiresAt), branchExpiresIn(b, now)))
	if !b.DecidedAt.IsZero() {
		field("decided", fmt.Sprintf("%s by %s", stamp(b.DecidedAt), orDash(safetext.Line(b.Reviewer))))
	}
	if b.Reason != "" {
		field("reason", safetext.Line(b.Reason))
	}
	field("size", size(b.SizeBytes))
	fmt.Fprintf(&sb, "\nChange log (%d, in the order applied):\n", len(changes))
	for i, c := range changes {
		fmt.Fprintf(&sb, "\n%d. change %s  ticket %s  status %s  risk %s  rows %s\n", i+1, safetext.Line(c.ID),
			safetext.Line(c.Ticket), safetext.Line(string(c.Status)), safetext.Line(c.Risk()), rowsText(c))
		fmt.Fprintf(&sb, "   summary: %s\n", safetext.Line(c.Summary))
		writeSQL(&sb, c.SQL, "     ")
		if c.Report == nil {
			continue
		}
		for j, st := range c.Report.Statements {
			fmt.Fprintf(&sb, "   statement %d (%s): %d rows\n", j+1, safetext.Line(st.Kind), st.RowsAffected)
			if st.Compared != "" && b.Strategy == review.StrategyTemplate {
				fmt.Fprintf(&sb, "     a merge compares: %s\n", safetext.Line(st.Compared))
			}
		}
	}
	if b.Status == review.BranchLive {
		var pending []*review.Change
		for _, c := range changes {
			if c.Status == review.StatusPending {
				pending = append(pending, c)
			}
		}
		if len(pending) > 0 {
			h := review.BranchApprovalHash(b, pending)
			fmt.Fprintf(&sb, "\napproval: %s\n  (covers the %d pending changes above, each with its ticket, summary, SQL, statements, effects\n"+
				"  and scope version; merge it with airlock merge %s --reviewer NAME --expect %s)\n", h, len(pending), safetext.Line(b.ID), h[:16])
			sb.WriteString("A merge first checks every pending change again against the scope as applied now.\n")
		}
	}
	if b.Status == review.BranchLive {
		sb.WriteString("\nSchema diff of the write tables (- source, + branch):\n")
		switch {
		case diffErr != nil:
			fmt.Fprintf(&sb, "  (could not compare: %s)\n", safetext.Line(diffErr.Error()))
		case len(diff) == 0:
			sb.WriteString("  (none)\n")
		}
		for _, l := range diff {
			sb.WriteString("  " + safetext.Line(l) + "\n")
		}
	}
	return sb.String()
}

func cmdMerge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return decide(ctx, "merge", false, args, stdout, stderr, reportBranchRefusal, remoteMerge,
		func(store *review.Store, d decision) (string, error) {
			res, st, err := store.ApproveMerge(ctx, d.id, d.reviewer, review.Approval{Expect: d.expect})
			if err != nil {
				return "", err
			}
			if !st.Done {
				return waitingText("branch", res.Branch.ID, d.reviewer, st), nil
			}
			return fmt.Sprintf("merged: branch %s (%d changes) by %s at %s%s; its database is dropped",
				safetext.Line(res.Branch.ID), len(res.Changes), safetext.Line(res.Branch.Reviewer), stamp(res.Branch.DecidedAt), approvedBy(st)), nil
		})
}

func cmdDiscard(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return decide(ctx, "discard", true, args, stdout, stderr, reportBranchRefusal, remoteDiscard,
		func(store *review.Store, d decision) (string, error) {
			b, err := store.Discard(ctx, d.id, d.reviewer, d.reason)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("discarded: branch %s by %s at %s; its changes are rolled back and its database is dropped",
				safetext.Line(b.ID), safetext.Line(b.Reviewer), stamp(b.DecidedAt)), nil
		})
}

func reportBranchRefusal(stdout, stderr io.Writer, cmd string, err error) error {
	var (
		drift    *migrate.Drift
		notLive  *review.BranchNotLiveError
		mismatch *review.ApprovalMismatchError
		recheck  *review.RecheckError
		already  *review.AlreadyApprovedError
	)
	switch {
	case errors.Is(err, review.ErrNotFound):
		fmt.Fprintf(stderr, "airlock %s: %s\n", cmd, safetext.Line(err.Error()))
	case errors.As(err, &drift):
		fmt.Fprintf(stdout, "drifted: %s\n", safetext.Line(err.Error()))
	case errors.As(err, &notLive), errors.As(err, &mismatch), errors.As(err, &recheck), errors.As(err, &already):
		fmt.Fprintf(stdout, "refused: %s\n", safetext.Line(err.Error()))
	default:
		fmt.Fprintf(stdout, "failed: %s\n", safetext.Line(err.Error()))
	}
	return errReported
}
