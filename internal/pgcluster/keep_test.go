package pgcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const detachHelperEnv = "PGCLUSTER_DETACH_HELPER"

// TestDetachHelper is the child process of TestDetachSurvivesParent: it
// starts a cluster in a directory of its own making, detaches it, reports
// where, and waits to be killed.
func TestDetachHelper(t *testing.T) {
	if os.Getenv(detachHelperEnv) == "" {
		t.Skip("helper process for TestDetachSurvivesParent")
	}
	c, err := Start(context.Background(), Options{})
	if err == nil {
		err = c.Detach()
	}
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("DIR", c.Dir())
	fmt.Println("PORT", c.Port())
	time.Sleep(time.Minute)
	os.Exit(1)
}

// startDetachedHelper runs TestDetachHelper and returns the helper and the
// directory and port of its detached cluster. Whatever happens, the test
// ends by stopping that cluster and removing its directory.
func startDetachedHelper(t *testing.T) (*exec.Cmd, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDetachHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), detachHelperEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var dir string
	port := 0
	sc := bufio.NewScanner(stdout)
	for port == 0 && sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "DIR "); ok {
			dir = d
			t.Cleanup(func() {
				if c, err := Attach(dir, ""); err == nil {
					c.Stop()
				}
				os.RemoveAll(dir)
			})
		}
		if p, ok := strings.CutPrefix(line, "PORT "); ok {
			if port, err = strconv.Atoi(p); err != nil {
				t.Fatalf("helper reported port %q", p)
			}
		}
		if strings.HasPrefix(line, "ERROR") {
			t.Fatal(line)
		}
	}
	if dir == "" || port == 0 {
		t.Fatal("helper did not report its cluster")
	}
	return cmd, dir, port
}

func TestDetachSurvivesParent(t *testing.T) {
	requireBinaries(t)
	helper, dir, port := startDetachedHelper(t)

	// SIGKILL, as in TestWatchdogCleansUp: had Detach left the watchdog
	// armed, it would now stop the server and remove dir.
	helper.Process.Kill()
	helper.Wait()
	time.Sleep(time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Attach(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Port() != port {
		t.Errorf("attached Port() = %d, helper reported %d", c.Port(), port)
	}
	if c.Dir() != dir || c.DataDir() != filepath.Join(dir, dataSubdir) {
		t.Errorf("attached Dir() = %s, DataDir() = %s; want %s and its %s", c.Dir(), c.DataDir(), dir, dataSubdir)
	}
	if !c.Running(ctx) {
		t.Fatal("the detached server died with its parent")
	}
	if got := queryString(t, ctx, c.URL("postgres"), "SELECT 'still here'"); got != "still here" {
		t.Errorf("query on the detached server = %q", got)
	}

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if c.Running(ctx) {
		t.Error("server still running after the attached cluster's Stop")
	}
	if conn, err := pgx.Connect(ctx, c.URL("postgres")); err == nil {
		conn.Close(ctx)
		t.Error("server still accepts connections after Stop")
	}
	if _, err := os.Stat(filepath.Join(dir, dataSubdir, "PG_VERSION")); err != nil {
		t.Errorf("an attached cluster's Stop must leave its directory: %v", err)
	}
}

// After Detach, the process that started the cluster can still stop it,
// and Stop leaves the directory, even a temporary one Start made.
func TestDetachThenStop(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		os.RemoveAll(c.Dir())
	})
	for i := 0; i < 2; i++ {
		if err := c.Detach(); err != nil {
			t.Fatalf("Detach #%d: %v", i+1, err)
		}
	}
	if got := queryString(t, ctx, c.URL("postgres"), "SELECT 'detached'"); got != "detached" {
		t.Errorf("query after Detach = %q", got)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if c.Running(ctx) {
		t.Error("server still running after Stop")
	}
	if _, err := os.Stat(c.DataDir()); err != nil {
		t.Errorf("Stop removed a detached cluster's directory: %v", err)
	}
	if err := c.Detach(); err == nil {
		t.Error("Detach of a stopped cluster succeeded")
	}
}

func TestDetachRefusesLogWriter(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Log: &syncBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	if err := c.Detach(); err == nil || !strings.Contains(err.Error(), "Options.Log") {
		t.Errorf("Detach with Options.Log = %v, want a refusal naming Options.Log", err)
	}
	// The refusal leaves the watchdog armed and Stop removing the directory.
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir()); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Stop (stat: %v)", c.Dir(), err)
	}
}

func TestAttachRefusesForeignDirectory(t *testing.T) {
	plain := t.TempDir()
	initdbOnly := t.TempDir()
	if err := os.MkdirAll(filepath.Join(initdbOnly, dataSubdir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(initdbOnly, dataSubdir, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{plain, initdbOnly, filepath.Join(plain, "missing")} {
		if _, err := Attach(dir, t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Attach(%s) = %v, want an error wrapping fs.ErrNotExist", dir, err)
		}
	}
}

func TestConfPort(t *testing.T) {
	tests := []struct {
		conf    string
		want    int
		wantErr bool
	}{
		{"# Written by airlock's pgcluster\nfsync = 'off'\nport = '54321'\ntimezone = 'UTC'\n", 54321, false},
		{"fsync = 'off'\n", 0, true},
		{"port = 'x'\n", 0, true},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, confName), []byte(tt.conf), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := confPort(dir)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("confPort(%q) = %d, %v; want %d, error %v", tt.conf, got, err, tt.want, tt.wantErr)
		}
	}
}
