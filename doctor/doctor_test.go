package doctor

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/roles"
	"github.com/airlock-dev/airlock/scopes"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var nameCounter atomic.Int64

// uniqueName returns a name no other test in this process uses: roles are
// cluster-wide, so every test gets its own scope and login role names.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), nameCounter.Add(1))
}

// newScope returns a scope over the seed's customers (some columns) and
// orders, writing orders in mode; no write section when mode is "".
func newScope(t *testing.T, mode string) *scopes.Scope {
	t.Helper()
	write := ""
	if mode != "" {
		write = fmt.Sprintf(`, "write": {"mode": %q, "tables": ["public.orders"], "allow": ["insert", "update"], "ticket_pattern": "^T-[0-9]+$"}`, mode)
	}
	doc := fmt.Sprintf(`{"name": %q, "read": {"tables": {"public.customers": {"columns": ["id", "name", "plan"]}, "public.orders": {}}}%s}`,
		uniqueName("doctor"), write)
	s, err := scopes.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("parse scope: %v", err)
	}
	return s
}

func newPool(t *testing.T, ctx context.Context, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// dropRolesAtCleanup drops names (those that exist) from the cluster when
// the test ends, after handing what they own in the database at adminURL to
// the superuser and revoking what they were granted there. Register it before opening connections as any of
// them, so that those are closed first.
func dropRolesAtCleanup(t *testing.T, adminURL string, names ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Errorf("drop roles: %v", err)
			return
		}
		defer conn.Close(ctx)
		for _, name := range names {
			var exists bool
			if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`, name).Scan(&exists); err != nil {
				t.Errorf("drop role %s: %v", name, err)
				continue
			}
			if !exists {
				continue
			}
			q := pgx.Identifier{name}.Sanitize()
			// Give what it owns back (the seed's tables have dependents),
			// then revoke what it holds.
			if _, err := conn.Exec(ctx, "REASSIGN OWNED BY "+q+" TO CURRENT_USER"); err != nil {
				t.Errorf("drop role %s: %v", name, err)
			}
			if _, err := conn.Exec(ctx, "DROP OWNED BY "+q); err != nil {
				t.Errorf("drop role %s: %v", name, err)
			}
			if _, err := conn.Exec(ctx, "DROP ROLE "+q); err != nil {
				t.Errorf("drop role %s: %v", name, err)
			}
		}
	})
}

// asUser returns u with its user replaced by user (no password: the test
// cluster trusts local connections).
func asUser(t *testing.T, u, user string) string {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	parsed.User = url.User(user)
	return parsed.String()
}

func statuses(checks []Check) map[string]Status {
	m := map[string]Status{}
	for _, c := range checks {
		m[c.Name] = c.Status
	}
	return m
}

func find(t *testing.T, checks []Check, name string) Check {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %q check in %v", name, checks)
	return Check{}
}

func render(checks []Check) string {
	var b strings.Builder
	_ = Render(&b, checks)
	return b.String()
}

var allChecks = []string{CheckServerVersion, CheckLoginRole, CheckPrincipal, CheckTableOwner, CheckScopeTables, CheckScopeRoles,
	CheckSetRole, CheckAgentReach, CheckPrepared, CheckTimeouts, CheckTLS, CheckDefiner, CheckBranch, CheckForeignKeys, CheckUndo}

// A plain development setup: the superuser's URL, no roles applied.
func TestRunSuperuser(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool := newPool(t, ctx, pgtest.NewDatabase(t))
	scope := newScope(t, "prepared")

	checks := Run(ctx, pool, scope, Options{ScopeFile: "s.json"})
	var names []string
	for _, c := range checks {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, allChecks) {
		t.Fatalf("checks %v, want %v", names, allChecks)
	}
	want := map[string]Status{
		CheckServerVersion: OK, CheckLoginRole: FAIL, CheckPrincipal: FAIL, CheckTableOwner: FAIL, CheckScopeTables: OK, CheckScopeRoles: FAIL,
		CheckSetRole: FAIL, CheckAgentReach: OK, CheckPrepared: OK, CheckTimeouts: WARN, CheckTLS: OK, CheckDefiner: OK, CheckBranch: OK,
		CheckForeignKeys: OK, CheckUndo: OK,
	}
	if got := statuses(checks); !mapsEqual(got, want) {
		t.Errorf("statuses %v, want %v\n%s", got, want, render(checks))
	}
	login := find(t, checks, CheckLoginRole)
	if !strings.Contains(login.Detail, "postgres is a superuser: RLS and grants do not bind it") ||
		!strings.Contains(login.Fix, "CREATE ROLE airlock_agent LOGIN PASSWORD") ||
		!strings.Contains(login.Fix, "airlock scope apply --scope s.json --grant-to airlock_agent") {
		t.Errorf("login role check: %+v", login)
	}
	if roles := find(t, checks, CheckScopeRoles); !strings.Contains(roles.Fix, "airlock scope apply --scope s.json") {
		t.Errorf("scope roles check: %+v", roles)
	}

	var failed []string
	for _, c := range StartupFailures(ctx, pool, scope, Options{}) {
		failed = append(failed, c.Name)
	}
	if want := []string{CheckLoginRole, CheckPrincipal, CheckTableOwner, CheckScopeRoles, CheckSetRole}; !slices.Equal(failed, want) {
		t.Errorf("StartupFailures = %v, want %v", failed, want)
	}
}

func mapsEqual(a, b map[string]Status) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A dedicated login role, with the scope's roles applied and granted to
// it, passes every check; each case then breaks one thing.
func TestRunDedicatedLogin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode string
		// grant: apply the scope's roles with GrantTo the login; apply:
		// apply them without; neither: no roles.
		apply, grant bool
		timeouts     bool
		// setup runs as the superuser after the roles are applied; %[1]s
		// is the quoted login role, %[2]s the quoted read role, %[3]s a
		// quoted spare role name.
		setup      []string
		allowOwner bool
		// soft: apply without --harden.
		soft       bool
		want       map[string]Status // checks not listed must be OK
		wantDetail map[string]string // substrings
	}{
		{name: "all ok, replay", mode: "replay", apply: true, grant: true, timeouts: true},
		{name: "all ok, prepared", mode: "prepared", apply: true, grant: true, timeouts: true},
		{name: "all ok, read only", apply: true, grant: true, timeouts: true},
		// scope apply gives an agent login the scope's read limits.
		{name: "no timeouts of its own", mode: "replay", apply: true, grant: true},
		// What PUBLIC may do by default is the agent's too until --harden.
		{name: "not hardened", mode: "replay", apply: true, grant: true, timeouts: true, soft: true,
			want:       map[string]Status{CheckAgentReach: FAIL},
			wantDetail: map[string]string{CheckAgentReach: "EXECUTE on lo_create(oid)"}},
		{name: "a table writable by PUBLIC", mode: "replay", apply: true, grant: true, timeouts: true,
			setup:      []string{"GRANT UPDATE ON public.invoices TO PUBLIC -- %[1]s"},
			want:       map[string]Status{CheckAgentReach: FAIL},
			wantDetail: map[string]string{CheckAgentReach: "UPDATE on public.invoices"}},
		{name: "an agent login that can write", mode: "replay", apply: true, grant: true, timeouts: true,
			setup:      []string{"GRANT %[4]s TO %[1]s"},
			want:       map[string]Status{CheckPrincipal: FAIL, CheckAgentReach: FAIL},
			wantDetail: map[string]string{CheckPrincipal: "can SET ROLE to the write role"}},
		{name: "owns a scope table", mode: "replay", apply: true, grant: true, timeouts: true,
			setup:      []string{"ALTER TABLE public.orders OWNER TO %[1]s"},
			want:       map[string]Status{CheckTableOwner: FAIL, CheckAgentReach: FAIL},
			wantDetail: map[string]string{CheckTableOwner: "public.orders (owner "}},
		{name: "owns a scope table, allowed", mode: "replay", apply: true, grant: true, timeouts: true, allowOwner: true,
			setup: []string{"ALTER TABLE public.orders OWNER TO %[1]s"},
			want:  map[string]Status{CheckTableOwner: WARN, CheckAgentReach: FAIL}},
		{name: "member of the owner", mode: "replay", apply: true, grant: true, timeouts: true,
			setup: []string{"CREATE ROLE %[3]s NOLOGIN", "ALTER TABLE public.customers OWNER TO %[3]s", "GRANT %[3]s TO %[1]s"},
			want:  map[string]Status{CheckTableOwner: FAIL, CheckAgentReach: FAIL}},
		{name: "bypassrls", mode: "replay", apply: true, grant: true, timeouts: true,
			setup:      []string{"ALTER ROLE %[1]s BYPASSRLS"},
			want:       map[string]Status{CheckLoginRole: FAIL},
			wantDetail: map[string]string{CheckLoginRole: "has BYPASSRLS"}},
		{name: "not granted", mode: "replay", apply: true, timeouts: true,
			want:       map[string]Status{CheckPrincipal: FAIL, CheckSetRole: FAIL},
			wantDetail: map[string]string{CheckSetRole: "cannot SET ROLE to airlock_doctor_"}},
		{name: "no roles", mode: "replay", timeouts: true,
			want:       map[string]Status{CheckPrincipal: FAIL, CheckScopeRoles: FAIL, CheckSetRole: FAIL},
			wantDetail: map[string]string{CheckScopeRoles: "do not exist"}},
		// A typo, or a table renamed since: the nearest name is offered.
		{name: "missing table", mode: "replay", apply: true, grant: true, timeouts: true,
			setup: []string{"ALTER TABLE public.orders RENAME TO orderz -- %[1]s"},
			want:  map[string]Status{CheckScopeTables: FAIL, CheckScopeRoles: FAIL},
			wantDetail: map[string]string{CheckScopeTables: `$.read.tables["public.orders"]: no table or view public.orders in database`,
				CheckScopeRoles: "until the scope tables check passes"}},
		// The table's own row-level security lets only the application's
		// role through: every query of the scope would return nothing.
		{name: "own row security", mode: "replay", apply: true, grant: true, timeouts: true,
			setup: []string{"CREATE ROLE %[3]s NOLOGIN", "ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY -- %[1]s",
				"CREATE POLICY app_only ON public.orders TO %[3]s USING (true)"},
			want:       map[string]Status{CheckScopeTables: FAIL, CheckScopeRoles: FAIL},
			wantDetail: map[string]string{CheckScopeTables: "public.orders has row-level security, and none of its policies lets airlock_doctor_"}},
		{name: "drift", mode: "replay", apply: true, grant: true, timeouts: true,
			setup:      []string{"GRANT SELECT ON public.secrets TO %[2]s"},
			want:       map[string]Status{CheckScopeRoles: FAIL},
			wantDetail: map[string]string{CheckScopeRoles: "drift between the scope file and the database: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			adminURL := pgtest.NewDatabase(t)
			scope := newScope(t, tt.mode)
			login, spare := uniqueName("doctor_login"), uniqueName("doctor_owner")
			dropRolesAtCleanup(t, adminURL, login, spare, scope.ReadRole(), scope.WriteRole())
			admin := newPool(t, ctx, adminURL)

			q := func(name string) string { return pgx.Identifier{name}.Sanitize() }
			mustExec(t, ctx, admin, "CREATE ROLE "+q(login)+" LOGIN")
			// The definer-functions check's fix, for the seed's evil_write().
			mustExec(t, ctx, admin, "REVOKE EXECUTE ON FUNCTION public.evil_write() FROM PUBLIC")
			if tt.timeouts {
				mustExec(t, ctx, admin, "ALTER ROLE "+q(login)+" SET statement_timeout = '60s'")
				mustExec(t, ctx, admin, "ALTER ROLE "+q(login)+" SET idle_in_transaction_session_timeout = '60s'")
			}
			if tt.apply {
				opt := roles.Options{Harden: !tt.soft}
				if tt.grant {
					opt.GrantTo = []string{login}
				}
				if _, err := roles.Apply(ctx, admin, scope, opt); err != nil {
					t.Fatalf("apply roles: %v", err)
				}
			}
			for _, s := range tt.setup {
				mustExec(t, ctx, admin, fmt.Sprintf(s, q(login), q(scope.ReadRole()), q(spare), q(scope.WriteRole())))
			}

			pool := newPool(t, ctx, asUser(t, adminURL, login))
			checks := Run(ctx, pool, scope, Options{AllowOwner: tt.allowOwner})
			for _, c := range checks {
				want := OK
				if s, ok := tt.want[c.Name]; ok {
					want = s
				}
				if c.Status != want {
					t.Errorf("%s: %s, want %s\n%s", c.Name, c.Status, want, render(checks))
				}
				if d := tt.wantDetail[c.Name]; !strings.Contains(c.Detail, d) {
					t.Errorf("%s: detail %q, want it to contain %q", c.Name, c.Detail, d)
				}
				if c.Status != OK && c.Fix == "" {
					t.Errorf("%s: %s without a fix", c.Name, c.Status)
				}
			}
			if fails := StartupFailures(ctx, pool, scope, Options{}); !tt.allowOwner && Failed(checks) != (len(fails) > 0) {
				t.Errorf("StartupFailures = %v, but Failed(Run) = %v", fails, Failed(checks))
			}
		})
	}
}

func mustExec(t *testing.T, ctx context.Context, pool *pgxpool.Pool, sql string) {
	t.Helper()
	if _, err := pool.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Over a Unix socket the TLS check passes as local, like over loopback.
func TestRunUnixSocket(t *testing.T) {
	t.Parallel()
	cluster := pgtest.Cluster()
	if cluster == nil {
		t.Skip("AIRLOCK_TEST_DATABASE_URL is set: no local cluster socket to connect to")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("host", cluster.Dir())
	q.Set("port", strconv.Itoa(cluster.Port()))
	u.Host, u.RawQuery = "", q.Encode()
	pool := newPool(t, ctx, u.String())
	c := find(t, Run(ctx, pool, newScope(t, ""), Options{}), CheckTLS)
	if c.Status != OK || !strings.Contains(c.Detail, "local connection ("+cluster.Dir()) {
		t.Errorf("tls over a socket: %+v", c)
	}
}

// A check that cannot look fails, it never passes: here the pool is closed.
func TestRunCannotCheck(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool := newPool(t, ctx, pgtest.NewDatabase(t))
	pool.Close()
	// Each write mode leaves the other mode's check nothing to look at.
	for mode, idle := range map[string]string{"prepared": CheckBranch, "branch": CheckPrepared} {
		checks := Run(ctx, pool, newScope(t, mode), Options{})
		if len(checks) != len(allChecks) {
			t.Fatalf("%d checks, want %d", len(checks), len(allChecks))
		}
		for _, c := range checks {
			if c.Name == idle {
				if c.Status != OK || !strings.HasPrefix(c.Detail, "not needed") {
					t.Errorf("%s mode, %s: %+v, want not needed", mode, c.Name, c)
				}
				continue
			}
			if c.Status != FAIL || !strings.HasPrefix(c.Detail, "could not check: ") || c.Fix == "" {
				t.Errorf("%s mode, %s: %+v, want a FAIL that says it could not check", mode, c.Name, c)
			}
		}
	}
}
