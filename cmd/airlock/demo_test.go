package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/internal/pgcluster"
)

// buildAirlock builds the binary into a test directory: the demo runs the
// binary itself as MCP server and reviewer CLI, so a test binary will not do.
func buildAirlock(t *testing.T) string {
	t.Helper()
	if _, err := pgcluster.FindBinDir(); err != nil {
		t.Fatal(err) // never skip: CI must notice a missing PostgreSQL
	}
	bin := filepath.Join(t.TempDir(), "airlock")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runDemo runs `airlock ARGS...` with a private cache directory (where a
// kept demo's state lives) and returns its exit code and output.
func runDemo(t *testing.T, bin, cacheDir string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cacheDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("airlock %v: %v", args, err)
	}
	return code, stdout.String(), stderr.String()
}

var (
	clusterDirRE = regexp.MustCompile(`PostgreSQL \.\.\. port \d+, in (\S+) `)
	scopeRE      = regexp.MustCompile(`serve --scope (\S+) --http`)
)

// checkTour asserts that the tour showed its key moments.
func checkTour(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		"agent → list_tables()",
		"masked:",
		"Refused (statement_not_allowed)",
		"Refused (multiple_statements)",
		"Refused (table_not_in_scope)",
		"risk: moderate",
		"is PENDING human review",
		"reviewer $ airlock pending",
		"reviewer $ airlock show ",
		// The agent's own login, with plain SQL and the reviewer's CLI.
		"ERROR:  permission denied for table orders",
		"ERROR:  permission denied for table customers",
		"refused: airlock_demo_agent may not review changes: it is an agent login",
		"committed: change",
		"): committed.",
		`["shipped",6000,6000]`,
		"airlock.audit_log, read directly",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tour output lacks %q", want)
		}
	}
	if strings.Contains(out, "sk_live_") {
		t.Error("tour output shows an API key from the out-of-scope table")
	}
}

func submatch(t *testing.T, re *regexp.Regexp, out string) string {
	t.Helper()
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output does not match %s:\n%s", re, out)
	}
	return m[1]
}

// TestDemo runs the real binary's tour end to end, once plain and once
// kept, sharing one build.
func TestDemo(t *testing.T) {
	bin := buildAirlock(t)
	t.Run("tour", func(t *testing.T) { testTour(t, bin) })
	t.Run("keep and stop", func(t *testing.T) { testKeepAndStop(t, bin) })
	t.Run("interrupted", func(t *testing.T) { testInterrupted(t, bin) })
}

func testTour(t *testing.T, bin string) {
	start := time.Now()
	code, out, errOut := runDemo(t, bin, t.TempDir(), "demo")
	t.Logf("airlock demo took %s", time.Since(start).Round(100*time.Millisecond))
	if code != 0 {
		t.Fatalf("airlock demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	checkTour(t, out)
	for _, dir := range []string{submatch(t, clusterDirRE, out), filepath.Dir(submatch(t, scopeRE, out))} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s is left behind (stat: %v)", dir, err)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

func testKeepAndStop(t *testing.T, bin string) {
	cache := t.TempDir()
	t.Cleanup(func() { runDemo(t, bin, cache, "demo", "--stop") })

	code, out, errOut := runDemo(t, bin, cache, "demo", "--keep")
	if code != 0 {
		t.Fatalf("airlock demo --keep exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	checkTour(t, out)
	for _, want := range []string{`"mcpServers"`, `"command": "` + bin + `"`, "claude mcp add", "demo --stop"} {
		if !strings.Contains(out, want) {
			t.Errorf("--keep output lacks %q:\n%s", want, out)
		}
	}
	var st struct {
		Dir   string `json:"dir"`
		URL   string `json:"url"`
		Scope string `json:"scope"`
	}
	b, err := os.ReadFile(filepath.Join(cache, "airlock-demo", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Dir != submatch(t, clusterDirRE, out) {
		t.Errorf("state dir %s, tour printed %s", st.Dir, submatch(t, clusterDirRE, out))
	}

	// The demo process has exited; its cluster must still serve, with the
	// committed change in it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, st.URL)
	if err != nil {
		t.Fatalf("kept cluster is not running: %v", err)
	}
	var shipped int
	err = conn.QueryRow(ctx, "SELECT count(shipped_at) FROM orders").Scan(&shipped)
	conn.Close(ctx)
	if err != nil || shipped != 6000 {
		t.Errorf("kept database: count(shipped_at) = %d, %v; want 6000", shipped, err)
	}

	code, _, errOut = runDemo(t, bin, cache, "demo", "--keep")
	if code != 1 || !strings.Contains(errOut, "already running") {
		t.Errorf("second --keep: exit %d, stderr %q; want 1 and a refusal", code, errOut)
	}

	code, out, errOut = runDemo(t, bin, cache, "demo", "--stop")
	if code != 0 || !strings.Contains(out, "Stopped the kept demo") {
		t.Fatalf("--stop: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, path := range []string{st.Dir, st.Scope, filepath.Join(cache, "airlock-demo")} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s is left behind after --stop (stat: %v)", path, err)
		}
	}
	if conn, err := pgx.Connect(ctx, st.URL); err == nil {
		conn.Close(ctx)
		t.Error("the kept cluster still accepts connections after --stop")
	}
	code, out, _ = runDemo(t, bin, cache, "demo", "--stop")
	if code != 0 || !strings.Contains(out, "No kept demo") {
		t.Errorf("--stop with nothing kept: exit %d, %q", code, out)
	}
}

// testInterrupted sends Ctrl-C's SIGINT in the middle of the tour: the demo
// must stop everything it started.
func testInterrupted(t *testing.T, bin string) {
	cmd := exec.Command(bin, "demo")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "── 2.") {
			break
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stdout)
	out.Write(rest)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("airlock demo did not stop within a minute of SIGINT; output:\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("after SIGINT: exit %d, stderr %q; want 1 and \"interrupted\"", code, stderr.String())
	}
	for _, dir := range []string{submatch(t, clusterDirRE, out.String()), filepath.Dir(submatch(t, scopeRE, out.String()))} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s is left behind after SIGINT (stat: %v)", dir, err)
		}
	}
}

func TestDemoUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	for _, args := range [][]string{{"--keep", "--stop"}, {"extra"}, {"--bogus"}} {
		if err := cmdDemo(context.Background(), args, &stdout, &stderr); err != errUsage {
			t.Errorf("cmdDemo(%q) = %v, want errUsage", args, err)
		}
	}
}
