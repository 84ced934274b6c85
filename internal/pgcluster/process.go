package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

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
