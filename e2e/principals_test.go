package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/internal/pgcluster"
	"github.com/airlock-dev/airlock/internal/pgtest"
)

// The principals test separates what the threat model separates
// (docs/architecture.md, Principals): the service runs as an OS user of
// its own, with its database URL in a file only that user reads; the
// "agent" runs as another OS user and holds what its MCP configuration
// holds: a bearer token for the service and its own agent login's URL. The
// cluster checks passwords, so a login is only what its password opens.

// osAccount is an OS user the test runs processes as.
type osAccount struct {
	name     string
	uid, gid uint32
}

// ensureOSUser makes a system user for the test (when missing) and returns
// it. Creating users needs root, as CI runs.
func ensureOSUser(t *testing.T, name string) osAccount {
	t.Helper()
	if _, err := user.Lookup(name); err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
		if err != nil {
			t.Fatalf("useradd %s: %v\n%s", name, err, out)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return osAccount{name: name, uid: uint32(uid), gid: uint32(gid)}
}

// command is exec.Command run as the account, with only env in its
// environment (and a PATH).
func (a osAccount) command(env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp"}, env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: a.uid, Gid: a.gid}}
	return cmd
}

// run runs a command as the account and returns its output and exit code.
func (a osAccount) run(env []string, name string, args ...string) (string, int) {
	cmd := a.command(env, name, args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return string(out), code
}

func secret(t *testing.T) string {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// writeFileAs writes a file owned by a with mode perm.
func writeFileAs(t *testing.T, a osAccount, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, int(a.uid), int(a.gid)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func findPsql(t *testing.T) string {
	t.Helper()
	if dir, err := pgcluster.FindBinDir(); err == nil {
		if p := filepath.Join(dir, "psql"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("psql"); err == nil {
		return p
	}
	t.Fatal("psql not found: the principals test runs the agent's plain SQL through psql; install it (apt-get install -y postgresql-client)")
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

const principalsScope = `{
  "name": "principals",
  "read": {
    "tables": {
      "public.customers": {"columns": ["id", "tenant_id", "name", "email", "plan"], "mask": ["email"], "row_filter": "tenant_id = 2"},
      "public.orders": {},
      "public.invoices": {}
    },
    "statement_timeout_ms": 2000
  },
  "write": {
    "mode": "replay",
    "tables": ["public.orders", "public.invoices"],
    "allow": ["insert", "update", "delete"],
    "ticket_pattern": "^OPS-[0-9]+$",
    "review_ttl": "30m"
  }
}`

// TestPrincipalsAsOSUsers is the threat model's test: the agent, with a
// shell of its own OS user and everything its configuration holds, can
// neither change the database nor approve its own pending change, by any
// route; a reviewer login commits it, and every statement ran as the
// scope's write role, whoever the reviewer.
func TestPrincipalsAsOSUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the service and the agent as OS users of their own (CI runs as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	svcUser := ensureOSUser(t, "airlock-e2e-svc")
	agentUser := ensureOSUser(t, "airlock-e2e-agent")
	psql := findPsql(t)

	cluster, err := pgcluster.Start(ctx, pgcluster.Options{SuperuserPassword: secret(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cluster.Stop() })
	adminURL := cluster.URL("postgres")
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE app"); err != nil {
		t.Fatal(err)
	}
	appAdmin := cluster.URL("app")
	seed, err := os.ReadFile(pgtest.Testdata("seed.sql"))
	if err != nil {
		t.Fatal(err)
	}
	app, err := pgx.Connect(ctx, appAdmin)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(context.Background())
	if _, err := app.Exec(ctx, string(seed)); err != nil {
		t.Fatalf("seed: %v", err)
	}
	pw := map[string]string{"agent_l": secret(t), "service_l": secret(t), "reviewer_l": secret(t)}
	for login, p := range pw {
		if _, err := app.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'; GRANT CONNECT ON DATABASE app TO %s", login, p, login)); err != nil {
			t.Fatal(err)
		}
	}
	agentURL := cluster.LoginURL("agent_l", pw["agent_l"], "app")
	serviceURL := cluster.LoginURL("service_l", pw["service_l"], "app")
	reviewerURL := cluster.LoginURL("reviewer_l", pw["reviewer_l"], "app")

	// Files: the binary and the scope readable by all; the service's
	// credentials in a directory only its OS user can enter.
	shared, err := os.MkdirTemp("", "al-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	os.Chmod(shared, 0o755)
	bin := filepath.Join(shared, "airlock")
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	scope := filepath.Join(shared, "scope.json")
	if err := os.WriteFile(scope, []byte(principalsScope), 0o644); err != nil {
		t.Fatal(err)
	}
	secrets, err := os.MkdirTemp("", "al-svc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(secrets) })
	if err := os.Chown(secrets, int(svcUser.uid), int(svcUser.gid)); err != nil {
		t.Fatal(err)
	}
	os.Chmod(secrets, 0o700)
	token := secret(t)
	writeFileAs(t, svcUser, filepath.Join(secrets, "database-url"), serviceURL+"\n", 0o600)
	writeFileAs(t, svcUser, filepath.Join(secrets, "tokens"), token+"\n", 0o600)

	// The admin compiles the scope, a login for each principal.
	apply := exec.Command(bin, "scope", "apply", "--scope", scope, "--grant-to", "agent_l", "--service", "service_l", "--reviewer", "reviewer_l", "--harden")
	apply.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL="+appAdmin)
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("scope apply: %v\n%s", err, out)
	}

	// The service, as its own OS user.
	svc := svcUser.command(nil, bin, "serve", "--scope", scope, "--http", "127.0.0.1:0", "--reap-interval", "300ms",
		"--database-url-file", filepath.Join(secrets, "database-url"), "--http-token-file", filepath.Join(secrets, "tokens"))
	stderr, err := svc.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- svc.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			svc.Process.Kill()
		}
	})
	endpoint := waitForURL(t, stderr)

	fingerprint := func() pgtest.Snapshot { return pgtest.Fingerprint(t, appAdmin).DatabaseOnly() }

	// The agent submits a change through the tools: it is held.
	c := httpClient(t, endpoint, token)
	id := applyChange(t, c, "OPS-1", "UPDATE orders SET notes = current_user WHERE id = 1")
	before := fingerprint()

	agentEnv := []string{"AIRLOCK_TOKEN=" + token, "AIRLOCK_DATABASE_URL=" + agentURL}
	// 1. What the service holds is out of the agent's reach.
	for _, path := range []string{fmt.Sprintf("/proc/%d/environ", svc.Process.Pid), filepath.Join(secrets, "database-url"), filepath.Join(secrets, "tokens")} {
		out, code := agentUser.run(agentEnv, "cat", path)
		if code == 0 || strings.Contains(out, pw["service_l"]) || strings.Contains(out, "service_l") {
			t.Errorf("the agent read %s (exit %d): %.200s", path, code, out)
		}
	}
	if out, code := agentUser.run(agentEnv, "ls", secrets); code == 0 {
		t.Errorf("the agent listed the service's secrets: %s", out)
	}

	// 2. Plain SQL with its own login: nothing persists, nothing out of
	// scope or unmasked comes back.
	for _, sql := range agentAttacks(id) {
		out, code := agentUser.run(agentEnv, psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", agentURL, "-c", sql)
		// Only what no privilege can forbid runs: a sleep (the session's
		// own time, bounded by the watchdog) and a prepared transaction
		// (rolled back by the watchdog, checked below).
		if code == 0 && !strings.Contains(sql, "pg_sleep") && !strings.Contains(sql, "PREPARE TRANSACTION") {
			t.Errorf("psql as the agent ran %s:\n%s", sql, out)
		}
		for _, leak := range []string{"SENTINEL", "@example.com", "sk_live", pw["service_l"], pw["reviewer_l"]} {
			if strings.Contains(out, leak) {
				t.Errorf("psql as the agent: %s: shows %q:\n%s", sql, leak, out)
			}
		}
	}
	// Its own login can read what the scope reads, through the masked view
	// with the row filter.
	out, code := agentUser.run(agentEnv, psql, "-X", "-At", agentURL, "-c",
		`SELECT count(*) FILTER (WHERE tenant_id <> 2), count(*) FILTER (WHERE email NOT LIKE 'masked:%') FROM airlock_principals."public.customers"`)
	if code != 0 || strings.TrimSpace(out) != "0|0" {
		t.Errorf("the agent's read through the masked view: exit %d, %q; want no other tenant's row and no raw email", code, out)
	}

	// 3. The reviewer's CLI with the agent's login: refused.
	for _, args := range [][]string{{"commit", id, "--reviewer", "agent"}, {"rollback", id, "--reviewer", "agent"}, {"merge", id, "--reviewer", "agent"}} {
		out, code := agentUser.run(agentEnv, bin, args...)
		if code == 0 {
			t.Errorf("airlock %v as the agent succeeded:\n%s", args, out)
		}
	}
	// 4. The agent's token over HTTP: a destructive change is only held.
	held := applyChange(t, c, "OPS-2", "DELETE FROM orders")
	// What no privilege forbids (a prepared transaction left holding its
	// locks) the service's watchdog undoes.
	var d string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if d = before.Diff(fingerprint()); d == "" {
			break
		}
	}
	if d != "" {
		t.Fatalf("the agent changed the database:\n%s", d)
	}
	for _, ch := range []string{id, held} {
		if st := changeStatus(t, c, ch); st != "pending" {
			t.Fatalf("change %s is %s, want pending", ch, st)
		}
	}

	// A reviewer's own login commits; the statement ran as the write role.
	rev := exec.Command(bin, "commit", id, "--reviewer", "alice")
	rev.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL="+reviewerURL)
	if out, err := rev.CombinedOutput(); err != nil || !strings.Contains(string(out), "committed: change") {
		t.Fatalf("the reviewer's commit: %v\n%s", err, out)
	}
	var who string
	if err := app.QueryRow(ctx, "SELECT notes FROM orders WHERE id = 1").Scan(&who); err != nil || who != "airlock_principals_write" {
		t.Fatalf("the committed statement ran as %q (%v), want the scope's write role", who, err)
	}
	// A superuser reviewer's commit runs with the same rights, no more.
	again := applyChange(t, c, "OPS-3", "UPDATE orders SET notes = current_user WHERE id = 2")
	su := exec.Command(bin, "commit", again, "--reviewer", "root")
	su.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL="+appAdmin)
	if out, err := su.CombinedOutput(); err != nil {
		t.Fatalf("the superuser's commit: %v\n%s", err, out)
	}
	if err := app.QueryRow(ctx, "SELECT notes FROM orders WHERE id = 2").Scan(&who); err != nil || who != "airlock_principals_write" {
		t.Fatalf("a superuser's commit ran as %q (%v), want the scope's write role", who, err)
	}
	// The service itself may not approve either.
	if _, err := pgxExec(ctx, serviceURL, "UPDATE airlock.changes SET status = 'committed', reviewer = 'svc', decided_at = now() WHERE id = $1", held); err == nil {
		t.Fatal("the service login approved a change")
	}
	if st := changeStatus(t, c, held); st != "pending" {
		t.Fatalf("the DELETE is %s, want pending", st)
	}
}

// agentAttacks is plain SQL an agent would try with its own login, each
// statement on its own: writes to every table (with and without SET ROLE
// to each of airlock's roles), approvals, the raw masked column and the
// key, SECURITY DEFINER functions, and what PostgreSQL lets every role do
// by default (closed by scope apply --harden).
func agentAttacks(changeID string) []string {
	var out []string
	for _, role := range []string{"", "airlock_principals_write", "airlock_principals_read", "airlock_principals_mask",
		"airlock_services", "airlock_reviewers", "service_l", "reviewer_l", "postgres"} {
		set := ""
		if role != "" {
			set = "SET ROLE " + role + "; "
		}
		for _, w := range []string{
			"DELETE FROM orders", "UPDATE invoices SET paid = true", "INSERT INTO orders (customer_id, total, created_at) VALUES (1, 1, now())",
			"TRUNCATE orders", "DELETE FROM customers", "DROP TABLE orders", "ALTER TABLE orders ADD COLUMN x int",
			"SELECT token FROM secrets", "SELECT email FROM customers", "SELECT ipad, opad FROM airlock_principals.mask_key",
		} {
			out = append(out, set+w)
		}
	}
	return append(out,
		"UPDATE airlock.changes SET status = 'committed', reviewer = 'agent', decided_at = now() WHERE id = '"+changeID+"'",
		"UPDATE airlock.changes SET statements = '[]' WHERE id = '"+changeID+"'",
		"DELETE FROM airlock.changes",
		"INSERT INTO airlock.scopes (name, document, version, read_role, write_role) VALUES ('x', '{}', 'x', 'x', 'postgres')",
		"UPDATE airlock.scopes SET write_role = 'postgres'",
		"DELETE FROM airlock.audit_log",
		"SELECT * FROM airlock.changes",
		"SELECT public.evil_write()",
		"SELECT * FROM public.leak_secrets()",
		"CALL public.evil_proc()",
		"SELECT lo_create(0)",
		"SELECT pg_advisory_lock(1)",
		"CREATE TEMP TABLE t (x int)",
		"CREATE TABLE public.pwned (x int)",
		"SELECT pg_notify('x', 'y')",
		"SET statement_timeout = 0; SELECT pg_sleep(0.1)",
		"COPY orders TO PROGRAM 'touch /tmp/airlock-pwned'",
		"SELECT nextval('public.ticket_seq')",
		"BEGIN; SELECT count(*) FROM orders; PREPARE TRANSACTION 'agent-gid'",
		"CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
		"GRANT airlock_principals_write TO agent_l",
		"ALTER ROLE agent_l SUPERUSER",
		"ALTER ROLE agent_l CONNECTION LIMIT -1",
	)
}

func pgxExec(ctx context.Context, url, sql string, args ...any) (int64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	tag, err := conn.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}

// waitForURL reads a serve --http log until it names its URL.
func waitForURL(t *testing.T, stderr io.Reader) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			t.Logf("service: %s", line)
			var rec struct {
				URL string `json:"url"`
			}
			if !sent && json.Unmarshal(line, &rec) == nil && rec.URL != "" {
				found <- rec.URL
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case u, ok := <-found:
		if !ok {
			t.Fatal("the service exited before listening")
		}
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("the service did not start listening")
	}
	return ""
}
