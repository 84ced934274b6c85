package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/review"
)

// reviewEnv names the variable holding the reviewer's database URL.
const reviewEnv = "AIRLOCK_DATABASE_URL"

// openReview connects to the reviewer's database, makes sure airlock's
// schema exists and returns a store; close releases everything (flushing
// the audit log first). Only commands that act need the audit log.
func openReview(ctx context.Context, stderr io.Writer, audited bool) (store *review.Store, close func(), err error) {
	pool, err := openPool(ctx, reviewEnv, 4, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := review.EnsureSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, err
	}
	logger := newLogger(stderr)
	var log *audit.Log
	if audited {
		log = audit.NewLog(pool, logger)
	}
	store = review.NewStore(pool, log)
	store.SetLogger(logger)
	return store, func() {
		if log != nil {
			log.Close()
		}
		pool.Close()
	}, nil
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("commit ID --reviewer NAME"), which package flag
// alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: airlock %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// pendingJSON is one element of `airlock pending --json`.
type pendingJSON struct {
	ID               string    `json:"id"`
	Ticket           string    `json:"ticket"`
	Summary          string    `json:"summary"`
	Scope            string    `json:"scope"`
	Session          string    `json:"session"`
	Mode             string    `json:"mode"`
	Risk             string    `json:"risk"`
	CreatedAt        time.Time `json:"created_at"`
	ExpiresAt        time.Time `json:"expires_at"`
	AgeSeconds       int64     `json:"age_seconds"`
	ExpiresInSeconds int64     `json:"expires_in_seconds"`
	SQL              string    `json:"sql"`
}

func cmdPending(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pending", "pending [--json]", stderr)
	asJSON := fs.Bool("json", false, "print a JSON array (with each change's SQL)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	store, done, err := openReview(ctx, stderr, false)
	if err != nil {
		return err
	}
	defer done()
	changes, err := store.Pending(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	if *asJSON {
		out := make([]pendingJSON, len(changes))
		for i, c := range changes {
			out[i] = pendingJSON{
				ID: c.ID, Ticket: c.Ticket, Summary: c.Summary, Scope: c.Scope, Session: c.Session,
				Mode: c.Mode, Risk: c.Risk(), CreatedAt: c.CreatedAt.UTC(), ExpiresAt: c.ExpiresAt.UTC(),
				AgeSeconds:       int64(now.Sub(c.CreatedAt).Seconds()),
				ExpiresInSeconds: int64(c.ExpiresAt.Sub(now).Seconds()),
				SQL:              c.SQL,
			}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no pending changes")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAGE\tTICKET\tSCOPE\tMODE\tRISK\tSUMMARY\tEXPIRES IN")
	for _, c := range changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, human(now.Sub(c.CreatedAt)),
			cell(c.Ticket, 24), cell(c.Scope, 24), c.Mode, c.Risk(), cell(c.Summary, 48), expiresIn(c, now))
	}
	return tw.Flush()
}

func cmdShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("show", "show ID", stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return errUsage
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	store, done, err := openReview(ctx, stderr, false)
	if err != nil {
		return err
	}
	defer done()
	c, err := store.Get(ctx, pos[0])
	if errors.Is(err, review.ErrNotFound) {
		// The id may be a branch's.
		if b, berr := store.GetBranch(ctx, pos[0]); berr == nil {
			out, err := showBranch(ctx, store, b, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprint(stdout, out)
			return nil
		}
	}
	if errors.Is(err, review.ErrNotFound) {
		fmt.Fprintf(stderr, "airlock show: %v\n", err)
		return errReported
	}
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, showText(c, time.Now()))
	return nil
}

// showText renders everything a reviewer needs to decide on c. Every
// string that came from the agent goes through text(), so it cannot drive
// the reviewer's terminal.
func showText(c *review.Change, now time.Time) string {
	var b strings.Builder
	field := func(name, value string) { fmt.Fprintf(&b, "%-10s %s\n", name+":", value) }
	fmt.Fprintf(&b, "change %s\n", c.ID)
	field("ticket", text(c.Ticket))
	field("summary", text(c.Summary))
	field("scope", text(c.Scope))
	field("session", orDash(text(c.Session)))
	mode := c.Mode
	if c.Mode == review.ModePrepared {
		mode += " (transaction " + c.GID + ")"
	}
	if c.Mode == review.ModeBranch {
		mode += " (branch " + c.BranchID + "; review it with airlock show/merge/discard " + c.BranchID + ")"
	}
	field("mode", mode)
	field("status", c.Status)
	field("created", fmt.Sprintf("%s (%s ago)", stamp(c.CreatedAt), human(now.Sub(c.CreatedAt))))
	field("expires", fmt.Sprintf("%s (%s)", stamp(c.ExpiresAt), expiresIn(c, now)))
	if c.DecidedAt.IsZero() {
		field("decided", "-")
	} else {
		field("decided", fmt.Sprintf("%s by %s", stamp(c.DecidedAt), orDash(text(c.Reviewer))))
	}
	if c.Reason != "" {
		field("reason", text(c.Reason))
	}
	field("effects", "fingerprint "+c.Fingerprint)
	b.WriteString("\nSQL:\n")
	for _, line := range strings.Split(strings.TrimRight(text(c.SQL), "\n"), "\n") {
		b.WriteString("  " + line + "\n")
	}
	if c.Report != nil {
		b.WriteString("\nReport (the dry run):\n")
		b.WriteString(text(c.Report.Text()))
		if c.Mode == review.ModePrepared && !c.Decided() && len(c.Report.HeldLocks) > 0 {
			b.WriteString("\nWhile pending, the prepared transaction holds: " + lockText(c.Report.HeldLocks) + "\n")
		}
	}
	return b.String()
}

func lockText(ls []migrate.Lock) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = text(l.Relation) + " " + l.Mode
	}
	return strings.Join(parts, ", ")
}

func cmdCommit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return decide(ctx, "commit", "commit ID --reviewer NAME", false, args, stdout, stderr, reportRefusal,
		func(store *review.Store, d decision) (string, error) {
			c, err := store.Commit(ctx, d.id, d.reviewer)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("committed: change %s (ticket %s) by %s at %s", c.ID, text(c.Ticket), text(c.Reviewer), stamp(c.DecidedAt)), nil
		})
}

func cmdRollback(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return decide(ctx, "rollback", "rollback ID --reviewer NAME [--reason TEXT]", true, args, stdout, stderr, reportRefusal,
		func(store *review.Store, d decision) (string, error) {
			c, err := store.Rollback(ctx, d.id, d.reviewer, d.reason)
			if err != nil {
				return "", err
			}
			msg := fmt.Sprintf("rolled back: change %s (ticket %s) by %s at %s", c.ID, text(c.Ticket), text(c.Reviewer), stamp(c.DecidedAt))
			if c.Mode == review.ModePrepared {
				msg += "; its prepared transaction and locks are released"
			}
			return msg, nil
		})
}

// decide runs one reviewer decision (commit, rollback, merge, discard):
// parse its arguments, open the audited store, act, and print the outcome
// line, or let refuse explain why the store said no.
func decide(ctx context.Context, name, usage string, withReason bool, args []string, stdout, stderr io.Writer,
	refuse func(stdout, stderr io.Writer, cmd string, err error) error,
	act func(*review.Store, decision) (string, error)) error {
	d, err := parseDecision(name, usage, withReason, args, stderr)
	if err != nil {
		return err
	}
	store, done, err := openReview(ctx, stderr, true)
	if err != nil {
		return err
	}
	defer done()
	msg, err := act(store, d)
	if err != nil {
		return refuse(stdout, stderr, name, err)
	}
	fmt.Fprintln(stdout, msg)
	return nil
}

// parseNoArgs parses flags for a command that takes no positional
// arguments (pending, reap, branches).
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return errUsage
	}
	if len(pos) > 0 {
		fs.Usage()
		return errUsage
	}
	return nil
}

// decision is what a reviewer's decision command reads from its arguments:
// one ID, the reviewer's name (required) and, where offered, a reason.
type decision struct {
	id, reviewer, reason string
}

// parseDecision parses "ID --reviewer NAME [--reason TEXT]" for the commit,
// rollback, merge and discard commands.
func parseDecision(name, usage string, withReason bool, args []string, stderr io.Writer) (decision, error) {
	fs := newFlagSet(name, usage, stderr)
	reviewer := fs.String("reviewer", "", "your name, recorded with the decision (required)")
	var reason *string
	if withReason {
		reason = fs.String("reason", "", "why, for the agent and the audit log")
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return decision{}, errUsage
	}
	if len(pos) != 1 || strings.TrimSpace(*reviewer) == "" {
		fs.Usage()
		return decision{}, errUsage
	}
	d := decision{id: pos[0], reviewer: *reviewer}
	if reason != nil {
		d.reason = *reason
	}
	return d, nil
}

// reportRefusal prints why a commit or rollback did not happen and returns
// the error run turns into the exit status.
func reportRefusal(stdout, stderr io.Writer, cmd string, err error) error {
	var (
		drift *migrate.Drift
		np    *review.NotPendingError
	)
	switch {
	case errors.Is(err, review.ErrNotFound):
		fmt.Fprintf(stderr, "airlock %s: %v\n", cmd, err)
	case errors.As(err, &drift):
		fmt.Fprintf(stdout, "drifted: %s\n", text(err.Error()))
	case errors.As(err, &np):
		fmt.Fprintf(stdout, "refused: %s\n", text(err.Error()))
	default:
		fmt.Fprintf(stdout, "failed: %s\n", text(err.Error()))
	}
	return errReported
}

func cmdReap(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("reap", "reap", stderr)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	store, done, err := openReview(ctx, stderr, true)
	if err != nil {
		return err
	}
	defer done()
	res, err := store.Reap(ctx)
	fmt.Fprintf(stdout, "expired: %d\norphan prepared transactions rolled back: %d\ninterrupted actions finished: %d\nbranches expired and dropped: %d\n",
		res.Expired, res.Orphans, res.Finished, res.Branches)
	return err
}

// human renders a duration coarsely: 45s, 12m, 3h05m, 2d04h.
func human(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

func expiresIn(c *review.Change, now time.Time) string {
	if c.Expired(now) {
		return "expired " + human(now.Sub(c.ExpiresAt)) + " ago"
	}
	return "in " + human(c.ExpiresAt.Sub(now))
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// text makes agent-supplied text safe to print on a terminal: control
// characters (escape sequences) and bidirectional overrides are shown as
// \u escapes. Newlines and tabs stay.
func text(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029':
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cell is text for one table cell: on one line and clipped to n runes.
func cell(s string, n int) string {
	s = strings.Join(strings.Fields(text(s)), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
