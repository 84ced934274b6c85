// Package pgcluster runs a throwaway PostgreSQL server: initdb into a
// directory, start it on a private port and Unix socket, stop it and remove
// it. It backs the test helpers (internal/pgtest) and `airlock demo`.
//
// The server is tuned for speed, not durability (fsync, full_page_writes and
// synchronous_commit are off, authentication is trust): never keep data in it
// you want back.
//
// When the calling process is root, initdb, pg_ctl and postgres run as the
// `postgres` OS user, because PostgreSQL refuses to run as root.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultMaxPreparedTransactions is the max_prepared_transactions a cluster
// gets when Options.MaxPreparedTransactions is 0.
const DefaultMaxPreparedTransactions = 20

const (
	dataSubdir = "data"
	logName    = "server.log"
	confName   = "pgcluster.conf"
	// includeLine makes postgresql.conf read the settings Start writes on
	// every start, so that a reused data directory picks up new ones.
	includeLine = "include_if_exists = '" + confName + "'"
	// pgctlWait is how long pg_ctl -w waits for the server, in seconds.
	pgctlWait = "120"
	// maxSocketPath keeps the socket's path, "<dir>/.s.PGSQL.<port>", within
	// sun_path (108 bytes on Linux, 104 on macOS) with room for its ".lock".
	maxSocketPath = 100
	// logTailBytes is how much of the server log an error quotes.
	logTailBytes = 4 << 10
)

// Options configures Start. The zero value is a fresh throwaway cluster on
// a free port.
type Options struct {
	// Dir holds the cluster: the data directory (Dir/data), the Unix socket
	// and, unless Log is set, the server log (Dir/server.log). Keep it
	// short: the socket path must fit in about 100 bytes. "" makes a new
	// temporary directory that Stop removes. A Dir that already holds a data
	// directory is reused without initdb; a given Dir is never removed.
	Dir string
	// Port is the TCP port on 127.0.0.1. 0 picks a free one.
	Port int
	// MaxPreparedTransactions is max_prepared_transactions: 0 means
	// DefaultMaxPreparedTransactions, a negative value turns the feature off.
	MaxPreparedTransactions int
	// Log receives the server log. nil writes it to a file in Dir.
	Log io.Writer
	// Settings are extra postgresql.conf settings (name → value); they
	// override the defaults, except port, listen_addresses and
	// unix_socket_directories, which the cluster manages.
	Settings map[string]string
	// BinDir is the directory holding initdb, pg_ctl and postgres. ""
	// means FindBinDir.
	BinDir string
	// SuperuserPassword, when set, makes the cluster check passwords
	// (scram-sha-256, over TCP and the socket alike) and gives the
	// superuser `postgres` this one; URL then carries it. Without it
	// authentication is trust: anyone who can reach the port is anyone,
	// which is fine for tests of one principal and wrong for tests that
	// separate principals. It only takes effect when initdb runs.
	SuperuserPassword string
}

// Cluster is a PostgreSQL server started by Start. Its methods are safe for
// concurrent use.
type Cluster struct {
	binDir  string
	dir     string
	dataDir string
	owner   *serverOwner // nil: run as the current user
	madeDir bool
	// password is the superuser's ("" with trust authentication).
	password string

	mu       sync.Mutex
	port     int
	logPath  string   // server log file; "" when logging to Options.Log
	logW     *os.File // write end of the pipe to Options.Log
	logDone  chan struct{}
	tail     *tailBuffer
	watchdog *watchdog
	detached bool // Stop leaves the directory: see Detach
	stopped  bool
}

// Start creates and starts a cluster: initdb (trust authentication,
// superuser `postgres`, UTF8, locale C), then `pg_ctl start -w` listening on
// 127.0.0.1 and on a Unix socket in the cluster directory. If the server
// cannot start, the error quotes the end of the server log. The server is
// shut down (and a temporary directory removed) when the calling process
// exits without calling Stop, so a crashed test run leaves nothing behind;
// Detach keeps it instead.
func Start(ctx context.Context, opt Options) (*Cluster, error) {
	c, err := start(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("start postgres cluster: %w", err)
	}
	return c, nil
}

func start(ctx context.Context, opt Options) (*Cluster, error) {
	settings, err := clusterSettings(opt)
	if err != nil {
		return nil, err
	}
	binDir := opt.BinDir
	if binDir == "" {
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	owner, err := currentServerOwner()
	if err != nil {
		return nil, err
	}
	c := &Cluster{binDir: binDir, owner: owner, password: opt.SuperuserPassword}
	if err := c.prepareDir(opt.Dir); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.abandon()
		}
	}()
	// The watchdog is best-effort: without it the cluster still works, it
	// just may outlive a crashed parent.
	c.watchdog, _ = startWatchdog(c.dataDir, c.dir, c.madeDir)
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	c.setupLog(opt.Log)
	if err := c.startServer(ctx, opt.Port, settings); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// URL returns a connection URL for database dbname as the superuser
// `postgres` over TCP: postgres://postgres@127.0.0.1:PORT/DBNAME?sslmode=disable
// (with the password when the cluster has one).
func (c *Cluster) URL(dbname string) string {
	return c.LoginURL("postgres", c.password, dbname)
}

// LoginURL returns a connection URL for database dbname as role user with
// password (none when empty) over TCP.
func (c *Cluster) LoginURL(user, password, dbname string) string {
	u := url.URL{Scheme: "postgres", Host: fmt.Sprintf("127.0.0.1:%d", c.Port()), Path: "/" + dbname, RawQuery: "sslmode=disable"}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// Port returns the server's TCP port.
func (c *Cluster) Port() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.port
}

// Dir returns the cluster directory. It holds the data directory, the
// server log (unless Options.Log was set) and the Unix socket, so it is also
// the host to give libpq for a socket connection.
func (c *Cluster) Dir() string { return c.dir }

// DataDir returns the data directory (PGDATA).
func (c *Cluster) DataDir() string { return c.dataDir }

// Stop shuts the server down (`pg_ctl stop -m fast`, then immediate if that
// fails) and removes the cluster directory if Start created it and Detach
// was not called. Stopping a stopped cluster does nothing. If the server
// cannot be stopped, the directory is left in place and the error says why.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.stopServer(ctx); err != nil {
		return fmt.Errorf("stop postgres cluster: %w", err)
	}
	c.stopped = true
	c.closeLog()
	var err error
	if c.madeDir && !c.detached {
		if rmErr := os.RemoveAll(c.dir); rmErr != nil {
			err = fmt.Errorf("stop postgres cluster: remove %s: %w", c.dir, rmErr)
		}
	}
	c.watchdog.release()
	return err
}

// Restart restarts the server (`pg_ctl restart -m fast -w`): sessions are
// terminated, prepared transactions survive. It keeps the port and settings.
func (c *Cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("restart postgres cluster: cluster is stopped")
	}
	if err := c.pgctlStart(ctx, "restart", "-m", "fast"); err != nil {
		return fmt.Errorf("restart postgres cluster: %w", err)
	}
	return nil
}

// clusterSettings returns the postgresql.conf settings for opt, minus the
// port, which is only known once a free one is picked.
func clusterSettings(opt Options) (map[string]string, error) {
	mpt := opt.MaxPreparedTransactions
	switch {
	case mpt == 0:
		mpt = DefaultMaxPreparedTransactions
	case mpt < 0:
		mpt = 0
	}
	settings := map[string]string{
		"listen_addresses":          "127.0.0.1",
		"fsync":                     "off",
		"full_page_writes":          "off",
		"synchronous_commit":        "off",
		"max_prepared_transactions": strconv.Itoa(mpt),
		"max_connections":           "200",
		// A fixed zone makes timestamptz output the same on every machine,
		// which golden files rely on.
		"timezone":     "UTC",
		"log_timezone": "UTC",
	}
	for name, value := range opt.Settings {
		name = strings.ToLower(name)
		switch name {
		case "port", "listen_addresses", "unix_socket_directories":
			return nil, fmt.Errorf("setting %s is managed by the cluster (use Options.Port)", name)
		}
		if !validSettingName(name) {
			return nil, fmt.Errorf("invalid setting name %q", name)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return nil, fmt.Errorf("setting %s: value contains a line break or NUL", name)
		}
		settings[name] = value
	}
	return settings, nil
}

func validSettingName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func (c *Cluster) prepareDir(dir string) error {
	if dir == "" {
		base := os.TempDir()
		// macOS's $TMPDIR is long enough to push the socket path over the
		// limit, and root's may be unreachable for the postgres user.
		if len(base) > 40 || !c.owner.canTraverse(filepath.Join(base, "x")) {
			base = "/tmp"
		}
		made, err := os.MkdirTemp(base, "pgcluster-")
		if err != nil {
			return fmt.Errorf("create cluster directory: %w", err)
		}
		dir, c.madeDir = made, true
	} else {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("cluster directory %s: %w", dir, err)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return fmt.Errorf("create cluster directory: %w", err)
		}
		dir = abs
	}
	c.dir = dir
	c.dataDir = filepath.Join(dir, dataSubdir)
	if n := len(filepath.Join(dir, ".s.PGSQL.65535")); n > maxSocketPath {
		return fmt.Errorf("cluster directory %s is too long for a Unix socket path (%d bytes, at most %d); use a shorter Dir",
			dir, n, maxSocketPath)
	}
	if !c.owner.canTraverse(dir) {
		return fmt.Errorf("the %s OS user, which runs the server, cannot reach %s: a parent directory is not searchable by others; use a Dir under /tmp",
			c.owner.name, dir)
	}
	if err := c.owner.chownAll(dir); err != nil {
		return fmt.Errorf("give cluster directory to the %s OS user: %w", c.owner.name, err)
	}
	return nil
}

func (c *Cluster) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); err != nil {
		args := []string{"-D", c.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"}
		if c.password != "" {
			pwfile := filepath.Join(c.dir, "pwfile")
			if err := os.WriteFile(pwfile, []byte(c.password+"\n"), 0o600); err != nil {
				return fmt.Errorf("initdb: write the password file: %w", err)
			}
			defer os.Remove(pwfile)
			if err := c.owner.chown(pwfile); err != nil {
				return fmt.Errorf("initdb: %w", err)
			}
			args = append(args[:4], "-A", "scram-sha-256", "--pwfile", pwfile, "-E", "UTF8", "--locale=C", "--no-sync")
		}
		out, err := c.run(ctx, "initdb", args...)
		if err != nil {
			return fmt.Errorf("initdb: %w\n%s", err, strings.TrimSpace(out))
		}
	}
	confPath := filepath.Join(c.dataDir, "postgresql.conf")
	conf, err := os.ReadFile(confPath)
	if err != nil {
		return fmt.Errorf("read postgresql.conf: %w", err)
	}
	if bytes.Contains(conf, []byte(includeLine)) {
		return nil
	}
	f, err := os.OpenFile(confPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open postgresql.conf: %w", err)
	}
	_, err = fmt.Fprintf(f, "\n# Added by airlock's pgcluster: the settings of a throwaway cluster.\n%s\n", includeLine)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write postgresql.conf: %w", err)
	}
	return nil
}

func (c *Cluster) writeConf(port int, settings map[string]string) error {
	all := map[string]string{
		"port":                    strconv.Itoa(port),
		"unix_socket_directories": c.dir,
	}
	for k, v := range settings {
		all[k] = v
	}
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# Written by airlock's pgcluster on every start; edits are lost.\n")
	for _, name := range names {
		fmt.Fprintf(&b, "%s = '%s'\n", name, strings.ReplaceAll(all[name], "'", "''"))
	}
	path := filepath.Join(c.dataDir, confName)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", confName, err)
	}
	if err := c.owner.chown(path); err != nil {
		return fmt.Errorf("write %s: %w", confName, err)
	}
	return nil
}

// startServer starts the server, retrying with another port when a picked
// free port was taken by someone else in the meantime.
func (c *Cluster) startServer(ctx context.Context, port int, settings map[string]string) error {
	for attempt := 1; ; attempt++ {
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(); err != nil {
				return err
			}
		}
		if err := c.writeConf(p, settings); err != nil {
			return err
		}
		err := c.pgctlStart(ctx, "start")
		if err == nil {
			c.port = p
			return nil
		}
		if port != 0 || attempt == 5 || !strings.Contains(c.logTail(), "Address already in use") {
			return err
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pgctlStart runs a pg_ctl verb that starts the server (start, restart).
func (c *Cluster) pgctlStart(ctx context.Context, verb string, extra ...string) error {
	args := append([]string{verb, "-D", c.dataDir, "-w", "-t", pgctlWait}, extra...)
	var out bytes.Buffer
	where := c.logPath
	if c.logPath != "" {
		args = append(args, "-l", c.logPath)
	}
	cmd := c.command(ctx, "pg_ctl", args...)
	if c.logW != nil {
		// Without -l the postmaster inherits pg_ctl's stdout and stderr:
		// they must be a real file, or Wait would block until the server
		// exits.
		cmd.Stdout, cmd.Stderr = c.logW, c.logW
		where = "Options.Log"
	} else {
		cmd.Stdout, cmd.Stderr = &out, &out
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s\nlast lines of the server log (%s):\n%s",
			verb, err, strings.TrimSpace(out.String()), where, c.logTail())
	}
	return nil
}

func (c *Cluster) stopServer(ctx context.Context) error {
	out, err := c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-w", "-t", pgctlWait, "-m", "fast")
	if err == nil || !c.running(ctx) {
		return nil
	}
	out2, err2 := c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-w", "-t", pgctlWait, "-m", "immediate")
	if err2 == nil {
		return nil
	}
	return fmt.Errorf("pg_ctl stop: %w\n%s\n%s", err, strings.TrimSpace(out), strings.TrimSpace(out2))
}

// running reports whether pg_ctl sees a server on the data directory.
func (c *Cluster) running(ctx context.Context) bool {
	err := c.command(ctx, "pg_ctl", "status", "-D", c.dataDir).Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		// 3: no server running; 4: no accessible data directory.
		return exit.ExitCode() != 3 && exit.ExitCode() != 4
	}
	return err == nil
}

// abandon undoes a failed Start.
func (c *Cluster) abandon() {
	if c.dataDir != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if c.running(ctx) {
			_, _ = c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-w", "-t", pgctlWait, "-m", "immediate")
		}
		cancel()
	}
	c.closeLog()
	if c.madeDir {
		os.RemoveAll(c.dir)
	}
	c.watchdog.release()
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	cmd.Dir = c.dir
	cmd.Env = childEnv()
	// If a server process ever held our output pipe, Wait would block until
	// it exited; give up on the pipe instead.
	cmd.WaitDelay = 10 * time.Second
	c.owner.apply(cmd)
	return cmd
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := c.command(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// childEnv is this process's environment without the PG* variables, which
// could point pg_ctl or the server elsewhere, and with messages in English
// so that the log can be matched.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}

// setupLog routes the server log to w through a pipe, or to a file in the
// cluster directory when w is nil.
func (c *Cluster) setupLog(w io.Writer) {
	if w == nil {
		c.logPath = filepath.Join(c.dir, logName)
		return
	}
	r, pw, err := os.Pipe()
	if err != nil {
		c.logPath = filepath.Join(c.dir, logName)
		return
	}
	c.logW, c.tail, c.logDone = pw, &tailBuffer{}, make(chan struct{})
	go func() {
		defer close(c.logDone)
		defer r.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				c.tail.Write(buf[:n])
				// A failing Log must not stall the server on a full pipe.
				_, _ = w.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
}

// closeLog closes our end of the log pipe and waits for the copier to drain
// what the stopped server wrote.
func (c *Cluster) closeLog() {
	if c.logW == nil {
		return
	}
	c.logW.Close()
	c.logW = nil
	select {
	case <-c.logDone:
	case <-time.After(5 * time.Second):
	}
}

// logTail returns the last lines of the server log.
func (c *Cluster) logTail() string {
	var data []byte
	if c.tail != nil {
		data = c.tail.Bytes()
	} else if c.logPath != "" {
		f, err := os.Open(c.logPath)
		if err != nil {
			return fmt.Sprintf("(cannot read %s: %v)", c.logPath, err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Size() > logTailBytes {
			_, _ = f.Seek(-logTailBytes, io.SeekEnd)
		}
		data, _ = io.ReadAll(io.LimitReader(f, logTailBytes))
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "(empty)"
	}
	return s
}

// tailBuffer keeps the last logTailBytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - logTailBytes; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf)
}
