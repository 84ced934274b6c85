package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/internal/pgcluster"
)

const (
	stateFile = "state.json"
	scopeFile = "scope.json"
	// keptDirPrefix starts the name of a kept cluster's directory. Stop
	// removes only a directory named so, whatever the state file says.
	keptDirPrefix = "airlock-demo-"
)

// startDatabase starts the cluster, creates the demo database and loads
// the seed.
func (r *run) startDatabase(ctx context.Context) error {
	start := time.Now()
	// Passwords are checked, as on a real server: with trust
	// authentication any login could be any other, and the principals
	// would separate nothing.
	password, err := newSecret()
	if err != nil {
		return err
	}
	opt := pgcluster.Options{BinDir: r.opt.BinDir, MaxPreparedTransactions: pgcluster.DefaultMaxPreparedTransactions,
		SuperuserPassword: password}
	if r.opt.Keep {
		// Run makes the directory, rather than pgcluster, to give it the
		// name Stop checks for. It sits in the temporary directory: when
		// running as root, the postgres OS user must be able to reach it,
		// and the socket path must stay short.
		dir, err := os.MkdirTemp(shortTempDir(), keptDirPrefix)
		if err != nil {
			return fmt.Errorf("create cluster directory: %w", err)
		}
		r.keepDir, opt.Dir = dir, dir
	}
	if r.opt.Keep {
		r.p.status("Starting a kept (not throwaway) PostgreSQL")
	} else {
		r.p.status("Starting a throwaway PostgreSQL")
	}
	c, err := pgcluster.Start(ctx, opt)
	if err != nil {
		return err
	}
	r.cluster = c
	r.p.done(fmt.Sprintf("port %d, in %s", c.Port(), c.Dir()), time.Since(start))

	start = time.Now()
	r.p.status("Loading a sample SaaS database, %s", Database)
	if err := createDatabase(ctx, c.URL("postgres")); err != nil {
		return err
	}
	r.url = c.URL(Database)
	counts, err := loadSeed(ctx, r.url)
	if err != nil {
		return err
	}
	r.p.done(counts, time.Since(start))
	return nil
}

func shortTempDir() string {
	if dir := os.TempDir(); len(dir) <= 40 {
		return dir
	}
	return "/tmp"
}

func createDatabase(ctx context.Context, adminURL string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to the demo cluster: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+Database); err != nil {
		return fmt.Errorf("create database %s: %w", Database, err)
	}
	return nil
}

// loadSeed runs the embedded seed and returns a one-line count of what it
// loaded.
func loadSeed(ctx context.Context, url string) (string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", Database, err)
	}
	defer conn.Close(context.Background())
	// The seed is our own multi-statement script, not agent SQL: the simple
	// protocol is what runs it in one round trip.
	if _, err := conn.Exec(ctx, Seed); err != nil {
		return "", fmt.Errorf("load the demo seed: %w", err)
	}
	var customers, orders, invoices int
	err = conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders),
		(SELECT count(*) FROM invoices)`).Scan(&customers, &orders, &invoices)
	if err != nil {
		return "", fmt.Errorf("count the demo rows: %w", err)
	}
	return fmt.Sprintf("%s customers, %s orders, %s invoices",
		thousands(customers), thousands(orders), thousands(invoices)), nil
}

// writeScope writes the embedded scope where serve can read it: in the
// state directory for a kept demo (the printed mcp.json points there), in a
// temporary directory otherwise.
func (r *run) writeScope() error {
	dir := r.opt.StateDir
	if r.opt.Keep {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create state directory: %w", err)
		}
	} else {
		tmp, err := os.MkdirTemp("", "airlock-demo-scope-")
		if err != nil {
			return fmt.Errorf("create scope directory: %w", err)
		}
		r.tmpDir, dir = tmp, tmp
	}
	r.scope = filepath.Join(dir, scopeFile)
	if err := os.WriteFile(r.scope, ScopeJSON, 0o600); err != nil {
		return fmt.Errorf("write demo scope: %w", err)
	}
	return nil
}

// state is what a kept demo leaves in its state file for Stop.
type state struct {
	Dir         string    `json:"dir"`
	BinDir      string    `json:"bin_dir"`
	Port        int       `json:"port"`
	URL         string    `json:"url"`
	AgentURL    string    `json:"agent_url"`
	ReviewerURL string    `json:"reviewer_url"`
	Scope       string    `json:"scope"`
	Binary      string    `json:"binary"`
	StartedAt   time.Time `json:"started_at"`
}

// handOver detaches the tour's cluster from this process, so that it keeps
// running after the demo exits, and records it for Stop. If the hand-over
// fails, cleanup stops the cluster as it would an unkept one.
func (r *run) handOver(ctx context.Context) error {
	// An interrupt during the tour asks for everything to be removed.
	if err := ctx.Err(); err != nil {
		return err
	}
	c := r.cluster
	if err := c.Detach(); err != nil {
		return fmt.Errorf("keep the demo cluster: %w", err)
	}
	binary, err := lastingBinary(r.opt.Binary, r.opt.StateDir)
	if err != nil {
		return err
	}
	st := state{Dir: c.Dir(), BinDir: r.opt.BinDir, Port: c.Port(), URL: r.url, AgentURL: r.logins.agent,
		ReviewerURL: r.logins.reviewer, Scope: r.scope, Binary: binary, StartedAt: time.Now().UTC()}
	if err := writeState(r.opt.StateDir, st); err != nil {
		return err
	}
	r.kept = true
	r.p.kept(st, r.opt.StateDir)
	return nil
}

// keptBinary is the name of the copy of a temporary airlock binary that a
// kept demo's printed configuration points at.
const keptBinary = "airlock"

// lastingBinary returns a path to the airlock binary that outlives this
// process. `go run` builds into a temporary directory that Go removes when
// the command exits, so a configuration pointing there would break at
// once: such a binary is copied into the state directory.
func lastingBinary(binary, stateDir string) (string, error) {
	if !temporaryPath(binary) {
		return binary, nil
	}
	in, err := os.Open(binary)
	if err != nil {
		return "", fmt.Errorf("keep a copy of the airlock binary: %w", err)
	}
	defer in.Close()
	dst := filepath.Join(stateDir, keptBinary)
	out, err := os.OpenFile(dst+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return "", fmt.Errorf("keep a copy of the airlock binary: %w", err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(dst+".tmp", dst)
	}
	if err != nil {
		os.Remove(dst + ".tmp")
		return "", fmt.Errorf("keep a copy of the airlock binary: %w", err)
	}
	return dst, nil
}

// temporaryPath reports whether path is where `go run` puts the binary it
// builds (a go-build directory under the temporary directory), which Go
// deletes when the command exits.
func temporaryPath(path string) bool {
	return strings.Contains(path, string(filepath.Separator)+"go-build")
}

func writeState(dir string, st state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("write demo state: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write demo state: %w", err)
	}
	return nil
}

func readState(dir string) (state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, ErrNotKept
	}
	if err != nil {
		return st, fmt.Errorf("read demo state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read demo state %s: %w", filepath.Join(dir, stateFile), err)
	}
	return st, nil
}

// removeState removes a kept demo's files from the state directory, and
// the directory once it is empty.
func removeState(dir string) {
	os.Remove(filepath.Join(dir, stateFile))
	os.Remove(filepath.Join(dir, scopeFile))
	os.Remove(filepath.Join(dir, keptBinary))
	os.Remove(filepath.Join(dir, "service-url"))
	os.Remove(filepath.Join(dir, "agent-token"))
	os.Remove(dir)
}

// clearStaleState refuses to start a second kept demo while one runs, and
// removes the state of one that is gone (after a reboot, say).
func clearStaleState(ctx context.Context, stateDir string) error {
	st, err := readState(stateDir)
	if errors.Is(err, ErrNotKept) {
		return nil
	}
	if err != nil {
		return err
	}
	c, err := attachKept(stateDir, st)
	if err != nil {
		return err
	}
	if c != nil && c.Running(ctx) {
		return fmt.Errorf("%w (port %d, data in %s); stop it first with `airlock demo --stop`", ErrAlreadyKept, st.Port, st.Dir)
	}
	return stopKept(ctx, stateDir, st, c, io.Discard)
}

// Stop stops the kept demo whose state is in stateDir ("" means
// DefaultStateDir()), removes its cluster directory and its state, and says
// so on out. It returns ErrNotKept when there is none.
func Stop(ctx context.Context, stateDir string, out io.Writer) error {
	if stateDir == "" {
		stateDir = DefaultStateDir()
	}
	st, err := readState(stateDir)
	if err != nil {
		return err
	}
	c, err := attachKept(stateDir, st)
	if err != nil {
		return err
	}
	return stopKept(ctx, stateDir, st, c, out)
}

// attachKept returns the cluster that st records, or nil when its data
// directory is gone (a reboot that cleared the temporary directory, say).
// It refuses a state that names a directory Run did not make.
func attachKept(stateDir string, st state) (*pgcluster.Cluster, error) {
	if !filepath.IsAbs(st.Dir) || !strings.HasPrefix(filepath.Base(st.Dir), keptDirPrefix) {
		return nil, fmt.Errorf("demo state %s names %s, which is not a demo cluster; remove the state file by hand",
			filepath.Join(stateDir, stateFile), st.Dir)
	}
	c, err := pgcluster.Attach(st.Dir, st.BinDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find the kept demo: %w", err)
	}
	return c, nil
}

// stopKept stops c, the kept demo's cluster (nil when it is gone), and
// removes its directory and the demo's state.
func stopKept(ctx context.Context, stateDir string, st state, c *pgcluster.Cluster, out io.Writer) error {
	if c != nil && c.Running(ctx) {
		if err := c.Stop(); err != nil {
			return fmt.Errorf("stop the kept demo: %w", err)
		}
	}
	if err := os.RemoveAll(st.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", st.Dir, err)
	}
	removeState(stateDir)
	fmt.Fprintf(out, "Stopped the kept demo (port %d) and removed %s.\n", st.Port, st.Dir)
	return nil
}

// thousands formats n with commas: 25000 → "25,000".
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
