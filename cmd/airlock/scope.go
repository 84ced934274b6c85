package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/airlock-dev/airlock/roles"
	"github.com/airlock-dev/airlock/scopes"
)

// scopeEnv names the variable holding the administrator's database URL that
// scope plan and apply use: creating roles and policies needs CREATEROLE
// and ownership of the tables (or a superuser).
const scopeEnv = "AIRLOCK_DATABASE_URL"

// scopeOptions are scope plan's and apply's flags, as scopeFlags defines
// them.
type scopeOptions struct {
	scope                       string
	grantTo, service, reviewers stringList
	harden                      bool
}

func scopeFlags(fs *flag.FlagSet) *scopeOptions {
	o := &scopeOptions{}
	fs.StringVar(&o.scope, "scope", "", "the scope `FILE` (JSON) to compile to roles")
	fs.Var(&o.grantTo, "grant-to", "an agent `LOGIN`: the one an agent-side airlock serve (stdio) connects as; it gets the read role only; repeatable")
	fs.Var(&o.service, "service", "a service `LOGIN`: the one airlock serve --http connects as; it gets the read and write roles; repeatable")
	fs.Var(&o.reviewers, "reviewer", "a reviewer `LOGIN`: a human's own, for airlock commit, rollback, merge and discard; repeatable")
	fs.BoolVar(&o.harden, "harden", false, "also revoke from PUBLIC, database-wide, what any login could otherwise do past the scope (large objects, advisory locks, temporary tables, pg_notify, SECURITY DEFINER functions the scope does not list); see airlock doctor")
	return o
}

// cmdScope is `airlock scope plan|apply --scope FILE [--grant-to ROLE]...`:
// compile a scope to database roles (layer 5). plan prints the SQL that
// apply would run; apply runs it in one transaction and prints what it ran.
func cmdScope(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	group := mustLookup("scope")
	switch {
	case len(args) == 0:
		return group.usageError(stderr, "want plan or apply")
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		group.printHelp(stdout)
		return errHelp
	case args[0] != "plan" && args[0] != "apply":
		return group.usageError(stderr, "want plan or apply, not %q", args[0])
	}
	action := args[0]
	c := mustLookup("scope " + action)
	fs := c.flagSet()
	o := scopeFlags(fs)
	if _, err := c.parse(fs, args[1:], stdout, stderr); err != nil {
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
	pool, err := openPool(ctx, scopeEnv, 2, nil)
	if err != nil {
		return err
	}
	defer pool.Close()

	opt := roles.Options{GrantTo: o.grantTo, Service: o.service, Reviewers: o.reviewers, Harden: o.harden}
	run := roles.Plan
	if action == "apply" {
		run = roles.Apply
	}
	stmts, err := run(ctx, pool, scope, opt)
	var (
		fe *roles.FilterError
		pe *roles.ProblemsError
	)
	switch {
	case errors.As(err, &fe):
		fmt.Fprintf(stderr, "%s: the scope does not fit the database:\n  %s: %s\n", o.scope, fe.Path(), fe.Reason)
		return errReported
	case errors.As(err, &pe):
		fmt.Fprintf(stderr, "%s: the scope does not fit the database:\n", o.scope)
		for _, p := range pe.Problems {
			fmt.Fprintf(stderr, "  %s: %s\n", p.Path, p.Message)
			if p.Fix != "" {
				fmt.Fprintf(stderr, "    fix: %s\n", p.Fix)
			}
		}
		return errReported
	}
	if err != nil {
		return err
	}
	if len(stmts) == 0 {
		names := scope.ReadRole()
		if scope.Write != nil {
			names += " and " + scope.WriteRole()
		}
		fmt.Fprintf(stdout, "-- scope %q: %s already match the scope; nothing to do\n", scope.Name, names)
		return nil
	}
	verb := "would run"
	if action == "apply" {
		verb = "ran"
	}
	fmt.Fprintf(stdout, "-- scope %q: %s %d statements\n", scope.Name, verb, len(stmts))
	for _, s := range stmts {
		fmt.Fprintf(stdout, "%s;\n", s)
	}
	return nil
}
