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

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: airlock demo [--keep | --stop]")
		fs.PrintDefaults()
	}
	keep := fs.Bool("keep", false, "leave the demo database running afterwards, and print how to connect a real agent to it")
	stop := fs.Bool("stop", false, "stop a demo left running by --keep")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 || (*keep && *stop) {
		fs.Usage()
		return errUsage
	}
	if *stop {
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
	err = demo.Run(ctx, demo.Options{Binary: binary, Out: stdout, Keep: *keep})
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
