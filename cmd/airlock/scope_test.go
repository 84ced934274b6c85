package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// writeScopeFile writes a scope named after a fresh uuid (roles are
// cluster-wide) and drops its roles when the test ends.
func writeScopeFile(t *testing.T, url, body string) (path, readRole string) {
	t.Helper()
	name := "cmd-" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	base := "airlock_" + strings.ReplaceAll(name, "-", "_")
	path = filepath.Join(t.TempDir(), "scope.json")
	if err := os.WriteFile(path, []byte(strings.Replace(body, "NAME", name, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Connect(t, url)
	t.Cleanup(func() {
		ctx := context.Background()
		for _, r := range []string{base + "_read", base + "_write"} {
			var exists bool
			conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", r).Scan(&exists)
			if !exists {
				continue
			}
			for _, sql := range []string{"DROP OWNED BY ", "DROP ROLE "} {
				if _, err := conn.Exec(ctx, sql+pgx.Identifier{r}.Sanitize()); err != nil {
					t.Errorf("%s%s: %v", sql, r, err)
				}
			}
		}
	})
	return path, base + "_read"
}

func runScope(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := cmdScope(ctx, args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestScopePlanApply(t *testing.T) {
	url := pgtest.NewDatabase(t)
	t.Setenv(scopeEnv, url)
	path, readRole := writeScopeFile(t, url, `{"name": "NAME", "read": {"tables": {
		"public.customers": {"columns": ["id", "tenant_id", "name"], "row_filter": "tenant_id = 2"}}}}`)

	planned, stderr, err := runScope(t, "plan", "--scope", path)
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, stderr)
	}
	if !strings.Contains(planned, "would run") || !strings.Contains(planned, "CREATE ROLE \""+readRole+"\" NOLOGIN NOINHERIT;") ||
		!strings.Contains(planned, "AS RESTRICTIVE FOR SELECT") {
		t.Errorf("plan printed:\n%s", planned)
	}
	var login string
	if err := pgtest.Connect(t, url).QueryRow(context.Background(), "SELECT current_user").Scan(&login); err != nil {
		t.Fatal(err)
	}
	ran, stderr, err := runScope(t, "apply", "--scope", path, "--grant-to", login)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, stderr)
	}
	// apply runs what plan printed, plus the membership that plan was not asked for.
	wantRan := strings.Replace(planned, "would run", "ran", 1)
	for _, line := range strings.Split(strings.TrimSpace(wantRan), "\n")[1:] {
		if !strings.Contains(ran, line) {
			t.Errorf("apply did not print %q; it printed:\n%s", line, ran)
		}
	}
	if !strings.Contains(ran, "GRANT \""+readRole+"\" TO \""+login+"\";") {
		t.Errorf("apply did not grant the role to %s:\n%s", login, ran)
	}
	again, _, err := runScope(t, "plan", "--scope", path, "--grant-to", login)
	if err != nil || !strings.Contains(again, "nothing to do") {
		t.Errorf("second plan: %v\n%s", err, again)
	}
}

func TestScopeErrors(t *testing.T) {
	url := pgtest.NewDatabase(t)
	t.Setenv(scopeEnv, url)
	bad, _ := writeScopeFile(t, url, `{"name": "NAME", "read": {"tables": {
		"public.customers": {"row_filter": "id IN (SELECT id FROM public.secrets)"}}}}`)
	typo, _ := writeScopeFile(t, url, `{"name": "NAME", "read": {"tables": {"public.custmers": {}, "public.orders": {}}}}`)
	unknownColumn, _ := writeScopeFile(t, url, `{"name": "NAME", "read": {"tables": {"public.customers": {"row_filter": "tenant = 1"}}}}`)
	tests := []struct {
		args       []string
		wantErr    error
		wantStderr string
	}{
		{nil, errUsage, "want plan or apply"},
		{[]string{"drop"}, errUsage, "want plan or apply"},
		{[]string{"plan"}, errUsage, "--scope FILE is required"},
		{[]string{"plan", "--scope", typo}, errReported, `$.read.tables["public.custmers"]: no table or view public.custmers in database`},
		{[]string{"apply", "--scope", typo}, errReported, "did you mean public.customers?"},
		{[]string{"plan", "--scope", unknownColumn}, errReported, `$.read.tables["public.customers"].row_filter: column "tenant" does not exist`},
		{[]string{"apply", "--scope", bad}, errReported, `$.read.tables["public.customers"].row_filter: contains a subquery`},
		{[]string{"plan", "--scope", pgtest.Testdata("scopes", "invalid", "bad_mode.json")}, errReported, "invalid scope"},
	}
	for _, tt := range tests {
		_, stderr, err := runScope(t, tt.args...)
		if !errors.Is(err, tt.wantErr) || !strings.Contains(stderr, tt.wantStderr) {
			t.Errorf("scope %v: err %v, stderr %q; want %v and %q", tt.args, err, stderr, tt.wantErr, tt.wantStderr)
		}
	}
	good, _ := writeScopeFile(t, url, `{"name": "NAME", "read": {"tables": {"public.customers": {}}}}`)
	_, _, err := runScope(t, "plan", "--scope", good, "--grant-to", "no_such_login")
	if err == nil || !strings.Contains(err.Error(), `role "no_such_login" does not exist`) || !strings.Contains(err.Error(), `CREATE ROLE no_such_login LOGIN`) {
		t.Errorf("unknown grantee: %v", err)
	}
}
