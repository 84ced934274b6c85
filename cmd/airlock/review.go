package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/internal/safetext"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/reviewweb"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
	"github.com/airlock-dev/airlock/tools"
)

// reviewEnv names the variable holding the reviewer's database URL.
const reviewEnv = "AIRLOCK_DATABASE_URL"

// openReview connects to the reviewer's database, checks that airlock's
// schema is there and returns a store; close releases everything (flushing
// the audit log first). Only commands that act need the audit log. name is
// the command, for the lines it logs; logJSON is --log-json.
//
// It creates nothing: the schema comes with scope apply or serve, and a
// database without it holds no change to review. A reviewer pointing at the
// wrong database must hear so, not get an empty airlock schema made there.
func openReview(ctx context.Context, name string, stderr io.Writer, audited, logJSON bool) (store *review.Store, close func(), err error) {
	pool, err := openPool(ctx, reviewEnv, 4, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := requireSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, err
	}
	storeLog, auditLog := reviewLoggers(name, stderr, logJSON)
	var log *audit.Log
	if audited {
		log = audit.NewLog(pool, auditLog)
	}
	store = review.NewStore(pool, log)
	store.SetLogger(storeLog)
	// Every commit and merge re-checks the stored statements against the
	// scope as applied now (docs/architecture.md, Approvals).
	store.SetChecker(func(ctx context.Context, scope *scopes.Scope, sql string, catalog bool) (*sqlguard.MigrationPlan, error) {
		return tools.CheckStored(ctx, pool, scope, sql, catalog)
	})
	return store, func() {
		if log != nil {
			log.Close()
		}
		pool.Close()
	}, nil
}

// reviewTables are the tables of airlock's schema the reviewer's commands
// use (audit.Schema and review.Schema make them).
var reviewTables = []string{"audit_log", "mask_keys", "changes", "branches"}

// errNoSchema is what the reviewer's commands say on a database airlock
// has never been set up in.
var errNoSchema = errors.New("this database has no airlock schema, so it holds no changes or branches: " +
	"nothing was set up here with airlock scope apply or airlock serve (is " + reviewEnv + " the database the agent's airlock serve uses?)")

// requireSchema checks, in the catalog (readable by every role, whatever
// its privileges on the schema), that airlock's tables exist.
func requireSchema(ctx context.Context, pool *pgxpool.Pool) error {
	rows, _ := pool.Query(ctx, `SELECT c.relname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'airlock' AND c.relkind IN ('r', 'p') AND c.relname = ANY($1)`, reviewTables)
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("look for airlock's schema: %w", err)
	}
	if len(found) == 0 {
		return errNoSchema
	}
	var missing []string
	for _, t := range reviewTables {
		if !slices.Contains(found, t) {
			missing = append(missing, "airlock."+t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("airlock's schema in this database lacks %s: "+
			"airlock scope apply, or airlock serve, of this version completes it", strings.Join(missing, ", "))
	}
	return nil
}

// reviewLogFlag defines --log-json, which every reviewer command takes.
func reviewLogFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("log-json", false, "print every log line on stderr as JSON, the audit events included "+
		"(by default only warnings and errors, as plain lines)")
}

// pendingJSON is one element of `airlock pending --json`. Its strings are
// the stored ones, encoded by safetext.JSON: decoded, they are exact; read
// raw, nothing in them is invisible. RowsAffected is the total of the dry
// run's statements.
type pendingJSON struct {
	ID               string    `json:"id"`
	Ticket           string    `json:"ticket"`
	Summary          string    `json:"summary"`
	Scope            string    `json:"scope"`
	Session          string    `json:"session"`
	Mode             string    `json:"mode"`
	Risk             string    `json:"risk"`
	RowsAffected     int64     `json:"rows_affected"`
	CreatedAt        time.Time `json:"created_at"`
	ExpiresAt        time.Time `json:"expires_at"`
	AgeSeconds       int64     `json:"age_seconds"`
	ExpiresInSeconds int64     `json:"expires_in_seconds"`
	SQL              string    `json:"sql"`
}

// pendingOptions are pending's flags, as pendingFlags defines them.
type pendingOptions struct {
	json, logJSON *bool
	server        *string
}

func pendingFlags(fs *flag.FlagSet) *pendingOptions {
	return &pendingOptions{
		json:    fs.Bool("json", false, "print a JSON array (with each change's SQL)"),
		logJSON: reviewLogFlag(fs),
		server:  serverFlag(fs),
	}
}

func cmdPending(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := mustLookup("pending")
	fs := c.flagSet()
	o := pendingFlags(fs)
	if _, err := c.parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	var changes []*review.Change
	if *o.server != "" {
		var err error
		if changes, err = remotePending(ctx, *o.server); err != nil {
			return reportRemote(stdout, stderr, c.name, err)
		}
	} else {
		store, done, err := openReview(ctx, c.name, stderr, false, *o.logJSON)
		if err != nil {
			return err
		}
		defer done()
		if changes, err = store.Pending(ctx); err != nil {
			return err
		}
	}
	now := time.Now()
	if *o.json {
		out := make([]pendingJSON, len(changes))
		for i, c := range changes {
			rows, _ := rowsAffected(c)
			out[i] = pendingJSON{
				ID: c.ID, Ticket: c.Ticket, Summary: c.Summary, Scope: c.Scope, Session: c.Session,
				Mode: string(c.Mode), Risk: c.Risk(), CreatedAt: c.CreatedAt.UTC(), ExpiresAt: c.ExpiresAt.UTC(),
				RowsAffected:     rows,
				AgeSeconds:       int64(now.Sub(c.CreatedAt).Seconds()),
				ExpiresInSeconds: int64(c.ExpiresAt.Sub(now).Seconds()),
				SQL:              c.SQL,
			}
		}
		b, err := safetext.JSON(out, "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no pending changes")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAGE\tTICKET\tSCOPE\tMODE\tRISK\tROWS\tSUMMARY\tEXPIRES IN")
	for _, c := range changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(c.ID, 36), human(now.Sub(c.CreatedAt)),
			cell(c.Ticket, 24), cell(c.Scope, 24), cell(string(c.Mode), 8), cell(c.Risk(), 8), rowsText(c), cell(c.Summary, 48), expiresIn(c, now))
	}
	return tw.Flush()
}

func cmdShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := mustLookup("show")
	fs := cmd.flagSet()
	logJSON := reviewLogFlag(fs)
	server := serverFlag(fs)
	pos, err := cmd.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	if *server != "" {
		out, err := remoteShow(ctx, *server, pos[0], time.Now())
		if err != nil {
			return reportRemote(stdout, stderr, cmd.name, err)
		}
		fmt.Fprint(stdout, out)
		return nil
	}
	store, done, err := openReview(ctx, cmd.name, stderr, false, *logJSON)
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
		fmt.Fprintf(stderr, "airlock show: %s\n", safetext.Line(err.Error()))
		return errReported
	}
	if err != nil {
		return err
	}
	recs, required, err := approvalsOf(ctx, store, c)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, showText(c, time.Now())+approvalsText(recs, required)+revertText(ctx, store, c))
	return nil
}

// approvalsOf reads who approved c and how many must (write.approvals).
func approvalsOf(ctx context.Context, store *review.Store, c *review.Change) ([]review.ApprovalRecord, int, error) {
	required, err := store.RequiredApprovals(ctx, c.Scope)
	var notApplied *review.ScopeNotAppliedError
	if errors.As(err, &notApplied) {
		return nil, 1, nil
	}
	if err != nil {
		return nil, 0, err
	}
	all, err := store.Approvals(ctx, c.ID)
	if err != nil {
		return nil, 0, err
	}
	hash := c.ApprovalHash()
	var recs []review.ApprovalRecord
	for _, a := range all {
		if a.Approval == hash {
			recs = append(recs, a)
		}
	}
	return recs, required, nil
}

// approvalsText is show's closing line on the two-person rule: nothing
// when one approval commits.
func approvalsText(recs []review.ApprovalRecord, required int) string {
	if required <= 1 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nApprovals: %d of %d (write.approvals: a commit needs %d distinct reviewers)\n", len(recs), required, required)
	for _, a := range recs {
		fmt.Fprintf(&b, "  %s at %s (login %s)\n", safetext.Line(a.Reviewer), stamp(a.ApprovedAt), safetext.Line(a.Login))
	}
	return b.String()
}

// showText renders everything a reviewer needs to decide on c. Every
// string that came from the agent or the database goes through safetext
// (see render.go): the fields on one line each, the SQL numbered, so
// nothing in them can hide, drive the terminal or pass for a header.
func showText(c *review.Change, now time.Time) string {
	var b strings.Builder
	field := func(name, value string) { fmt.Fprintf(&b, "%-10s %s\n", name+":", value) }
	fmt.Fprintf(&b, "change %s\n", safetext.Line(c.ID))
	field("ticket", safetext.Line(c.Ticket))
	field("summary", safetext.Line(c.Summary))
	field("scope", safetext.Line(c.Scope))
	field("session", orDash(safetext.Line(c.Session)))
	mode := safetext.Line(string(c.Mode))
	if c.Mode == review.ModePrepared {
		mode += " (transaction " + safetext.Line(c.GID) + ")"
	}
	if c.Mode == review.ModeBranch {
		id := safetext.Line(c.BranchID)
		mode += " (branch " + id + "; review it with airlock show/merge/discard " + id + ")"
	}
	field("mode", mode)
	field("status", safetext.Line(string(c.Status)))
	field("rows", rowsText(c)+" (affected in the dry run)")
	field("created", fmt.Sprintf("%s (%s ago)", stamp(c.CreatedAt), human(now.Sub(c.CreatedAt))))
	field("expires", fmt.Sprintf("%s (%s)", stamp(c.ExpiresAt), expiresIn(c, now)))
	if c.DecidedAt.IsZero() {
		field("decided", "-")
	} else {
		field("decided", fmt.Sprintf("%s by %s", stamp(c.DecidedAt), orDash(safetext.Line(c.Reviewer))))
	}
	if c.Reason != "" {
		field("reason", safetext.Line(c.Reason))
	}
	field("effects", "fingerprint "+safetext.Line(c.Fingerprint))
	approval := c.ApprovalHash()
	field("approval", approval)
	b.WriteString("           (covers the ticket, summary, SQL, the statements that run, the mode, the effects\n" +
		"           and scope " + safetext.Line(c.Scope) + " version " + orDash(safetext.Line(c.ScopeVersion)) + "; commit it with\n" +
		"           airlock commit " + safetext.Line(c.ID) + " --reviewer NAME --expect " + approval[:16] + ")\n")
	b.WriteString("A commit first checks the stored statements again against the scope as applied now.\n")
	if c.Mode == review.ModeReplay {
		b.WriteString("The replay commits only if each statement affects the same number of rows, the same rows\n" +
			"(compared as the report says per statement) and the same schema changes as the dry run.\n")
	}
	b.WriteString("\nSQL:\n")
	writeSQL(&b, c.SQL, "  ")
	if c.Report != nil {
		b.WriteString("\nReport (the dry run):\n")
		b.WriteString(reportText(c.Report))
		if c.Mode == review.ModePrepared && !c.Decided() && len(c.Report.HeldLocks) > 0 {
			b.WriteString("\nWhile pending, the prepared transaction holds: " + lockText(c.Report.HeldLocks) + "\n")
		}
	}
	return b.String()
}

func lockText(ls []migrate.Lock) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = safetext.Line(l.Relation) + " " + safetext.Line(l.Mode)
	}
	return strings.Join(parts, ", ")
}

func cmdCommit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return decide(ctx, "commit", false, args, stdout, stderr, reportRefusal, remoteCommit,
		func(store *review.Store, d decision) (string, error) {
			c, st, err := store.Approve(ctx, d.id, d.reviewer, review.Approval{Expect: d.expect})
			if err != nil {
				return "", err
			}
			if !st.Done {
				return waitingText("change", c.ID, d.reviewer, st) + " (ticket " + safetext.Line(c.Ticket) + ")", nil
			}
			return fmt.Sprintf("committed: change %s (ticket %s) by %s at %s%s", safetext.Line(c.ID), safetext.Line(c.Ticket), safetext.Line(c.Reviewer), stamp(c.DecidedAt), approvedBy(st)), nil
		})
}

// waitingText says that an approval was recorded and how many more the
// two-person rule (write.approvals) needs.
func waitingText(kind, id, reviewer string, st *review.Approved) string {
	names := make([]string, len(st.Approvals))
	for i, a := range st.Approvals {
		names[i] = safetext.Line(a.Reviewer)
	}
	return fmt.Sprintf("approved: %s %s by %s, approval %d of %d (%s); it waits for %d more reviewer(s) and nothing is committed yet",
		kind, safetext.Line(id), safetext.Line(reviewer), len(st.Approvals), st.Required, strings.Join(names, ", "), st.Waiting())
}

// approvedBy lists the reviewers of a change that needed more than one.
func approvedBy(st *review.Approved) string {
	if st == nil || st.Required <= 1 {
		return ""
	}
	names := make([]string, len(st.Approvals))
	for i, a := range st.Approvals {
		names[i] = safetext.Line(a.Reviewer)
	}
	return " (approved by " + strings.Join(names, ", ") + ")"
}

func cmdRollback(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return decide(ctx, "rollback", true, args, stdout, stderr, reportRefusal, remoteRollback,
		func(store *review.Store, d decision) (string, error) {
			c, err := store.Rollback(ctx, d.id, d.reviewer, d.reason)
			if err != nil {
				return "", err
			}
			msg := fmt.Sprintf("rolled back: change %s (ticket %s) by %s at %s", safetext.Line(c.ID), safetext.Line(c.Ticket), safetext.Line(c.Reviewer), stamp(c.DecidedAt))
			if c.Mode == review.ModePrepared {
				msg += "; its prepared transaction and locks are released"
			}
			return msg, nil
		})
}

// decide runs one reviewer decision (commit, rollback, merge, discard):
// parse its arguments, open the audited store, act, and print the outcome
// line, or let refuse explain why the store said no.
func decide(ctx context.Context, name string, withReason bool, args []string, stdout, stderr io.Writer,
	refuse func(stdout, stderr io.Writer, cmd string, err error) error,
	remote func(context.Context, *reviewweb.Client, decision) (string, error),
	act func(*review.Store, decision) (string, error)) error {
	d, err := parseDecision(mustLookup(name), withReason, args, stdout, stderr)
	if err != nil {
		return err
	}
	if d.server != "" {
		cl, err := reviewClient(d.server)
		if err != nil {
			fmt.Fprintf(stderr, "airlock %s: %v\n", name, err)
			return errReported
		}
		msg, err := remote(ctx, cl, d)
		if err != nil {
			return reportRemote(stdout, stderr, name, err)
		}
		fmt.Fprintln(stdout, msg)
		return nil
	}
	store, done, err := openReview(ctx, name, stderr, true, *d.logJSON)
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
	msg, err := act(store, d)
	if err != nil {
		return refuse(stdout, stderr, name, err)
	}
	fmt.Fprintln(stdout, msg)
	return nil
}

// decision is what a reviewer's decision command reads from its arguments:
// one ID, the reviewer's name (required) and, where offered, a reason.
type decision struct {
	id, reviewer, reason, expect, server string
	logJSON                              *bool
}

// decisionFlags defines the flags of commit and merge, and with withReason
// those of rollback and discard.
func decisionFlags(fs *flag.FlagSet, withReason bool) *decision {
	d := &decision{}
	fs.StringVar(&d.reviewer, "reviewer", "", "your `NAME`, recorded with the decision (required)")
	if withReason {
		fs.StringVar(&d.reason, "reason", "", "why, in `TEXT` for the agent and the audit log")
	} else {
		fs.StringVar(&d.expect, "expect", "", "the approval `HASH` airlock show printed: refuse unless the change is still exactly that")
	}
	d.logJSON = reviewLogFlag(fs)
	fs.StringVar(&d.server, "server", "", "decide through the review API of the service at `URL` with your reviewer token ("+reviewerTokenEnv+"), under the token's name, instead of with a database login")
	return d
}

// parseDecision parses "ID --reviewer NAME [--reason TEXT]" for the commit,
// rollback, merge and discard commands.
func parseDecision(c *command, withReason bool, args []string, stdout, stderr io.Writer) (decision, error) {
	fs := c.flagSet()
	d := decisionFlags(fs, withReason)
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return decision{}, err
	}
	if d.server != "" && d.reviewer != "" {
		return decision{}, c.usageError(stderr, "--reviewer is not taken with --server: the decision is recorded under your reviewer token's name")
	}
	if d.server == "" && strings.TrimSpace(d.reviewer) == "" {
		return decision{}, c.usageError(stderr, "--reviewer NAME is required: the decision is recorded with it")
	}
	d.id = pos[0]
	return *d, nil
}

// reportRefusal prints why a commit or rollback did not happen and returns
// the error run turns into the exit status.
func reportRefusal(stdout, stderr io.Writer, cmd string, err error) error {
	var (
		drift    *migrate.Drift
		np       *review.NotPendingError
		mismatch *review.ApprovalMismatchError
		recheck  *review.RecheckError
		already  *review.AlreadyApprovedError
	)
	switch {
	case errors.Is(err, review.ErrNotFound):
		fmt.Fprintf(stderr, "airlock %s: %s\n", cmd, safetext.Line(err.Error()))
	case errors.As(err, &drift):
		fmt.Fprintf(stdout, "drifted: %s\n", safetext.Line(err.Error()))
	case errors.As(err, &np), errors.As(err, &mismatch), errors.As(err, &recheck), errors.As(err, &already):
		fmt.Fprintf(stdout, "refused: %s\n", safetext.Line(err.Error()))
	default:
		fmt.Fprintf(stdout, "failed: %s\n", safetext.Line(err.Error()))
	}
	return errReported
}

func cmdReap(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := mustLookup("reap")
	fs := c.flagSet()
	logJSON := reviewLogFlag(fs)
	if _, err := c.parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	store, done, err := openReview(ctx, c.name, stderr, true, *logJSON)
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
