package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/airlock-dev/airlock/scopes"
)

// checkFlags defines check's flags and returns where --scope goes.
func checkFlags(fs *flag.FlagSet) *string {
	return fs.String("scope", "", "the scope `FILE` (JSON) to validate")
}

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	c := mustLookup("check")
	fs := c.flagSet()
	scopePath := checkFlags(fs)
	if _, err := c.parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	if *scopePath == "" {
		return c.usageError(stderr, "--scope FILE is required")
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
