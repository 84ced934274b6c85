package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
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
