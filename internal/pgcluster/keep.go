package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Detach lets the server outlive this process: it releases the watchdog
// that Start ties to every cluster, so the server keeps running when this
// process exits, and Stop no longer removes the cluster directory, even one
// Start created. The directory is then the caller's: to end the cluster
// later, from this process or another, Stop it (Attach gives a Cluster for
// Dir in another process) and remove Dir.
//
// Detach fails on a stopped cluster and on one whose server log goes to
// Options.Log: that pipe cannot outlive this process. Detaching twice does
// nothing.
func (c *Cluster) Detach() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.stopped:
		return errors.New("detach postgres cluster: cluster is stopped")
	case c.logW != nil:
		return errors.New("detach postgres cluster: its server log goes to Options.Log, which cannot outlive this process")
	}
	c.watchdog.disarm()
	c.watchdog = nil
	c.detached = true
	return nil
}

// Attach returns the cluster in dir, the Dir of a cluster that Start made
// and Detach kept, typically in another process that has since exited.
// binDir holds pg_ctl ("" means FindBinDir); it should be the installation
// that started the server. The server need not be running: Running says
// whether it is. Port reads the port the cluster was started on.
//
// The attached cluster has no watchdog, and its Stop never removes dir.
// Attach fails, with an error wrapping fs.ErrNotExist, when dir holds no
// data directory that Start set up.
func Attach(dir, binDir string) (*Cluster, error) {
	c, err := attach(dir, binDir)
	if err != nil {
		return nil, fmt.Errorf("attach postgres cluster: %w", err)
	}
	return c, nil
}

func attach(dir, binDir string) (*Cluster, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cluster directory: %w", err)
	}
	dataDir := filepath.Join(dir, dataSubdir)
	// PG_VERSION makes it a data directory; our conf file makes it ours.
	for _, name := range []string{"PG_VERSION", confName} {
		if _, err := os.Stat(filepath.Join(dataDir, name)); err != nil {
			return nil, fmt.Errorf("%s holds no pgcluster data directory: %w", dir, err)
		}
	}
	if binDir == "" {
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	owner, err := currentServerOwner()
	if err != nil {
		return nil, err
	}
	port, err := confPort(dataDir)
	if err != nil {
		return nil, err
	}
	return &Cluster{binDir: binDir, dir: dir, dataDir: dataDir, owner: owner,
		port: port, logPath: filepath.Join(dir, logName)}, nil
}

// confPort reads the port from the settings file writeConf wrote.
func confPort(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, confName))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", confName, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if value, ok := strings.CutPrefix(line, "port = "); ok {
			port, err := strconv.Atoi(strings.Trim(value, "'"))
			if err != nil {
				return 0, fmt.Errorf("%s: port %s: %w", confName, value, err)
			}
			return port, nil
		}
	}
	return 0, fmt.Errorf("%s sets no port", confName)
}

// Running reports whether a server runs on the cluster's data directory,
// as `pg_ctl status` sees it.
func (c *Cluster) Running(ctx context.Context) bool {
	return c.running(ctx)
}
