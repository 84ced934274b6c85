// Command airlock is an MCP server that gives AI agents scoped, audited,
// human-reviewed access to PostgreSQL, and the reviewer's CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `airlock: safe, scoped PostgreSQL tools for AI agents

Usage:
  airlock serve --scope FILE [--allow-owner]
                                 serve MCP over stdio (database URL from the scope's url_env);
                                 refuses to start on a failing doctor check
  airlock check --scope FILE     validate a scope file
  airlock scope plan|apply --scope FILE [--grant-to ROLE]...
                                 compile the scope to NOLOGIN database roles (plan prints the SQL)
  airlock doctor --scope FILE [--allow-owner]
                                 check that the database login and the scope are safe together
  airlock pending [--json]       list the changes waiting for a reviewer
  airlock show ID                a pending change's SQL and dry-run report
  airlock commit ID --reviewer NAME
                                 make a change permanent (replay: only if its effects are unchanged)
  airlock rollback ID --reviewer NAME [--reason TEXT]
                                 discard a change
  airlock reap                   expire overdue changes and branches, clean up prepared transactions
  airlock branches               list live branch databases (write.mode "branch")
  airlock merge ID --reviewer NAME
                                 replay a branch's change log on the source (only if its effects are unchanged)
  airlock discard ID --reviewer NAME [--reason TEXT]
                                 drop a branch and roll back its changes
  airlock demo [--keep|--stop]   a guided tour on a throwaway local PostgreSQL
  airlock help                   this text

The database URL always comes from the environment (AIRLOCK_DATABASE_URL by
default), never from a flag or the scope file.
`

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdin, stdout, stderr)
	case "check":
		err = cmdCheck(args[1:], stdout, stderr)
	case "scope":
		err = cmdScope(ctx, args[1:], stdout, stderr)
	case "doctor":
		err = cmdDoctor(ctx, args[1:], stdout, stderr)
	case "pending":
		err = cmdPending(ctx, args[1:], stdout, stderr)
	case "show":
		err = cmdShow(ctx, args[1:], stdout, stderr)
	case "commit":
		err = cmdCommit(ctx, args[1:], stdout, stderr)
	case "rollback":
		err = cmdRollback(ctx, args[1:], stdout, stderr)
	case "reap":
		err = cmdReap(ctx, args[1:], stdout, stderr)
	case "branches":
		err = cmdBranches(ctx, args[1:], stdout, stderr)
	case "merge":
		err = cmdMerge(ctx, args[1:], stdout, stderr)
	case "discard":
		err = cmdDiscard(ctx, args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "airlock: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errReported):
		return 1
	}
	fmt.Fprintf(stderr, "airlock %s: %v\n", args[0], err)
	return 1
}

// errReported means the command already printed its errors.
var errReported = errors.New("reported")

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
