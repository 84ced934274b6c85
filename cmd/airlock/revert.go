package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/safetext"
	"github.com/airlock-dev/airlock/review"
)

// revertOptions are revert's flags.
type revertOptions struct {
	reviewer      string
	onlyUnchanged bool
	server        string
	logJSON       *bool
}

func revertFlags(fs *flag.FlagSet) *revertOptions {
	o := &revertOptions{}
	fs.StringVar(&o.reviewer, "reviewer", "", "your `NAME`, recorded with the revert (required without --server)")
	fs.BoolVar(&o.onlyUnchanged, "only-unchanged", false, "restore only the rows nobody changed since the change was committed, leaving the others as they are (without it such rows refuse the revert)")
	o.logJSON = reviewLogFlag(fs)
	fs.StringVar(&o.server, "server", "", "revert through the review API of the service at `URL` with your reviewer token ("+reviewerTokenEnv+"), under the token's name, instead of with a database login")
	return o
}

// cmdRevert turns a committed change into a pending change that undoes it
// (docs/architecture.md, Undo); a reviewer commits that like any other.
func cmdRevert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := mustLookup("revert")
	fs := c.flagSet()
	o := revertFlags(fs)
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if o.server != "" && o.reviewer != "" {
		return c.usageError(stderr, "--reviewer is not taken with --server: the revert is recorded under your reviewer token's name")
	}
	if o.server == "" && strings.TrimSpace(o.reviewer) == "" {
		return c.usageError(stderr, "--reviewer NAME is required: the revert is recorded with it")
	}
	if o.server != "" {
		return remoteRevert(ctx, c.name, o, pos[0], stdout, stderr)
	}
	store, done, err := openReview(ctx, c.name, stderr, true, *o.logJSON)
	if err != nil {
		return err
	}
	defer done()
	if err := store.CheckReviewer(ctx); err != nil {
		var nr *review.NotReviewerError
		if errors.As(err, &nr) {
			fmt.Fprintf(stdout, "refused: %s\n", safetext.Line(nr.Error()))
			return errReported
		}
		return err
	}
	rev, err := store.Revert(ctx, pos[0], o.reviewer, o.onlyUnchanged)
	var (
		conflict *review.RevertConflictError
		not      *review.NotRevertibleError
	)
	switch {
	case errors.Is(err, review.ErrNotFound):
		fmt.Fprintf(stderr, "airlock revert: %s\n", safetext.Line(err.Error()))
		return errReported
	case errors.As(err, &conflict), errors.As(err, &not):
		fmt.Fprintf(stdout, "refused: %s\n", safetext.Line(err.Error()))
		return errReported
	case err != nil:
		fmt.Fprintf(stdout, "failed: %s\n", safetext.Line(err.Error()))
		return errReported
	}
	fmt.Fprintln(stdout, revertPendingText(rev.ID, pos[0], ""))
	return nil
}

// remoteRevert asks the service's review API for the revert, under the
// reviewer token's name: a reviewer without a database login reverts.
func remoteRevert(ctx context.Context, name string, o *revertOptions, id string, stdout, stderr io.Writer) error {
	cl, err := reviewClient(o.server)
	if err != nil {
		fmt.Fprintf(stderr, "airlock %s: %v\n", name, err)
		return errReported
	}
	out, err := cl.Revert(ctx, id, o.onlyUnchanged)
	if err != nil {
		return reportRemote(stdout, stderr, name, err)
	}
	if out.Change == nil || out.Change.ID == "" {
		fmt.Fprintf(stdout, "failed: the review API recorded the revert but did not say its id: %s\n", safetext.Line(out.Message))
		return errReported
	}
	fmt.Fprintln(stdout, revertPendingText(out.Change.ID, id, o.server))
	return nil
}

// revertPendingText is the line a recorded revert prints.
func revertPendingText(revID, id, server string) string {
	show, commit := "", " --reviewer NAME"
	if server != "" {
		show = " --server " + safetext.Line(server)
		commit = show
	}
	r := safetext.Line(revID)
	return fmt.Sprintf("pending: revert %s of change %s; review it with airlock show %s%s, commit it with airlock commit %s%s",
		r, safetext.Line(id), r, show, r, commit)
}

// revertText is show's part on undo: for a committed change whether and
// until when it can be reverted and what a revert would do; for a revert
// what it restores.
func revertText(ctx context.Context, store *review.Store, c *review.Change) string {
	var (
		r   *review.Revertibility
		err error
	)
	if c.Status == review.StatusCommitted {
		r, err = store.Revertibility(ctx, c.ID)
	}
	return revertTextOf(c, r, err, time.Now())
}

// revertTextOf renders revertText from the capture's revertibility r (or
// the error reading it), as show and show --server both print it.
func revertTextOf(c *review.Change, r *review.Revertibility, err error, now time.Time) string {
	var b strings.Builder
	if c.Revert != nil {
		fmt.Fprintf(&b, "\nRevert of change %s:\n", safetext.Line(c.Reverts))
		for _, d := range c.Revert.Recreate {
			fmt.Fprintf(&b, "  first: %s\n", safetext.Line(d))
		}
		for _, t := range c.Revert.Tables {
			fmt.Fprintf(&b, "  %s: put back %d deleted row(s), restore %d updated row(s), remove %d inserted row(s)",
				safetext.Line(t.Relation), t.PutBack, t.Restored, t.Removed)
			if len(t.Skipped) > 0 {
				fmt.Fprintf(&b, "; %d changed since left as they are", len(t.Skipped))
			}
			b.WriteString("\n")
		}
		for _, d := range c.Revert.DDL {
			fmt.Fprintf(&b, "  then: %s\n", safetext.Line(d))
		}
		b.WriteString("A commit plans the revert again from the capture and commits only if it comes out the same.\n")
	}
	if c.Status != review.StatusCommitted || (r == nil && err == nil) {
		return b.String()
	}
	switch {
	case err != nil:
		return b.String() + "\nRevert: could not read the capture: " + safetext.Line(err.Error()) + "\n"
	case !r.Captured:
		return b.String() + "\nRevert: not possible; nothing was captured when it was committed (write.undo was off, or an airlock older than undo committed it).\n"
	case r.Purged:
		return b.String() + "\nRevert: not possible any more; its capture expired " + stamp(r.Until) + ".\n"
	case r.Irreversible != "":
		return b.String() + "\nRevert: not possible; " + safetext.Line(r.Irreversible) + ".\n"
	}
	fmt.Fprintf(&b, "\nRevert: possible until %s (in %s): airlock revert %s (--reviewer NAME | --server URL)\n", stamp(r.Until), human(r.Until.Sub(now)), safetext.Line(c.ID))
	rels := make([]string, 0, len(r.Rows))
	for rel := range r.Rows {
		rels = append(rels, rel)
	}
	slices.Sort(rels)
	for _, rel := range rels {
		n := r.Rows[rel]
		fmt.Fprintf(&b, "  %s: %d row image(s) before, %d after the change\n", safetext.Line(rel), n[0], n[1])
	}
	for _, d := range r.DDL {
		fmt.Fprintf(&b, "  then: %s\n", safetext.Line(d))
	}
	return b.String()
}
