package doctor

import (
	"net"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/roles"
	"github.com/airlock-dev/airlock/scopes"
)

var (
	agentFacts   = principalFacts{login: "app", read: true, readExists: true, writeExists: true, writeNeeded: true, agents: true}
	serviceFacts = principalFacts{login: "svc", read: true, write: true, readExists: true, writeExists: true, writeNeeded: true, services: true}
)

// The judgements are pure: these tables cover the outcomes a test server
// cannot produce (an old version, a remote host, no prepared transactions).
func TestJudge(t *testing.T) {
	t.Parallel()
	remote := &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 5432}
	tests := []struct {
		name       string
		got        Check
		wantStatus Status
		wantDetail string // substring
		wantFix    string // substring; "" means the fix must be empty
	}{
		{"version 15", judgeVersion(versionFacts{150004, "15.4"}), OK, "PostgreSQL 15.4", ""},
		{"version 13", judgeVersion(versionFacts{130000, "13.0"}), OK, "PostgreSQL 13.0", ""},
		{"version 12", judgeVersion(versionFacts{120017, "12.17"}), WARN, "PostgreSQL 12.17: older than 13", "upgrade"},

		{"plain login", judgeLogin(loginFacts{name: "app"}, "s.json", false), OK, "app is neither", ""},
		{"superuser", judgeLogin(loginFacts{name: "postgres", super: true}, "s.json", false), FAIL,
			"postgres is a superuser: RLS and grants do not bind it",
			"CREATE ROLE airlock_agent LOGIN PASSWORD '…'; then airlock scope apply --scope s.json --grant-to airlock_agent"},
		{"bypassrls", judgeLogin(loginFacts{name: "etl", bypassRLS: true}, "FILE", false), FAIL,
			"etl has BYPASSRLS", "--grant-to airlock_agent"},

		{"no definers", judgeDefiners(nil), OK, "no SECURITY DEFINER", ""},
		{"a definer", judgeDefiners([]string{"public.evil_write"}), WARN, "public.evil_write", "REVOKE EXECUTE"},
		{"owns nothing", judgeOwner("app", nil, false, nil), OK, "app owns none", ""},
		{"owns nothing, DDL allowed", judgeOwner("app", nil, false, []string{"add_column"}), WARN,
			"DDL kinds (add_column)", "set write.own_tables"},
		{"owns a table", judgeOwner("app", []ownedTable{{"public.orders", "app"}}, false, nil), FAIL,
			"public.orders (owner app)", "--allow-owner"},
		{"owns a table, allowed", judgeOwner("app", []ownedTable{{"public.orders", "app"}}, true, nil), WARN,
			"public.orders (owner app)", "accepted with --allow-owner"},

		{"roles match", judgeScopeRoles([]string{"r", "w"}, nil, 0, "s.json"), OK, "r, w match the scope", ""},
		{"role missing", judgeScopeRoles([]string{"r", "w"}, []string{"w"}, 0, "s.json"), FAIL,
			"w does not exist", "airlock scope apply --scope s.json"},
		{"roles missing", judgeScopeRoles([]string{"r", "w"}, []string{"r", "w"}, 0, "s.json"), FAIL,
			"r, w do not exist", "airlock scope apply --scope s.json"},
		{"drift", judgeScopeRoles([]string{"r"}, nil, 3, "s.json"), FAIL,
			"drift between the scope file and the database: 3 statements pending", "airlock scope plan --scope s.json"},

		// Each principal needs its roles.
		{"agent reaches read", judgeRoles(agentFacts, AsAgent, "s.json", "r", "w"), OK, "app can SET ROLE to r", ""},
		{"agent, read missing", judgeRoles(principalFacts{login: "app", writeNeeded: true}, AsAgent, "s.json", "r", "w"), FAIL,
			"r: it does not exist", "airlock scope apply --scope s.json --grant-to app"},
		{"service, not in write", judgeRoles(agentFacts, AsService, "s.json", "r", "w"), FAIL,
			"app cannot SET ROLE to w", "--service app"},
		{"service reaches both", judgeRoles(serviceFacts, AsService, "s.json", "r", "w"), OK, "svc can SET ROLE to r, w", ""},
		{"reviewer reaches write", judgeRoles(principalFacts{login: "alice", write: true, writeExists: true, readExists: true, writeNeeded: true, reviewers: true},
			AsReviewer, "s.json", "r", "w"), OK, "alice can SET ROLE to w", ""},

		// Which principal, and is it used as the one it is.
		{"agent login", judgePrincipal(agentFacts, AsAgent, "s.json", false), OK, "app is the agent login", ""},
		{"agent login that can write", judgePrincipal(principalFacts{login: "app", read: true, write: true, readExists: true, writeExists: true},
			AsAgent, "s.json", false), FAIL, "can SET ROLE to the write role: an agent that reads this login", "--grant-to app"},
		{"service as agent", judgePrincipal(serviceFacts, AsAgent, "s.json", false), FAIL, "can SET ROLE to the write role", "--grant-to svc"},
		{"service login", judgePrincipal(serviceFacts, AsService, "s.json", false), OK, "svc is the service login", ""},
		{"agent as service", judgePrincipal(agentFacts, AsService, "s.json", false), FAIL, "app is also an agent or reviewer login", "--service SERVICE_LOGIN"},
		{"unregistered reader as service", judgePrincipal(principalFacts{login: "app", read: true}, AsService, "s.json", false), FAIL,
			"is used as the service login", "--service app"},
		{"two groups", judgePrincipal(principalFacts{login: "x", read: true, write: true, agents: true, services: true}, AsService, "s.json", false), FAIL,
			"more than one of airlock_agents", "REVOKE"},
		{"local", judgePrincipal(principalFacts{login: "dev", read: true, write: true}, AsLocal, "s.json", false), WARN,
			"an agent with a shell that reads this login's URL can write", "airlock serve --http"},
		{"superuser principal", judgePrincipal(principalFacts{login: "postgres", super: true}, AsAgent, "s.json", false), FAIL,
			"is a superuser: it is every principal", "--grant-to AGENT_LOGIN --service SERVICE_LOGIN --reviewer YOUR_LOGIN"},
		{"none", judgePrincipal(principalFacts{login: "nobody"}, "", "s.json", false), FAIL, "none of the scope's principals", "--grant-to nobody"},

		{"agent reaches nothing", judgeAgentReach("app", nil, "s.json"), OK, "can do nothing past", ""},
		{"agent reaches large objects", judgeAgentReach("app", []roles.Exposure{{What: "EXECUTE on lo_create(oid)", Fix: "REVOKE EXECUTE ON FUNCTION lo_create(oid) FROM PUBLIC"}}, "s.json"), FAIL,
			"an agent holding app could, with plain SQL: EXECUTE on lo_create(oid)", "--harden"},

		{"no write section", judgePrepared("", review.PreparedSlots{}), OK, "not needed", ""},

		{"branch, not needed", judgeBranch(branchFacts{mode: "replay"}), OK, "not needed: write mode is replay", ""},
		{"branch, createdb", judgeBranch(branchFacts{mode: "branch", strategy: "schema", login: "app", createDB: true}), OK, "app can create branch databases", ""},
		{"branch, no createdb", judgeBranch(branchFacts{mode: "branch", strategy: "schema", login: "app"}), FAIL,
			"app cannot create databases", `ALTER ROLE "app" CREATEDB`},
		{"branch, template not copyable", judgeBranch(branchFacts{mode: "branch", strategy: "template", login: "app", createDB: true, database: "prod"}), FAIL,
			"may not copy prod as a template", `strategy to "schema"`},
		{"branch, template as owner", judgeBranch(branchFacts{mode: "branch", strategy: "template", login: "app", createDB: true, copyable: true}), OK, "template strategy", ""},
		{"branch, superuser", judgeBranch(branchFacts{mode: "branch", strategy: "template", login: "postgres", super: true}), OK, "can create", ""},
		{"replay", judgePrepared("replay", review.PreparedSlots{}), OK, "not needed: write mode is replay", ""},
		{"prepared, enabled", judgePrepared("prepared", review.PreparedSlots{Used: 3, Max: 20, Headroom: 4}), OK,
			"max_prepared_transactions = 20, 3 in use; airlock holds a change only while fewer than 16 are (it leaves 4 free for others)", ""},
		{"prepared, slots taken", judgePrepared("prepared", review.PreparedSlots{Used: 16, Max: 20, Headroom: 4}), WARN,
			"every apply is refused (prepared_slots_full)", "airlock pending"},
		{"prepared, disabled", judgePrepared("prepared", review.PreparedSlots{}), FAIL, "max_prepared_transactions = 0",
			"set max_prepared_transactions (e.g. 20) in postgresql.conf and restart"},

		{"timeouts set", judgeTimeouts("app", timeoutFacts{60000, 60000}), OK, "statement_timeout = 60000ms", ""},
		{"no statement timeout", judgeTimeouts("app", timeoutFacts{0, 60000}), WARN,
			"no default for statement_timeout (airlock sets its own limits per transaction; a default also protects other clients)",
			`ALTER ROLE "app" SET statement_timeout`},
		{"no timeouts", judgeTimeouts("Odd Name", timeoutFacts{0, 0}), WARN,
			"statement_timeout or idle_in_transaction_session_timeout",
			`ALTER ROLE "Odd Name" SET idle_in_transaction_session_timeout`},

		{"tls unix socket", judgeTLS(tlsFacts{remote: &net.UnixAddr{Name: "/run/postgresql/.s.PGSQL.5432", Net: "unix"}}), OK, "local connection", ""},
		{"tls 127.0.0.2", judgeTLS(tlsFacts{remote: &net.TCPAddr{IP: net.ParseIP("127.0.0.2"), Port: 5432}}), OK, "local connection", ""},
		{"tls ::1", judgeTLS(tlsFacts{remote: &net.TCPAddr{IP: net.IPv6loopback, Port: 5432}}), OK, "local connection", ""},
		{"remote without tls", judgeTLS(tlsFacts{remote: remote}), FAIL, "203.0.113.7:5432 is not encrypted", "sslmode=verify-full"},
		{"remote, unverified tls", judgeTLS(tlsFacts{remote: remote, ssl: true, unverified: true}), WARN, "without checking", "sslmode=verify-full"},
		{"remote, verified tls", judgeTLS(tlsFacts{remote: remote, ssl: true}), OK, "TLS to 203.0.113.7:5432", ""},
		{"unknown address", judgeTLS(tlsFacts{}), FAIL, "unknown address", "sslmode=verify-full"},
	}
	for _, tt := range tests {
		c := tt.got
		if c.Status != tt.wantStatus || !strings.Contains(c.Detail, tt.wantDetail) {
			t.Errorf("%s: got %s %q, want %s containing %q", tt.name, c.Status, c.Detail, tt.wantStatus, tt.wantDetail)
		}
		if tt.wantFix == "" && c.Fix != "" || !strings.Contains(c.Fix, tt.wantFix) {
			t.Errorf("%s: fix %q, want %q", tt.name, c.Fix, tt.wantFix)
		}
	}
}

func TestFailed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		checks []Check
		want   bool
	}{
		{nil, false},
		{[]Check{{Status: OK}, {Status: WARN}}, false},
		{[]Check{{Status: OK}, {Status: FAIL}}, true},
	}
	for i, tt := range tests {
		if got := Failed(tt.checks); got != tt.want {
			t.Errorf("%d: Failed = %v, want %v", i, got, tt.want)
		}
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	checks := []Check{
		{Name: CheckServerVersion, Status: OK, Detail: "PostgreSQL 15.4"},
		{Name: CheckLoginRole, Status: FAIL, Detail: "postgres is a superuser", Fix: "create a dedicated login role"},
		{Name: CheckTimeouts, Status: WARN, Detail: "no default", Fix: "ALTER ROLE"},
	}
	var b strings.Builder
	if err := Render(&b, checks); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"OK    server version    PostgreSQL 15.4\n" +
		"FAIL  login role        postgres is a superuser\n" +
		"                        fix: create a dedicated login role\n" +
		"WARN  session timeouts  no default\n" +
		"                        fix: ALTER ROLE\n"
	if b.String() != want {
		t.Errorf("Render:\n%s\nwant:\n%s", b.String(), want)
	}
	if got, want := Summary(checks), "1 failed, 1 warning, 1 ok"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
}

func TestJudgeForeignKeys(t *testing.T) {
	scope, err := scopes.Parse([]byte(`{"name": "fk", "read": {"tables": {
		"public.customers": {"row_filter": "tenant_id = 1"}, "public.orders": {}, "public.products": {}}},
		"write": {"tables": ["public.orders"], "allow": ["insert"], "ticket_pattern": "^[A-Z]+-[0-9]+$"}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		fks  []foreignKey
		want Status
		text string
	}{
		{"none", nil, OK, "no write table has a foreign key to a row-filtered table"},
		{"to an unfiltered table", []foreignKey{{from: "public.orders", to: "public.products"}}, OK, "no write table"},
		{"to the scope's row filter", []foreignKey{{from: "public.orders", to: "public.customers"}}, WARN, "public.orders -> public.customers"},
		{"to someone else's row-level security", []foreignKey{{from: "public.orders", to: "public.tenants", rls: true}}, WARN, "public.orders -> public.tenants"},
	} {
		c := judgeForeignKeys(scope, tt.fks)
		if c.Status != tt.want || !strings.Contains(c.Detail, tt.text) {
			t.Errorf("%s: %+v, want %s containing %q", tt.name, c, tt.want, tt.text)
		}
	}
}
