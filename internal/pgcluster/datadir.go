package pgcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

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
