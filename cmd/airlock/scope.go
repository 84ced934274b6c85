package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/roles"
	"github.com/airlock-dev/airlock/scopes"
)

// scopeEnv names the variable holding the administrator's database URL that
// scope plan and apply use: creating roles and policies needs CREATEROLE
// and ownership of the tables (or a superuser).
const scopeEnv = "AIRLOCK_DATABASE_URL"

// stringsFlag collects a repeatable flag.
type stringsFlag []string

func (f *stringsFlag) String() string { return strings.Join(*f, ",") }

func (f *stringsFlag) Set(v string) error {
	*f = append(*f, v)
	return nil
}

// cmdScope is `airlock scope plan|apply --scope FILE [--grant-to ROLE]...`:
// compile a scope to database roles (layer 5). plan prints the SQL that
// apply would run; apply runs it in one transaction and prints what it ran.
func cmdScope(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "plan" && args[0] != "apply") {
		fmt.Fprintln(stderr, "airlock scope: want plan or apply: airlock scope plan|apply --scope FILE [--grant-to ROLE]...")
		return errUsage
	}
	action := args[0]
	fs := flag.NewFlagSet("scope "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	scopePath := fs.String("scope", "", "scope file to compile to roles")
	var grantTo stringsFlag
	fs.Var(&grantTo, "grant-to", "login role that may SET ROLE to the scope's roles (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if *scopePath == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "airlock scope %s: --scope FILE is required, and nothing else\n", action)
		return errUsage
	}
	scope, err := scopes.Load(*scopePath)
	if err != nil {
		fmt.Fprint(stderr, scopeErrorText(*scopePath, err))
		return errReported
	}
	pool, err := openPool(ctx, scopeEnv, 2, nil)
	if err != nil {
		return err
	}
	defer pool.Close()

	opt := roles.Options{GrantTo: grantTo}
	run := roles.Plan
	if action == "apply" {
		run = roles.Apply
	}
	stmts, err := run(ctx, pool, scope, opt)
	var fe *roles.FilterError
	if errors.As(err, &fe) {
		fmt.Fprintf(stderr, "%s: invalid scope:\n  $.read.tables[%q].row_filter: %s\n", *scopePath, fe.Table, fe.Reason)
		return errReported
	}
	if err != nil {
		return err
	}
	if action == "apply" {
		// airlock's own schema is created here, by the admin, so that a
		// least-privilege login role never needs CREATE on the database.
		if err := audit.EnsureSchema(ctx, pool, review.Schema); err != nil {
			return err
		}
		for _, login := range grantTo {
			if err := audit.GrantSchema(ctx, pool, login); err != nil {
				return err
			}
		}
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
