package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/airlock-dev/airlock/internal/pgcluster"
)

// Seed is the SQL that fills the demo database: plain statements, every
// value deterministic.
//
//go:embed seed.sql
var Seed string

// ScopeJSON is the scope the scripted agent runs under.
//
//go:embed scope.json
var ScopeJSON []byte

// Database is the name of the demo database in the throwaway cluster.
const Database = "airlock_demo"

// ErrAlreadyKept is returned by Run with Options.Keep when a kept demo is
// still running: there is one state file, so there can be one kept demo.
var ErrAlreadyKept = errors.New("a kept demo is already running")

// ErrNotKept is returned by Stop when there is no kept demo to stop.
var ErrNotKept = errors.New("no kept demo is running")

// Options configures Run.
type Options struct {
	// Binary is the airlock executable: the tour runs it as the MCP server
	// (`serve`) and as the reviewer's CLI (`pending`, `show`, `commit`).
	// It must be an absolute path when Keep is set, since the printed
	// mcp.json names it.
	Binary string
	// Out receives the tour.
	Out io.Writer
	// Keep leaves the cluster running after the tour, writes its state to
	// StateDir, and prints how to connect a real agent to it.
	Keep bool
	// StateDir holds a kept demo's state file and scope. "" means
	// DefaultStateDir().
	StateDir string
	// BinDir is the directory holding initdb, pg_ctl and postgres. "" means
	// pgcluster.FindBinDir.
	BinDir string
}

// DefaultStateDir is where a kept demo's state lives:
// os.UserCacheDir()/airlock-demo, or airlock-demo in the temporary
// directory when there is no cache directory.
func DefaultStateDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "airlock-demo")
	}
	return filepath.Join(os.TempDir(), "airlock-demo")
}

// InstallCommand is the one command that installs the PostgreSQL server on
// this operating system.
func InstallCommand() string {
	return installCommand(runtime.GOOS)
}

func installCommand(goos string) string {
	switch goos {
	case "darwin":
		return "brew install postgresql@15"
	case "linux":
		return "sudo apt-get install -y postgresql"
	}
	return pgcluster.InstallHint
}

// Run plays the tour on opt.Out. Without PostgreSQL it returns an error
// wrapping pgcluster.ErrNotFound before printing anything. When ctx is
// cancelled (Ctrl-C) it stops, cleans up and returns ctx's error.
func Run(ctx context.Context, opt Options) error {
	if opt.Binary == "" || opt.Out == nil {
		return errors.New("demo: Options.Binary and Options.Out are required")
	}
	if opt.Keep && !filepath.IsAbs(opt.Binary) {
		return fmt.Errorf("demo: Options.Binary must be absolute with Keep, got %s", opt.Binary)
	}
	if opt.StateDir == "" {
		opt.StateDir = DefaultStateDir()
	}
	if opt.BinDir == "" {
		dir, err := pgcluster.FindBinDir()
		if err != nil {
			return err
		}
		opt.BinDir = dir
	}
	if opt.Keep {
		if err := clearStaleState(ctx, opt.StateDir); err != nil {
			return err
		}
	}
	r := &run{opt: opt, p: newPrinter(opt.Out)}
	err := r.play(ctx)
	if err != nil {
		r.p.abort(ctx.Err() != nil)
	}
	if cerr := r.cleanup(); err == nil {
		err = cerr
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("demo interrupted: %w", ctx.Err())
	}
	return err
}

// run is one tour: what it started, so that cleanup can undo it.
type run struct {
	opt     Options
	p       *printer
	cluster *pgcluster.Cluster
	keepDir string // the cluster directory Run made for a kept demo
	tmpDir  string // the scope file of an unkept demo
	agent   *agent
	url     string // the admin's connection
	// logins are the principals' connections (docs/architecture.md,
	// Principals).
	logins logins
	// token is the agent's bearer token for the service.
	token string
	scope string
	kept  bool // the hand-over succeeded: the cluster outlives Run
}

func (r *run) play(ctx context.Context) error {
	r.p.intro(r.opt.Keep)
	if err := r.startDatabase(ctx); err != nil {
		return err
	}
	if err := r.writeScope(); err != nil {
		return err
	}
	if err := r.setupRoles(ctx); err != nil {
		return err
	}
	start := time.Now()
	r.p.status("Starting the airlock service: airlock serve --scope %s --http 127.0.0.1:0 (its login's URL in a file only you can read)", r.scope)
	token, err := newSecret()
	if err != nil {
		return err
	}
	r.token = token
	a, endpoint, err := startAgent(ctx, r.opt.Binary, r.scope, filepath.Dir(r.scope), r.logins.service, token)
	if err != nil {
		return err
	}
	r.agent = a
	r.p.done(endpoint+"; the agent connects with a bearer token and nothing else", time.Since(start))
	t := &tour{p: r.p, agent: a, binary: r.opt.Binary, url: r.url, logins: r.logins}
	if err := t.play(ctx); err != nil {
		return err
	}
	if err := r.agent.close(); err != nil {
		return fmt.Errorf("stop the MCP server: %w", err)
	}
	r.agent = nil
	if err := t.auditTrail(ctx); err != nil {
		return err
	}
	r.p.outro()
	if r.opt.Keep {
		return r.handOver(ctx)
	}
	return nil
}

// cleanup stops and removes whatever play started and did not hand over.
// It runs on success, on error and after an interrupt, so it never uses the
// (maybe cancelled) run context.
func (r *run) cleanup() error {
	var errs []error
	if r.agent != nil {
		// A server killed by the interrupt reports that; it is gone either way.
		_ = r.agent.close()
	}
	if r.tmpDir != "" {
		if err := os.RemoveAll(r.tmpDir); err != nil {
			errs = append(errs, err)
		}
	}
	if r.kept {
		return errors.Join(errs...)
	}
	if r.cluster != nil {
		dir := r.cluster.Dir()
		if err := r.cluster.Stop(); err != nil {
			errs = append(errs, err)
		} else if !r.opt.Keep {
			r.p.finalNote("PostgreSQL stopped; %s removed.", dir)
		}
	}
	if r.keepDir != "" {
		if err := os.RemoveAll(r.keepDir); err != nil {
			errs = append(errs, err)
		}
	}
	if r.opt.Keep && r.scope != "" {
		// A failed kept demo leaves no state behind.
		removeState(r.opt.StateDir)
	}
	return errors.Join(errs...)
}
