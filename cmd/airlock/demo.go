package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/airlock-dev/airlock/internal/demo"
	"github.com/airlock-dev/airlock/internal/pgcluster"
)

// demoOptions are demo's flags, as demoFlags defines them.
type demoOptions struct{ keep, stop bool }

func demoFlags(fs *flag.FlagSet) *demoOptions {
	o := &demoOptions{}
	fs.BoolVar(&o.keep, "keep", false, "leave the demo database running afterwards, and print how to connect a real agent to it")
	fs.BoolVar(&o.stop, "stop", false, "stop a demo left running by --keep")
	return o
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := mustLookup("demo")
	fs := c.flagSet()
	o := demoFlags(fs)
	if _, err := c.parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	if o.keep && o.stop {
		return c.usageError(stderr, "--keep and --stop do not go together")
	}
	if o.stop {
		err := demo.Stop(ctx, "", stdout)
		if errors.Is(err, demo.ErrNotKept) {
			fmt.Fprintln(stdout, "No kept demo is running.")
			return nil
		}
		return err
	}

	binary, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the airlock binary: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(binary); err == nil {
		binary = resolved
	}
	err = demo.Run(ctx, demo.Options{Binary: binary, Out: stdout, Keep: o.keep})
	switch {
	case errors.Is(err, pgcluster.ErrNotFound):
		fmt.Fprintf(stderr, "airlock demo needs the PostgreSQL server (initdb, pg_ctl, postgres), which is not installed. Install it with:\n\n  %s\n",
			demo.InstallCommand())
		return errReported
	case errors.Is(err, demo.ErrAlreadyKept):
		fmt.Fprintf(stderr, "airlock demo: %v\n", err)
		return errReported
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(stderr, "\nairlock demo: interrupted; everything it started is stopped and removed.")
		return errReported
	}
	return err
}
