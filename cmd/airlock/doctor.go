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

// doctorOptions are doctor's flags, as doctorFlags defines them.
type doctorOptions struct {
	scope      string
	allowOwner bool
}

func doctorFlags(fs *flag.FlagSet) *doctorOptions {
	o := &doctorOptions{}
	fs.StringVar(&o.scope, "scope", "", "the scope `FILE` (JSON) airlock serve would serve")
	fs.BoolVar(&o.allowOwner, "allow-owner", false, "accept a login role that owns the scope's tables (WARN instead of FAIL)")
	return o
}

func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := mustLookup("doctor")
	fs := c.flagSet()
	o := doctorFlags(fs)
	if _, err := c.parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	if o.scope == "" {
		return c.usageError(stderr, "--scope FILE is required")
	}
	scope, err := scopes.Load(o.scope)
	if err != nil {
		fmt.Fprint(stderr, scopeErrorText(o.scope, err))
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
	// The fixes print commands to paste: the path goes in quoted for a shell.
	checks := doctor.Run(ctx, pool, scope, doctor.Options{AllowOwner: o.allowOwner, ScopeFile: shellQuote(o.scope)})
	if err := doctor.Render(stdout, checks); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Fprintf(stdout, "\nscope %q: %s\n", scope.Name, doctor.Summary(checks))
	if doctor.Failed(checks) {
		return errReported
	}
	return nil
}
