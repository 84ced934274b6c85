package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// TestSystemdUnitCommand runs the service exactly as deploy/airlock.service
// starts it (its ExecStart, with the unit's paths pointed at temporary
// files, credentials as systemd hands them over: read-only, owner only),
// logging in as a service login, and reaches it as an agent with a token.
func TestSystemdUnitCommand(t *testing.T) {
	t.Parallel()
	unit, err := os.ReadFile(filepath.Join(filepath.Dir(pgtest.Testdata()), "deploy", "airlock.service"))
	if err != nil {
		t.Fatal(err)
	}
	execStart := ""
	for _, line := range strings.Split(strings.ReplaceAll(string(unit), "\\\n", " "), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart="); ok {
			execStart = v
		}
	}
	for _, want := range []string{"User=airlock", "LoadCredential=database-url:/etc/airlock/database-url", "LoadCredential=tokens:/etc/airlock/tokens"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	args := strings.Fields(execStart)
	if len(args) < 2 || args[0] != "/usr/local/bin/airlock" {
		t.Fatalf("ExecStart = %q", execStart)
	}

	url := pgtest.NewDatabase(t)
	login := "unit_service_" + strings.ReplaceAll(t.Name(), "/", "_")[len("TestSystemdUnitCommand"):] + "x"
	conn := pgtest.Connect(t, url)
	if _, err := conn.Exec(context.Background(), "CREATE ROLE "+login+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := pgtest.Connect(t, pgtest.AdminURL(t))
		c.Exec(context.Background(), "DROP OWNED BY "+login)
		c.Exec(context.Background(), "DROP ROLE "+login)
	})
	scope := pgtest.Testdata("scopes", "support.json")
	apply := exec.Command(binary, "scope", "apply", "--scope", scope, "--service", login)
	apply.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL="+url)
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("scope apply: %v\n%s", err, out)
	}
	creds := t.TempDir()
	token := strings.Repeat("u", 40)
	for name, content := range map[string]string{"database-url": strings.Replace(url, "postgres@", login+"@", 1), "tokens": token} {
		if err := os.WriteFile(filepath.Join(creds, name), []byte(content+"\n"), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	repl := strings.NewReplacer("/etc/airlock/scope.json", scope, "%d", creds, "127.0.0.1:8765", "127.0.0.1:0")
	for i, a := range args[1:] {
		args[i+1] = repl.Replace(a)
	}
	cmd := exec.Command(binary, args[1:]...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // as systemd: no URL, no token in the environment
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
	endpoint := waitForURL(t, stderr)
	c := httpClient(t, endpoint, token)
	tools, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil || len(tools.Tools) != 6 {
		t.Fatalf("tools/list from the unit's service: %v (%d tools)", err, len(tools.Tools))
	}
	if res := call(t, c, "migrate_dry_run", map[string]any{"sql": "UPDATE orders SET notes = 'x' WHERE id = 1"}); res.IsError {
		t.Fatalf("a dry run through the unit's service: %s", resultText(res))
	}
}
