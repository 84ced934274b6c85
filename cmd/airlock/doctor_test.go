package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/roles"
	"github.com/airlock-dev/airlock/scopes"
)

// doctorEnv is the url_env of the scopes these tests write, so that they
// never depend on AIRLOCK_DATABASE_URL.
const doctorEnv = "AIRLOCK_DOCTOR_TEST_URL"

// writeDoctorScope writes a scope with a name no other test uses (its roles
// are cluster-wide) and returns its path and the parsed scope.
func writeDoctorScope(t *testing.T) (string, *scopes.Scope) {
	t.Helper()
	name := "doc_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	doc := fmt.Sprintf(`{"name": %q, "database": {"url_env": %q},
		"read": {"tables": {"public.customers": {"columns": ["id", "name"]}, "public.orders": {}}},
		"write": {"mode": "replay", "tables": ["public.orders"], "allow": ["update"], "ticket_pattern": "^T-[0-9]+$"}}`,
		name, doctorEnv)
	path := filepath.Join(t.TempDir(), "scope.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	scope, err := scopes.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, scope
}

func TestDoctorUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args       []string
		want       error
		wantStderr string
	}{
		{nil, errUsage, "--scope FILE"},
		{[]string{"--scope"}, errUsage, "flag needs an argument"},
		{[]string{"--scope", "x.json", "extra"}, errUsage, "--scope FILE"},
		{[]string{"--scope", pgtest.Testdata("scopes", "invalid", "bad_mode.json")}, errReported, "invalid scope"},
		{[]string{"--scope", filepath.Join(t.TempDir(), "missing.json")}, errReported, "missing.json"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		err := cmdDoctor(context.Background(), tt.args, &stdout, &stderr)
		if !errors.Is(err, tt.want) || !strings.Contains(stderr.String(), tt.wantStderr) {
			t.Errorf("doctor %q = %v, stderr %q; want %v and %q", tt.args, err, stderr.String(), tt.want, tt.wantStderr)
		}
	}
}

func TestDoctorNoURL(t *testing.T) {
	path, _ := writeDoctorScope(t)
	t.Setenv(doctorEnv, "")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"doctor", "--scope", path}, strings.NewReader(""), &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), doctorEnv+" is not set") {
		t.Errorf("stderr %q", stderr.String())
	}
}

// The superuser URL of a development setup fails, and says how to fix it.
func TestDoctorSuperuser(t *testing.T) {
	path, _ := writeDoctorScope(t)
	t.Setenv(doctorEnv, pgtest.NewDatabase(t))
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"doctor", "--scope", path}, strings.NewReader(""), &stdout, &stderr)
	out := stdout.String()
	if code != 1 {
		t.Errorf("exit %d, want 1\n%s%s", code, out, stderr.String())
	}
	for _, want := range []string{
		"OK    server version",
		"FAIL  login role             postgres is a superuser: RLS and grants do not bind it",
		"fix: create a dedicated login role: CREATE ROLE airlock_agent LOGIN PASSWORD",
		"airlock scope apply --scope " + path + " --grant-to airlock_agent",
		"FAIL  scope roles",
		"failed,",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A dedicated login role with the scope's roles granted passes (exit 0);
// a table it owns fails unless --allow-owner.
func TestDoctorDedicatedLogin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path, scope := writeDoctorScope(t)
	adminURL := pgtest.NewDatabase(t)
	login := "doc_login_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	t.Cleanup(func() { dropDoctorRoles(t, adminURL, login, scope.ReadRole(), scope.WriteRole()) })
	admin, err := pgxpool.New(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ql := pgx.Identifier{login}.Sanitize()
	for _, sql := range []string{
		"CREATE ROLE " + ql + " LOGIN",
		"ALTER ROLE " + ql + " SET statement_timeout = '60s'",
		"ALTER ROLE " + ql + " SET idle_in_transaction_session_timeout = '60s'",
		// The definer-functions check's fix, for the seed's evil_write().
		"REVOKE EXECUTE ON FUNCTION public.evil_write() FROM PUBLIC",
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if _, err := roles.Apply(ctx, admin, scope, roles.Options{GrantTo: []string{login}, Harden: true}); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(login)
	t.Setenv(doctorEnv, u.String())

	doctor := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(ctx, append([]string{"doctor", "--scope", path}, args...), strings.NewReader(""), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	if code, out := doctor(); code != 0 || strings.Contains(out, "WARN") || !strings.Contains(out, "0 failed, 0 warnings, 15 ok") ||
		!strings.Contains(out, "OK    principal              "+login+" is the agent login") {
		t.Errorf("exit %d, want 0 with every check OK:\n%s", code, out)
	}

	if _, err := admin.Exec(ctx, "ALTER TABLE public.orders OWNER TO "+ql); err != nil {
		t.Fatal(err)
	}
	if code, out := doctor(); code != 1 || !strings.Contains(out, "FAIL  table owner") {
		t.Errorf("owner: exit %d, want 1 with a table owner FAIL:\n%s", code, out)
	}
	// --allow-owner accepts an owner for development, but an agent login
	// that owns a table can still write it with psql.
	if code, out := doctor("--allow-owner"); code != 1 || !strings.Contains(out, "WARN  table owner") ||
		!strings.Contains(out, "FAIL  agent reach") {
		t.Errorf("owner, --allow-owner: exit %d, want 1 with a table owner WARN and an agent reach FAIL:\n%s", code, out)
	}
}

// dropDoctorRoles drops the roles that exist among names, after handing
// what they own in the database at adminURL to the superuser and revoking
// what they hold there.
func dropDoctorRoles(t *testing.T, adminURL string, names ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Errorf("drop roles: %v", err)
		return
	}
	defer conn.Close(ctx)
	for _, name := range names {
		q := pgx.Identifier{name}.Sanitize()
		var exists bool
		err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", name).Scan(&exists)
		if err == nil && exists {
			if _, err = conn.Exec(ctx, "REASSIGN OWNED BY "+q+" TO CURRENT_USER"); err == nil {
				_, err = conn.Exec(ctx, "DROP OWNED BY "+q)
			}
			if err == nil {
				_, err = conn.Exec(ctx, "DROP ROLE "+q)
			}
		}
		if err != nil {
			t.Errorf("drop role %s: %v", name, err)
		}
	}
}

// The commands doctor's and serve's fixes suggest name the scope file the
// user passed, quoted for a shell, never a literal FILE to fill in.
func TestFixesNameTheScopeFile(t *testing.T) {
	orig, _ := writeDoctorScope(t)
	doc, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "my scopes", "scope.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(doctorEnv, pgtest.NewDatabase(t)) // a superuser: the login role check fails
	quoted := "'" + path + "'"
	for _, tt := range []struct {
		cmd  string
		want []string
	}{
		{"doctor", []string{"airlock scope apply --scope " + quoted + " --grant-to airlock_agent"}},
		{"serve", []string{"airlock doctor --scope " + quoted + " shows every check", "airlock scope apply --scope " + quoted + " --grant-to airlock_agent"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var stdout, stderr bytes.Buffer
		code := run(ctx, []string{tt.cmd, "--scope", path}, strings.NewReader(""), &stdout, &stderr)
		cancel()
		out := stdout.String() + stderr.String()
		if tt.cmd == "serve" {
			out = stderr.String() // stdout is the MCP channel
		}
		if code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s", tt.cmd, code, out)
		}
		for _, want := range tt.want {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", tt.cmd, want, out)
			}
		}
		if strings.Contains(out, "FILE") {
			t.Errorf("%s: output has a literal FILE:\n%s", tt.cmd, out)
		}
	}
}
