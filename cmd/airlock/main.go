package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/airlock-dev/airlock/internal/safetext"
)

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
		// Asked for nothing: the usage is the answer, but it is not a
		// success, so it goes where errors go.
		fmt.Fprint(stderr, topUsage())
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	case "-version", "--version":
		name = "version"
	}
	c := lookup(name)
	// "scope plan" is typed as two words; only the group is a first word.
	if c == nil || strings.Contains(name, " ") {
		fmt.Fprintf(stderr, "airlock: unknown command %q\nusage: airlock COMMAND [ARGS]\ncommands: %s (airlock help describes them)\n",
			args[0], commandNames())
		return 2
	}
	err := c.run(ctx, args[1:], stdin, stdout, stderr)
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errReported):
		return 1
	}
	// An error may quote the agent's text (a name, a statement); it keeps
	// its own lines, escaped (see render.go).
	fmt.Fprintf(stderr, "airlock %s: %s\n", name, strings.Join(safetext.Block(err.Error()), "\n"))
	return 1
}

// errReported means the command already printed its errors.
var errReported = errors.New("reported")

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
