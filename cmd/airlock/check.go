package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/airlock-dev/airlock/scopes"
)

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scopePath := fs.String("scope", "", "scope file to validate")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *scopePath == "" {
		fmt.Fprintln(stderr, "airlock check: --scope FILE is required")
		return errUsage
	}
	scope, err := scopes.Load(*scopePath)
	if err != nil {
		fmt.Fprint(stderr, scopeErrorText(*scopePath, err))
		return errReported
	}
	fmt.Fprintf(stdout, "%s: ok (scope %q, tools: %v)\n", *scopePath, scope.Name, scope.EnabledTools())
	return nil
}

// scopeErrorText prints one problem per line with its JSON path.
func scopeErrorText(path string, err error) string {
	return fmt.Sprintf("%s: invalid scope:\n%s\n", path, scopes.FormatProblems(err))
}
