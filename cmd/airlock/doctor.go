package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/airlock-dev/airlock/doctor"
	"github.com/airlock-dev/airlock/scopes"
)

func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scopePath := fs.String("scope", "", "scope file (JSON)")
	allowOwner := fs.Bool("allow-owner", false, "accept a login role that owns the scope's tables (WARN instead of FAIL)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *scopePath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "airlock doctor: usage: airlock doctor --scope FILE [--allow-owner]")
		return errUsage
	}
	scope, err := scopes.Load(*scopePath)
	if err != nil {
		fmt.Fprint(stderr, scopeErrorText(*scopePath, err))
		return errReported
	}
	// Connect exactly as serve does, so the checks see what serve would.
	pool, err := openPool(ctx, scope.URLEnv(), 2, nil)
	if err != nil {
		return err
	}
	defer pool.Close()

	// A check that hangs (a catalog lock, a stalled server) must not hang
	// the command: every check then reports the deadline as its failure.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	checks := doctor.Run(ctx, pool, scope, doctor.Options{AllowOwner: *allowOwner, ScopeFile: *scopePath})
	if err := doctor.Render(stdout, checks); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Fprintf(stdout, "\nscope %q: %s\n", scope.Name, doctor.Summary(checks))
	if doctor.Failed(checks) {
		return errReported
	}
	return nil
}
