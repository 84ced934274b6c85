package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/safetext"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/reviewweb"
)

// The reviewer's commands through the service's review API (--server):
// the reviewer holds a reviewer token, not a database login, and every
// decision is recorded under the token's name (docs/architecture.md,
// Reviewers). What they print is what the direct commands print: the
// changes come back as review.ChangeDoc and are rendered by the same code.

func serverFlag(fs *flag.FlagSet) *string {
	return fs.String("server", "", "read through the review API of the service at `URL` with your reviewer token ("+reviewerTokenEnv+") instead of with a database login")
}

func reviewClient(server string) (*reviewweb.Client, error) {
	return reviewweb.NewClient(server, os.Getenv(reviewerTokenEnv))
}

func remotePending(ctx context.Context, server string) ([]*review.Change, error) {
	cl, err := reviewClient(server)
	if err != nil {
		return nil, err
	}
	list, err := cl.Changes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*review.Change, 0, len(list.Changes))
	for _, cj := range list.Changes {
		c, err := review.FromDoc(cj.Change)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func remoteShow(ctx context.Context, server, id string, now time.Time) (string, error) {
	cl, err := reviewClient(server)
	if err != nil {
		return "", err
	}
	cj, err := cl.Change(ctx, id)
	var apiErr *reviewweb.APIError
	if errors.As(err, &apiErr) && apiErr.Code == "not_found" {
		bj, berr := cl.Branch(ctx, id)
		if berr != nil {
			return "", err
		}
		changes := make([]*review.Change, 0, len(bj.Changes))
		for _, d := range bj.Changes {
			c, err := review.FromDoc(d)
			if err != nil {
				return "", err
			}
			changes = append(changes, c)
		}
		var diffErr error
		if bj.SchemaDiffError != "" {
			diffErr = errors.New(bj.SchemaDiffError)
		}
		return showBranchText(bj.Branch, changes, bj.SchemaDiff, diffErr, now) + remoteApprovals(bj.Approvals, bj.Required), nil
	}
	if err != nil {
		return "", err
	}
	c, err := review.FromDoc(cj.Change)
	if err != nil {
		return "", err
	}
	var (
		r    *review.Revertibility
		rerr error
	)
	if rj := cj.Revertibility; rj != nil {
		if rj.Error != "" {
			rerr = errors.New(rj.Error)
		} else {
			r = rj.Revertibility()
		}
	}
	return showText(c, now) + remoteApprovals(cj.Approvals, cj.Required) + revertTextOf(c, r, rerr, now), nil
}

func remoteApprovals(as []reviewweb.ApprovalJSON, required int) string {
	recs := make([]review.ApprovalRecord, len(as))
	for i, a := range as {
		recs[i] = review.ApprovalRecord{Reviewer: a.Reviewer, Login: a.Login, Approval: a.Approval, ApprovedAt: a.ApprovedAt}
	}
	return approvalsText(recs, required)
}

func remoteCommit(ctx context.Context, cl *reviewweb.Client, d decision) (string, error) {
	out, err := cl.Commit(ctx, d.id, d.expect)
	if err != nil {
		return "", err
	}
	return remoteOutcome("change", d.id, out), nil
}

func remoteRollback(ctx context.Context, cl *reviewweb.Client, d decision) (string, error) {
	out, err := cl.Rollback(ctx, d.id, d.reason)
	if err != nil {
		return "", err
	}
	return remoteOutcome("change", d.id, out), nil
}

func remoteMerge(ctx context.Context, cl *reviewweb.Client, d decision) (string, error) {
	out, err := cl.Merge(ctx, d.id, d.expect)
	if err != nil {
		return "", err
	}
	return remoteOutcome("branch", d.id, out), nil
}

func remoteDiscard(ctx context.Context, cl *reviewweb.Client, d decision) (string, error) {
	out, err := cl.Discard(ctx, d.id, d.reason)
	if err != nil {
		return "", err
	}
	return remoteOutcome("branch", d.id, out), nil
}

// remoteOutcome is the line a decision through the API prints: its status
// first, as the direct commands print theirs.
func remoteOutcome(kind, id string, out *reviewweb.Outcome) string {
	what := kind + " " + safetext.Line(id)
	if out.Change != nil && out.Change.Ticket != "" {
		what += " (ticket " + safetext.Line(out.Change.Ticket) + ")"
	}
	status := strings.ReplaceAll(safetext.Line(out.Status), "_", " ")
	return fmt.Sprintf("%s: %s %s", status, what, safetext.Line(out.Message))
}

// reportRemote prints why the review API refused or failed, as
// reportRefusal does for the direct commands.
func reportRemote(stdout, stderr io.Writer, cmd string, err error) error {
	var apiErr *reviewweb.APIError
	if !errors.As(err, &apiErr) {
		fmt.Fprintf(stderr, "airlock %s: %s\n", cmd, safetext.Line(err.Error()))
		return errReported
	}
	switch apiErr.Code {
	case "not_found", "unauthorized", "agent_token", "bad_request":
		fmt.Fprintf(stderr, "airlock %s: %s\n", cmd, safetext.Line(apiErr.Message))
	case "drifted":
		fmt.Fprintf(stdout, "drifted: %s\n", safetext.Line(apiErr.Message))
	case "not_pending", "approval_mismatch", "recheck_failed", "already_approved", "not_allowed", "scope_not_applied", "cross_origin", "csrf",
		"revert_conflict", "not_revertible", "not_committed":
		fmt.Fprintf(stdout, "refused: %s\n", safetext.Line(apiErr.Message))
	default:
		fmt.Fprintf(stdout, "failed: %s\n", safetext.Line(apiErr.Message))
	}
	return errReported
}
