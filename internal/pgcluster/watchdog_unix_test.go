//go:build unix

package pgcluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const watchdogHelperEnv = "PGCLUSTER_WATCHDOG_HELPER"

// TestWatchdogHelper is the child process of TestWatchdogCleansUp: it
// starts a cluster, reports where, and waits to be killed.
func TestWatchdogHelper(t *testing.T) {
	if os.Getenv(watchdogHelperEnv) == "" {
		t.Skip("helper process for TestWatchdogCleansUp")
	}
	c, err := Start(context.Background(), Options{})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("DIR", c.Dir())
	time.Sleep(time.Minute)
	os.Exit(1)
}

func TestWatchdogCleansUp(t *testing.T) {
	requireBinaries(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatchdogHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), watchdogHelperEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var dir string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "DIR "); ok {
			dir = line
			break
		}
		if strings.HasPrefix(sc.Text(), "ERROR") {
			t.Fatal(sc.Text())
		}
	}
	if dir == "" {
		t.Fatal("helper did not report a cluster directory")
	}
	pidLine, err := os.ReadFile(filepath.Join(dir, dataSubdir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(pidLine), &pid)

	// SIGKILL: no deferred Stop, no signal handler; only the watchdog is left.
	cmd.Process.Kill()
	cmd.Wait()

	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		_, statErr := os.Stat(dir)
		alive := syscall.Kill(pid, 0) == nil
		if os.IsNotExist(statErr) && !alive {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("after the parent died, postmaster %d alive=%v and %s still exists", pid, syscall.Kill(pid, 0) == nil, dir)
}
