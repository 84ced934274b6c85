package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// command is one row of the command table: everything the help shows about
// a command, next to the function that defines its flags. The command
// parses with that same function (see serveFlags, decisionFlags, …), and
// `airlock help NAME` renders its flags from it, so the help cannot list a
// flag the command does not take, or miss one it does.
type command struct {
	name    string // as typed: "serve", "scope plan"
	args    string // what follows the name on the usage line
	summary string // one line in the top-level usage
	about   string // the paragraph of the command's help
	// flags defines the command's flags on fs; nil when it has none.
	flags func(fs *flag.FlagSet)
	// pos names the positional arguments the command requires, in order.
	pos []string
	env []envVar
	// subs are the subcommands of a group (scope), listed in its help.
	subs []string
	run  func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// envVar is an environment variable a command reads (key, shown as name)
// with what it is for that command.
type envVar struct{ key, name, about string }

// Environment variables, as each kind of command reads them.
var (
	envServeURL = envVar{reviewEnv, reviewEnv + " (or the variable the scope's database.url_env names)",
		"the URL of the database and the login role airlock connects as; never read from a flag or the scope file"}
	envHTTPToken = envVar{httpTokenEnv, httpTokenEnv,
		"with --http: the bearer token clients must send; several, comma-separated, give each team or agent its own limits"}
	envAdminURL = envVar{scopeEnv, scopeEnv,
		"an administrator's database URL: creating the scope's roles needs CREATEROLE and ownership of its tables (or a superuser)"}
	envReviewURL = envVar{reviewEnv, reviewEnv,
		"the URL of the database whose changes you review (the one the agent's airlock serve uses), as a role that may update airlock's tables"}
	envAgentToken = envVar{agentTokenEnv, agentTokenEnv,
		"the agent's bearer token for the service (or --token-file)"}
	envReviewerTokens = envVar{reviewerTokensEnv, reviewerTokensEnv,
		"with --http: named reviewer tokens, NAME:TOKEN comma-separated (or --reviewer-tokens-file): serves the review page under /review/ for them"}
	envReviewPageURL = envVar{reviewURLEnv, reviewURLEnv,
		"with the review page: the reviewer login it decides as (or --review-database-url-file); never the service login"}
	envNotifySecret = envVar{notifySecretEnv, notifySecretEnv,
		"with --notify-webhook: the secret every event is signed with, HMAC-SHA256 (or --notify-secret-file)"}
	envReviewerToken = envVar{reviewerTokenEnv, reviewerTokenEnv,
		"with --server: your reviewer token for the service's review API; the decision is recorded under its name"}
	envDemoCache = envVar{"XDG_CACHE_HOME", "XDG_CACHE_HOME",
		"where --keep leaves the kept demo's state (airlock-demo in the user's cache directory)"}
)

// envSummary is each variable's entry in the top-level usage, by key.
var envSummary = map[string]struct{ name, about string }{
	reviewEnv: {reviewEnv + ", or the scope's database.url_env",
		"the database URL (never a flag): serve and doctor read the variable the scope's database.url_env names, " +
			reviewEnv + " by default; scope plan/apply (as an administrator) and the reviewer's commands read " + reviewEnv},
	httpTokenEnv:      {httpTokenEnv, "serve --http: the bearer token(s) clients must send, comma-separated (or --http-token-file)"},
	agentTokenEnv:     {agentTokenEnv, "connect: the agent's bearer token for the service (or --token-file)"},
	reviewerTokensEnv: {reviewerTokensEnv, "serve --http: named reviewer tokens (NAME:TOKEN,…) for the review page at /review/ (or --reviewer-tokens-file)"},
	reviewURLEnv:      {reviewURLEnv, "serve --http: the review page's own reviewer login (or --review-database-url-file)"},
	notifySecretEnv:   {notifySecretEnv, "serve --notify-webhook: the events' HMAC-SHA256 signing secret (or --notify-secret-file)"},
	reviewerTokenEnv:  {reviewerTokenEnv, "pending/show/commit/rollback/revert/merge/discard --server: your reviewer token"},
	"XDG_CACHE_HOME":  {"XDG_CACHE_HOME", "demo --keep: where the kept demo's state lives"},
}

// commands is the command table, in the order the top-level usage lists
// them. It is filled in init because its rows refer to the cmd functions,
// which look their rows up here.
var commands []*command

// Paragraphs shared by the reviewer's commands.
const (
	logJSONAbout = "Warnings and errors are printed as plain lines on stderr; --log-json prints every log line, " +
		"the audit events included, as JSON instead (the audit rows in airlock.audit_log are written either way)."
	noSchemaAbout = "The command creates nothing: on a database without airlock's schema it says so and exits 1."
)

func init() {
	reviewer := []envVar{envReviewURL, envReviewerToken}
	commands = []*command{
		{name: "serve", args: "--scope FILE [--local-writes] [--allow-owner] [--http ADDR [--database-url-file FILE] [--http-token-file FILE] [HTTP flags]]",
			summary: "serve the scope's tools over MCP: agent-side on stdio (read tools), or as the service on Streamable HTTP with --http; refuses to start on a failing doctor check",
			about: "Over stdio, serve the scope's read tools to one MCP client on stdin/stdout, with the agent's login " +
				"(--local-writes lists the write tools too, for a demo or a development database: an agent with a shell can then write). " +
				"With --http, be the service: serve every tool the scope allows to any client that sends a bearer token from " +
				httpTokenEnv + " or --http-token-file (HTTPS with --tls-cert and --tls-key; a Unix socket with --http unix:PATH; " +
				"MCP only at /mcp), with the service login's URL from --database-url-file. " +
				"With reviewer tokens (" + reviewerTokensEnv + " or --reviewer-tokens-file) it also serves the review page and its API " +
				"under /review/ on the same listener, deciding as a reviewer login of its own (--review-database-url-file); " +
				"with --notify-webhook it posts a signed event for every new pending change, approval, decision, expiry and drift. " +
				"Before serving it runs the doctor's startup checks for that principal and refuses to start when one fails. " +
				"Audit events are written to airlock.audit_log and, as JSON lines, to stderr.",
			flags: func(fs *flag.FlagSet) { serveFlags(fs) },
			env:   []envVar{envServeURL, envHTTPToken, envReviewerTokens, envReviewPageURL, envNotifySecret},
			run:   cmdServe},
		{name: "check", args: "--scope FILE",
			summary: "validate a scope file (no database needed)",
			about:   "Load and validate a scope file, and print its name and the tools it enables, or every problem with its JSON path.",
			flags:   func(fs *flag.FlagSet) { checkFlags(fs) },
			run: func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
				return cmdCheck(args, stdout, stderr)
			}},
		{name: "scope", args: "plan|apply --scope FILE [--grant-to LOGIN]... [--service LOGIN]... [--reviewer LOGIN]... [--harden]",
			summary: "compile the scope to NOLOGIN database roles",
			about: "Compile a scope to the database roles (NOLOGIN) and row-level security policies that enforce it " +
				"inside PostgreSQL. plan prints the SQL; apply runs it in one transaction and creates airlock's own schema.",
			subs:  []string{"scope plan", "scope apply"},
			flags: func(fs *flag.FlagSet) { scopeFlags(fs) },
			env:   []envVar{envAdminURL},
			run:   wrapRun(cmdScope)},
		{name: "scope plan", args: "--scope FILE [--grant-to LOGIN]... [--service LOGIN]... [--reviewer LOGIN]... [--harden]",
			summary: "print the SQL that makes the database's roles match the scope (changes nothing)",
			about: "Print the SQL statements that would make the database roles and policies match the scope. " +
				"Nothing is changed; run airlock scope apply to run them.",
			flags: func(fs *flag.FlagSet) { scopeFlags(fs) },
			env:   []envVar{envAdminURL},
			run:   scopeAction("plan")},
		{name: "scope apply", args: "--scope FILE [--grant-to LOGIN]... [--service LOGIN]... [--reviewer LOGIN]... [--harden]",
			summary: "run that SQL in one transaction, and create airlock's own schema",
			about: "Run the statements airlock scope plan prints, in one transaction, create airlock's own schema " +
				"(so that no principal ever needs CREATE), and give each named login its principal's rights: an agent login " +
				"(--grant-to) the read role only, a service login (--service) the read and write roles, a reviewer login " +
				"(--reviewer) the write role and the right to decide. It prints what it ran.",
			flags: func(fs *flag.FlagSet) { scopeFlags(fs) },
			env:   []envVar{envAdminURL},
			run:   scopeAction("apply")},
		{name: "doctor", args: "--scope FILE [--allow-owner]",
			summary: "check that the database login and the scope are safe together",
			about: "Connect as airlock serve would and check that the login role, the scope's roles and the tables are " +
				"safe together: one line per check (OK, WARN or FAIL) with a fix for each problem. Exits 1 when a check fails.",
			flags: func(fs *flag.FlagSet) { doctorFlags(fs) },
			env:   []envVar{envServeURL},
			run:   wrapRun(cmdDoctor)},
		{name: "pending", args: "[--json] [--server URL] [--log-json]",
			summary: "list the changes waiting for a reviewer",
			about: "List the changes waiting for a reviewer, oldest first, with their risk, the rows their dry run affected and " +
				"when they expire. Text the agent wrote is shown on one line with invisible characters escaped; --json " +
				"escapes them as \\u sequences. With --server, read them through the service's review API with a reviewer token. " + noSchemaAbout,
			flags: func(fs *flag.FlagSet) { pendingFlags(fs) },
			env:   reviewer,
			run:   wrapRun(cmdPending)},
		{name: "show", args: "ID [--server URL] [--log-json]",
			summary: "a change's SQL and dry-run report, or a branch's change log and schema diff",
			about: "Print everything needed to decide on a change: its ticket, summary, SQL and the dry run's report " +
				"(rows per statement, schema diff, locks). Given a branch's ID, print the branch's change log and its schema " +
				"diff against the source. Text the agent wrote is shown with every invisible or layout-changing character " +
				"escaped as \\u{XXXX}, its ticket and summary on one line each and its SQL with line numbers. " + noSchemaAbout,
			flags: func(fs *flag.FlagSet) { reviewLogFlag(fs); serverFlag(fs) },
			pos:   []string{"ID"},
			env:   reviewer,
			run:   wrapRun(cmdShow)},
		{name: "commit", args: "ID (--reviewer NAME | --server URL) [--expect HASH] [--log-json]",
			summary: "make a change permanent (replay: only if its effects are unchanged)",
			about: "Make a pending change permanent. Its stored statements are first checked again against the scope as " +
				"applied in the database now, and with --expect the change must still be exactly the one airlock show " +
				"printed that approval hash for. A replay change is re-run and committed only if its effects " +
				"(rows per statement, the rows each one touched, schema diff) are those of the dry run; otherwise it is marked drifted and nothing is " +
				"committed. A prepared change's transaction is committed. When the scope's write.approvals asks for more than one " +
				"reviewer, each commit records one approval and the last one needed commits. With --server, decide through the " +
				"service's review API under your reviewer token's name. Exits 1 when the change is refused. " + logJSONAbout,
			flags: func(fs *flag.FlagSet) { decisionFlags(fs, false) },
			pos:   []string{"ID"},
			env:   reviewer,
			run:   wrapRun(cmdCommit)},
		{name: "rollback", args: "ID (--reviewer NAME | --server URL) [--reason TEXT] [--log-json]",
			summary: "discard a pending change",
			about: "Discard a pending change; a prepared change's transaction is rolled back and its locks released. " +
				"The agent sees the reason with the change's status. " + logJSONAbout,
			flags: func(fs *flag.FlagSet) { decisionFlags(fs, true) },
			pos:   []string{"ID"},
			env:   reviewer,
			run:   wrapRun(cmdRollback)},
		{name: "revert", args: "ID (--reviewer NAME | --server URL) [--only-unchanged] [--log-json]",
			summary: "turn a committed change into a pending change that undoes it (write.undo)",
			about: "Plan the undo of a committed change from what its commit captured (write.undo): the rows it deleted put back, " +
				"the rows it updated restored, the rows it inserted removed; the tables and columns it dropped brought back from airlock_trash, " +
				"what it renamed renamed back, a column's type, default and NOT NULL as they were, and the tables, columns and indexes it added dropped; " +
				"and record that as a pending change, which a reviewer commits like any other. Rows changed since the commit refuse " +
				"the revert with their keys; --only-unchanged leaves them as they are and restores the rest. With --server, ask the " +
				"service's review API for it under your reviewer token's name. " + logJSONAbout,
			flags: func(fs *flag.FlagSet) { revertFlags(fs) },
			pos:   []string{"ID"},
			env:   reviewer,
			run:   wrapRun(cmdRevert)},
		{name: "reap", args: "[--log-json]",
			summary: "expire overdue changes and branches, clean up prepared transactions",
			about: "Expire the changes and branches nobody reviewed in time, roll back orphaned prepared transactions " +
				"and finish actions a crash interrupted, and purge the undo captures (and what airlock_trash keeps for them) past their retention; " +
				"airlock serve does this every 30 seconds. " + logJSONAbout,
			flags: func(fs *flag.FlagSet) { reviewLogFlag(fs) },
			env:   reviewer,
			run:   wrapRun(cmdReap)},
		{name: "branches", args: "[--log-json]",
			summary: `list live branch databases (write.mode "branch")`,
			about:   `List the live branches (write.mode "branch"): each agent session's own copy of the write tables. ` + noSchemaAbout,
			flags:   func(fs *flag.FlagSet) { reviewLogFlag(fs) },
			env:     reviewer,
			run:     wrapRun(cmdBranches)},
		{name: "merge", args: "BRANCH_ID (--reviewer NAME | --server URL) [--expect HASH] [--log-json]",
			summary: "replay a branch's change log on the source (only if its effects are unchanged), then drop the branch",
			about: "Replay a branch's change log on the source database in one transaction, committed only if every " +
				"change has the effects it had on the branch, then drop the branch. Each change is first checked again " +
				"against the scope as applied now; with --expect the log must still be the one airlock show printed that " +
				"approval hash for. " + logJSONAbout,
			flags: func(fs *flag.FlagSet) { decisionFlags(fs, false) },
			pos:   []string{"BRANCH_ID"},
			env:   reviewer,
			run:   wrapRun(cmdMerge)},
		{name: "discard", args: "BRANCH_ID (--reviewer NAME | --server URL) [--reason TEXT] [--log-json]",
			summary: "drop a branch and roll back its changes",
			about:   "Drop a branch's database and mark its changes rolled back; the source is untouched. " + logJSONAbout,
			flags:   func(fs *flag.FlagSet) { decisionFlags(fs, true) },
			pos:     []string{"BRANCH_ID"},
			env:     reviewer,
			run:     wrapRun(cmdDiscard)},
		{name: "connect", args: "URL [--token-file FILE]", pos: []string{"URL"},
			summary: "a stdio MCP server that passes everything to an airlock service (for clients that only start stdio servers)",
			about: "Serve MCP on stdin/stdout and pass every message to the airlock service at URL (https://host:port/mcp, " +
				"or unix:/path/to/socket), with the agent's bearer token. It holds that token and nothing else: no database " +
				"URL, no scope. Register it in Claude Desktop in place of airlock serve.",
			flags: func(fs *flag.FlagSet) { connectFlags(fs) },
			env:   []envVar{envAgentToken},
			run:   cmdConnect},
		{name: "demo", args: "[--keep | --stop]",
			summary: "a guided tour on a throwaway local PostgreSQL",
			about: "Start a throwaway PostgreSQL (it needs initdb, pg_ctl and postgres installed), then play an agent " +
				"and a reviewer through airlock: reads, refusals, a write held for review and its commit. " +
				"Everything is removed afterwards unless --keep.",
			flags: func(fs *flag.FlagSet) { demoFlags(fs) },
			env:   []envVar{envDemoCache},
			run:   wrapRun(cmdDemo)},
		{name: "version", args: "",
			summary: "print airlock's version, commit and Go version",
			about:   "Print airlock's version, the commit it was built from (\"modified\" when the tree had uncommitted changes) and the Go version that built it. airlock --version does the same.",
			run: func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
				return cmdVersion(args, stdout, stderr)
			}},
		{name: "help", args: "[COMMAND]",
			summary: "this text, or a command's help (as airlock COMMAND --help)",
			about:   "Print the list of commands, or the help of one: airlock help serve, airlock help scope apply.",
			run: func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
				return cmdHelp(args, stdout, stderr)
			}},
	}
}

func wrapRun(f func(ctx context.Context, args []string, stdout, stderr io.Writer) error) func(context.Context, []string, io.Reader, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
		return f(ctx, args, stdout, stderr)
	}
}

func scopeAction(action string) func(context.Context, []string, io.Reader, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
		return cmdScope(ctx, append([]string{action}, args...), stdout, stderr)
	}
}

// lookup finds the command named name ("scope plan" included).
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// mustLookup is lookup for the names the cmd functions pass: a typo there
// is a bug, not a user's mistake.
func mustLookup(name string) *command {
	c := lookup(name)
	if c == nil {
		panic("airlock: no command " + name + " in the command table")
	}
	return c
}

// errHelp means the command printed its help because it was asked to
// (exit status 0).
var errHelp = errors.New("help")

// flagSet returns an empty FlagSet for c that prints nothing itself: parse
// reports errors in the one usage-error format, and help goes to stdout.
func (c *command) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("airlock "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args, flags and positional arguments in any order, with fs
// (on which the command has defined its flags). --help or -h prints c's help,
// rendered from fs itself, on stdout and returns errHelp; a mistake prints
// a usage error and returns errUsage. It returns the positional arguments,
// exactly as many as c.pos names.
func (c *command) parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) ([]string, error) {
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.writeHelp(stdout, fs)
		return nil, errHelp
	}
	if err != nil {
		return nil, c.usageError(stderr, "%s", flagMessage(err))
	}
	if len(pos) > len(c.pos) {
		return nil, c.usageError(stderr, "unexpected argument %q", pos[len(c.pos)])
	}
	if len(pos) < len(c.pos) {
		return nil, c.usageError(stderr, "missing %s", c.pos[len(pos)])
	}
	return pos, nil
}

// flagNameRE matches a flag's name in package flag's messages ("flag
// provided but not defined: -force"), which spell it with one dash.
var flagNameRE = regexp.MustCompile(`(\s)-([A-Za-z][A-Za-z0-9-]*)`)

// flagMessage is package flag's message with the flags spelled the way the
// help spells them and users type them, --name.
func flagMessage(err error) string {
	return flagNameRE.ReplaceAllString(err.Error(), "$1--$2")
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

// usageError prints the one usage-error format, "airlock NAME: what is
// wrong" and then the usage line, and returns errUsage (exit status 2).
func (c *command) usageError(stderr io.Writer, format string, a ...any) error {
	fmt.Fprintf(stderr, "airlock %s: %s\nusage: %s\n", c.name, fmt.Sprintf(format, a...), c.usageLine())
	return errUsage
}

func (c *command) usageLine() string {
	if c.args == "" {
		return "airlock " + c.name
	}
	return "airlock " + c.name + " " + c.args
}

// writeHelp renders c's help: the usage line, the paragraph, the
// subcommands of a group, the flags defined on fs and the environment.
func (c *command) writeHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s\n\n%s", c.usageLine(), wrap(c.about, "", 80))
	if len(c.subs) > 0 {
		fmt.Fprintln(w, "\nCommands:")
		for _, name := range c.subs {
			sub := mustLookup(name)
			fmt.Fprintf(w, "  %s\n%s", sub.usageLine(), wrap(sub.summary, "        ", 80))
		}
	}
	if fs != nil && hasFlags(fs) {
		fmt.Fprintln(w, "\nFlags:")
		writeFlags(w, fs)
	}
	if len(c.env) > 0 {
		fmt.Fprintln(w, "\nEnvironment:")
		for _, e := range c.env {
			fmt.Fprintf(w, "  %s\n%s", e.name, wrap(e.about, "        ", 80))
		}
	}
}

// printHelp renders c's help with the flags its own definition makes, as
// `airlock help NAME` does.
func (c *command) printHelp(w io.Writer) {
	fs := c.flagSet()
	if c.flags != nil {
		c.flags(fs)
	}
	c.writeHelp(w, fs)
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// writeFlags lists fs's flags as they are typed, "--name VALUE", each with
// its description and its default when that is not the zero value.
func writeFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		switch f.DefValue {
		case "", "false", "0":
		default:
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "%s\n%s", line, wrap(usage, "        ", 80))
	})
}

// wrap fills text into lines of at most width columns, each starting with
// indent, and ends it with a newline.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
	return b.String()
}

// topUsage is `airlock help`: every command, serve's flags and the
// environment, all rendered from the command table.
func topUsage() string {
	var b strings.Builder
	b.WriteString("airlock: safe, scoped PostgreSQL tools for AI agents\n\nusage: airlock COMMAND [ARGS]\n\nCommands:\n")
	for _, c := range commands {
		if len(c.subs) > 0 {
			continue // its subcommands are listed one by one
		}
		fmt.Fprintf(&b, "  %s\n%s", c.usageLine(), wrap(c.summary, "        ", 80))
	}
	b.WriteString("\nserve's flags:\n")
	serve := mustLookup("serve")
	fs := serve.flagSet()
	serve.flags(fs)
	writeFlags(&b, fs)

	b.WriteString("\nEnvironment:\n")
	seen := map[string]bool{}
	for _, c := range commands {
		for _, e := range c.env {
			if seen[e.key] {
				continue
			}
			seen[e.key] = true
			sum, ok := envSummary[e.key]
			if !ok {
				sum.name, sum.about = e.name, e.about
			}
			fmt.Fprintf(&b, "  %s\n%s", sum.name, wrap(sum.about, "        ", 80))
		}
	}
	b.WriteString("\n" + wrap("airlock help COMMAND, or airlock COMMAND --help, shows a command's flags and environment.", "", 80))
	return b.String()
}

// cmdHelp is `airlock help [COMMAND]`.
func cmdHelp(args []string, stdout, stderr io.Writer) error {
	c := mustLookup("help")
	pos, err := parseInterspersed(c.flagSet(), args)
	if errors.Is(err, flag.ErrHelp) {
		c.printHelp(stdout)
		return errHelp
	}
	if err != nil {
		return c.usageError(stderr, "%s", flagMessage(err))
	}
	if len(pos) == 0 {
		fmt.Fprint(stdout, topUsage())
		return nil
	}
	name := strings.Join(pos, " ")
	target := lookup(name)
	if target == nil {
		return c.usageError(stderr, "unknown command %q", name)
	}
	target.printHelp(stdout)
	return nil
}

// commandNames lists the commands a user types first, for the unknown
// command error.
func commandNames() string {
	var names []string
	for _, c := range commands {
		if !strings.Contains(c.name, " ") {
			names = append(names, c.name)
		}
	}
	return strings.Join(names, ", ")
}
