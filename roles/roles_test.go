package roles

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/scopes"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// env is a seeded database and a scope name no other test uses: roles are
// cluster-wide.
type env struct {
	t    *testing.T
	ctx  context.Context
	pool *pgxpool.Pool
	name string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := &env{t: t, ctx: ctx, pool: pool, name: "rt-" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")}
	t.Cleanup(func() {
		s := e.scope(`{"tables": {}}`, "")
		for _, r := range []string{s.ReadRole(), s.WriteRole()} {
			// DROP OWNED also revokes the role's privileges in this database.
			if _, err := pool.Exec(context.Background(), "DROP OWNED BY "+ident(r)); err != nil && !isUndefinedRole(err) {
				t.Errorf("drop owned by %s: %v", r, err)
			}
			if _, err := pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+ident(r)); err != nil {
				t.Errorf("drop role %s: %v", r, err)
			}
		}
	})
	return e
}

func isUndefinedRole(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42704"
}

// scope parses a scope named e.name with the given read and write
// sections (write may be "").
func (e *env) scope(read, write string) *scopes.Scope {
	e.t.Helper()
	s, err := e.parse(read, write)
	if err != nil {
		e.t.Fatalf("parse scope: %v\n%s", err, scopes.FormatProblems(err))
	}
	return s
}

// parse is scope without the test's end: for scopes that `airlock check`
// must refuse.
func (e *env) parse(read, write string) (*scopes.Scope, error) {
	doc := `{"name": "` + e.name + `", "read": ` + read
	if write != "" {
		doc += `, "write": ` + write
	}
	return scopes.Parse([]byte(doc + "}"))
}

func (e *env) apply(s *scopes.Scope, opt Options) []string {
	e.t.Helper()
	ran, err := Apply(e.ctx, e.pool, s, opt)
	if err != nil {
		e.t.Fatalf("Apply: %v", err)
	}
	return ran
}

func (e *env) plan(s *scopes.Scope) []string {
	e.t.Helper()
	stmts, err := Plan(e.ctx, e.pool, s, Options{})
	if err != nil {
		e.t.Fatalf("Plan: %v", err)
	}
	return stmts
}

// applyConverged applies s and checks that a second plan is empty.
func (e *env) applyConverged(s *scopes.Scope, opt Options) []string {
	e.t.Helper()
	ran := e.apply(s, opt)
	if again := e.plan(s); len(again) > 0 {
		e.t.Fatalf("plan after apply is not empty:\n%s\n(apply ran:\n%s)", strings.Join(again, "\n"), strings.Join(ran, "\n"))
	}
	return ran
}

// as runs sql as role (SET LOCAL ROLE in a rolled-back transaction) and
// returns its single int64 result.
func (e *env) as(role, sql string) (int64, error) {
	tx, err := e.pool.Begin(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, "SET LOCAL ROLE "+ident(role)); err != nil {
		e.t.Fatal(err)
	}
	var n int64
	err = tx.QueryRow(e.ctx, sql).Scan(&n)
	return n, err
}

func (e *env) mustAs(role, sql string) int64 {
	e.t.Helper()
	n, err := e.as(role, sql)
	if err != nil {
		e.t.Fatalf("as %s: %s: %v", role, sql, err)
	}
	return n
}

func (e *env) deniedAs(role, sql string) {
	e.t.Helper()
	_, err := e.as(role, sql)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		e.t.Errorf("as %s: %s: got %v, want permission denied (42501)", role, sql, err)
	}
}

func (e *env) exec(sql string) {
	e.t.Helper()
	if _, err := e.pool.Exec(e.ctx, sql); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// contains reports whether a statement contains want, ignoring the double
// quotes pgx.Identifier puts around every name.
func contains(stmts []string, want string) bool {
	want = strings.ReplaceAll(want, `"`, "")
	return slices.ContainsFunc(stmts, func(s string) bool { return strings.Contains(strings.ReplaceAll(s, `"`, ""), want) })
}

const supportRead = `{"tables": {
	"public.customers": {"columns": ["id", "tenant_id", "name", "email"], "mask": ["email"]},
	"public.orders": {}
}}`

const supportWrite = `{"tables": ["public.orders"], "allow": ["insert", "update", "create_index"], "ticket_pattern": "^T-[0-9]+$"}`

func TestApplyGrantsExactlyTheScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.scope(supportRead, supportWrite)
	agent, service, reviewer := e.name+"_login", e.name+"_service", e.name+"_reviewer"
	for _, l := range []string{agent, service, reviewer} {
		e.exec("CREATE ROLE " + ident(l) + " LOGIN")
		t.Cleanup(func() {
			e.pool.Exec(context.Background(), "DROP OWNED BY "+ident(l))
			e.pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+ident(l))
		})
	}
	ran := e.applyConverged(s, Options{GrantTo: []string{agent}, Service: []string{service}, Reviewers: []string{reviewer}})
	for _, want := range []string{
		"CREATE ROLE " + ident(s.ReadRole()) + " NOLOGIN NOINHERIT",
		// The masked table is read through its view; only the mask role
		// reads the table's masked column.
		"GRANT SELECT (email, id, name, tenant_id) ON TABLE public.customers TO " + ident(s.MaskRole()),
		"GRANT SELECT ON TABLE " + s.MaskSchema() + ".public.customers TO " + ident(s.ReadRole()),
		"GRANT INSERT, SELECT, UPDATE ON TABLE public.orders TO " + ident(s.WriteRole()),
		"GRANT USAGE ON SEQUENCE public.orders_id_seq TO " + ident(s.WriteRole()),
	} {
		if !contains(ran, want) {
			t.Errorf("apply did not run %q; it ran:\n%s", want, strings.Join(ran, "\n"))
		}
	}
	// Each principal reaches exactly its roles (docs/architecture.md,
	// Principals): the agent the read role only.
	for _, m := range []struct {
		login, role string
		want        bool
	}{
		{agent, s.ReadRole(), true}, {agent, s.WriteRole(), false}, {agent, AgentsGroup, true}, {agent, ServicesGroup, false},
		{service, s.ReadRole(), true}, {service, s.WriteRole(), true}, {service, ServicesGroup, true}, {service, agent, true},
		{reviewer, s.WriteRole(), true}, {reviewer, s.ReadRole(), false}, {reviewer, ReviewersGroup, true}, {reviewer, AgentsGroup, false},
	} {
		var member bool
		if err := e.pool.QueryRow(e.ctx, "SELECT pg_has_role($1, $2, 'MEMBER')", m.login, m.role).Scan(&member); err != nil || member != m.want {
			t.Errorf("%s member of %s: %v (%v), want %v", m.login, m.role, member, err, m.want)
		}
	}

	read, write := s.ReadRole(), s.WriteRole()
	view := ident(s.MaskSchema()) + `."public.customers"`
	e.mustAs(read, "SELECT count(*) FROM (SELECT id, tenant_id, name, email FROM "+view+") c")
	e.mustAs(read, "SELECT count(*) FROM (SELECT * FROM public.orders) o")
	// Every email comes back hashed, equal emails to equal hashes, NULL as NULL.
	if n := e.mustAs(read, "SELECT count(*) FROM "+view+" WHERE email IS NOT NULL AND email !~ '^masked:[0-9a-f]{24}$'"); n != 0 {
		t.Errorf("%d emails come back unmasked", n)
	}
	var distinctRaw, distinctMasked int64
	e.pool.QueryRow(e.ctx, "SELECT count(DISTINCT email) FROM public.customers").Scan(&distinctRaw)
	distinctMasked = e.mustAs(read, "SELECT count(DISTINCT email) FROM "+view)
	if distinctRaw != distinctMasked || distinctRaw == 0 {
		t.Errorf("%d distinct emails, %d distinct hashes", distinctRaw, distinctMasked)
	}
	for _, role := range []string{read, write} {
		// Neither the masked column nor the key, so no hash of a guess.
		e.deniedAs(role, "SELECT count(email) FROM public.customers")
		e.deniedAs(role, "SELECT count(*) FROM public.customers")
		e.deniedAs(role, "SELECT count(*) FROM "+ident(s.MaskSchema())+".mask_key")

		e.deniedAs(role, "SELECT count(ssn) FROM public.customers")
		e.deniedAs(role, "SELECT count(*) FROM public.customers WHERE phone IS NULL")
		e.deniedAs(role, "SELECT count(*) FROM (SELECT * FROM public.customers) c")
		e.deniedAs(role, "SELECT count(*) FROM public.secrets")
		e.deniedAs(role, "SELECT count(*) FROM public.secret_view")
		e.deniedAs(role, "SELECT count(*) FROM internal.api_keys")
		e.deniedAs(role, "SELECT count(*) FROM public.products")
	}
	e.deniedAs(read, "WITH d AS (DELETE FROM public.orders RETURNING 1) SELECT count(*) FROM d")
	e.deniedAs(read, "WITH i AS (INSERT INTO public.orders (customer_id, total, created_at) VALUES (1, 1, now()) RETURNING 1) SELECT count(*) FROM i")

	if n := e.mustAs(write, "WITH i AS (INSERT INTO public.orders (customer_id, total, created_at) VALUES (1, 1, now()) RETURNING 1) SELECT count(*) FROM i"); n != 1 {
		t.Errorf("write role inserted %d rows", n)
	}
	e.mustAs(write, "WITH u AS (UPDATE public.orders SET status = 'paid' WHERE id = 1 RETURNING 1) SELECT count(*) FROM u")
	e.deniedAs(write, "WITH d AS (DELETE FROM public.orders WHERE id = 1 RETURNING 1) SELECT count(*) FROM d")
	e.deniedAs(write, "WITH u AS (UPDATE public.customers SET name = 'x' RETURNING 1) SELECT count(*) FROM u")
	e.deniedAs(write, "WITH u AS (UPDATE public.invoices SET paid = true RETURNING 1) SELECT count(*) FROM u")
	// DDL needs ownership: the write role can run DML only, although the
	// scope allows create_index.
	tx, err := e.pool.Begin(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, "SET LOCAL ROLE "+ident(write)); err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(e.ctx, "CREATE INDEX ON public.orders (total)")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Errorf("write role ran CREATE INDEX: %v", err)
	}
}

func TestPlanConvergesAfterEdits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.scope(supportRead, supportWrite)
	e.applyConverged(s, Options{})
	read, write := ident(s.ReadRole()), ident(s.WriteRole())

	// Privileges granted behind airlock's back are revoked too.
	e.exec("GRANT SELECT ON public.secrets TO " + read)
	e.exec("GRANT SELECT ON public.customers TO " + read)
	e.exec("GRANT CREATE ON SCHEMA public TO " + read)
	e.exec("GRANT USAGE ON SCHEMA internal TO " + write)
	e.exec("GRANT REFERENCES (ssn) ON public.customers TO " + write)
	e.exec("GRANT pg_read_all_data TO " + read)
	e.exec("ALTER ROLE " + read + " LOGIN BYPASSRLS")
	stmts := e.plan(s)
	for _, want := range []string{
		"ALTER ROLE " + read + " NOLOGIN NOINHERIT NOSUPERUSER",
		"REVOKE pg_read_all_data FROM " + read,
		"REVOKE SELECT ON TABLE public.secrets FROM " + read,
		"REVOKE SELECT ON TABLE public.customers FROM " + read,
		"REVOKE CREATE ON SCHEMA public FROM " + read,
		"REVOKE USAGE ON SCHEMA internal FROM " + write,
		"REVOKE REFERENCES (ssn) ON TABLE public.customers FROM " + write,
	} {
		if !contains(stmts, want) {
			t.Errorf("plan lacks %q; it is:\n%s", want, strings.Join(stmts, "\n"))
		}
	}
	e.applyConverged(s, Options{})
	e.deniedAs(s.ReadRole(), "SELECT count(ssn) FROM public.customers")
	e.deniedAs(s.ReadRole(), "SELECT count(*) FROM public.secrets")

	// A column and a table leave the scope.
	edited := e.scope(`{"tables": {"public.customers": {"columns": ["id", "tenant_id", "email"], "mask": ["email"]}}}`, supportWrite)
	stmts = e.plan(edited)
	for _, want := range []string{
		"REVOKE SELECT (name) ON TABLE public.customers FROM " + ident(s.MaskRole()),
		"REVOKE SELECT ON TABLE public.orders FROM " + read,
	} {
		if !contains(stmts, want) {
			t.Errorf("plan lacks %q; it is:\n%s", want, strings.Join(stmts, "\n"))
		}
	}
	// The write role keeps SELECT on orders: update needs it.
	if contains(stmts, "ON TABLE public.orders FROM "+write) {
		t.Errorf("plan revokes the write role's orders privileges:\n%s", strings.Join(stmts, "\n"))
	}
	e.applyConverged(edited, Options{})
	view := ident(edited.MaskSchema()) + `."public.customers"`
	if _, err := e.as(edited.ReadRole(), "SELECT count(name) FROM "+view); err == nil {
		t.Errorf("the view still has the column name")
	}
	e.deniedAs(edited.ReadRole(), "SELECT count(*) FROM public.orders")
	e.mustAs(edited.ReadRole(), "SELECT count(email) FROM "+view)

	// The write section goes: the write role keeps existing with nothing.
	readOnly := e.scope(`{"tables": {"public.customers": {"columns": ["id", "tenant_id", "email"], "mask": ["email"]}}}`, "")
	stmts = e.plan(readOnly)
	if !contains(stmts, "REVOKE INSERT, SELECT, UPDATE ON TABLE public.orders FROM "+write) {
		t.Errorf("plan keeps the write role's grants:\n%s", strings.Join(stmts, "\n"))
	}
	e.applyConverged(readOnly, Options{})
	e.deniedAs(readOnly.WriteRole(), "SELECT count(id) FROM public.orders")
}

func TestRowFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	read := `{"tables": {"public.customers": {"columns": ["id", "tenant_id", "name"], "row_filter": "%s"}, "public.orders": {}}}`
	write := `{"tables": ["public.orders"], "allow": ["insert"], "ticket_pattern": "^T-[0-9]+$"}`
	s := e.scope(strings.Replace(read, "%s", "tenant_id = 2", 1), write)
	ran := e.applyConverged(s, Options{})
	readPolicy, writePolicy := FilterPolicies(s)
	for _, want := range []string{
		"ALTER TABLE public.customers ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY airlock_passthrough ON public.customers AS PERMISSIVE FOR ALL TO PUBLIC USING (true) WITH CHECK (true)",
		"CREATE POLICY " + readPolicy + " ON public.customers AS RESTRICTIVE FOR SELECT TO " + ident(s.MaskRole()) + ", " + ident(s.ReadRole()) + " USING (tenant_id = 2)",
		"CREATE POLICY " + writePolicy + " ON public.customers AS RESTRICTIVE TO " + ident(s.WriteRole()) + " USING (tenant_id = 2)",
		"COMMENT ON POLICY " + readPolicy + " ON public.customers IS 'tenant_id = 2'",
	} {
		if !contains(ran, want) {
			t.Errorf("apply did not run %q; it ran:\n%s", want, strings.Join(ran, "\n"))
		}
	}

	var tenant2, tenant23, all, tenant2Orders int64
	e.pool.QueryRow(e.ctx, "SELECT count(*) FILTER (WHERE tenant_id = 2), count(*) FILTER (WHERE tenant_id IN (2, 3)), count(*) FROM public.customers").Scan(&tenant2, &tenant23, &all)
	e.pool.QueryRow(e.ctx, "SELECT count(*) FROM public.orders o JOIN public.customers c ON c.id = o.customer_id WHERE c.tenant_id = 2").Scan(&tenant2Orders)
	if tenant2 == 0 || tenant2 == all {
		t.Fatalf("seed: %d of %d customers in tenant 2", tenant2, all)
	}
	for _, role := range []string{s.ReadRole(), s.WriteRole()} {
		for _, tt := range []struct {
			sql  string
			want int64
		}{
			{"SELECT count(*) FROM public.customers", tenant2},
			{"SELECT count(*) FROM public.customers WHERE tenant_id <> 2", 0},
			{"SELECT count(DISTINCT tenant_id) FROM public.customers", 1},
			{"SELECT count(*) FROM public.orders o JOIN public.customers c ON c.id = o.customer_id", tenant2Orders},
			{"SELECT count(*) FROM public.orders WHERE customer_id IN (SELECT id FROM public.customers)", tenant2Orders},
			{"SELECT count(*) FROM public.orders o WHERE EXISTS (SELECT 1 FROM public.customers c WHERE c.id = o.customer_id AND c.tenant_id = 3)", 0},
		} {
			if got := e.mustAs(role, tt.sql); got != tt.want {
				t.Errorf("as %s: %s = %d, want %d", role, tt.sql, got, tt.want)
			}
		}
	}
	// Other roles keep seeing every row.
	other := ident(e.name + "_other")
	e.exec("CREATE ROLE " + other + " LOGIN")
	t.Cleanup(func() {
		e.pool.Exec(context.Background(), "DROP OWNED BY "+other)
		e.pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+other)
	})
	e.exec("GRANT SELECT ON public.customers TO " + other)
	if got := e.mustAs(e.name+"_other", "SELECT count(*) FROM public.customers"); got != all {
		t.Errorf("another role sees %d customers, want %d", got, all)
	}
	var n int64
	e.pool.QueryRow(e.ctx, "SELECT count(*) FROM public.customers").Scan(&n)
	if n != all {
		t.Errorf("the owner sees %d customers, want %d", n, all)
	}

	// The filter changes: its policies are replaced.
	changed := e.scope(strings.Replace(read, "%s", "tenant_id IN (2, 3)", 1), write)
	stmts := e.plan(changed)
	for _, want := range []string{"DROP POLICY " + readPolicy, "DROP POLICY " + writePolicy, "USING (tenant_id IN (2, 3))"} {
		if !contains(stmts, want) {
			t.Errorf("plan lacks %q; it is:\n%s", want, strings.Join(stmts, "\n"))
		}
	}
	if contains(stmts, "ENABLE ROW LEVEL SECURITY") || contains(stmts, "airlock_passthrough") {
		t.Errorf("plan touches row-level security again:\n%s", strings.Join(stmts, "\n"))
	}
	e.applyConverged(changed, Options{})
	if got := e.mustAs(s.ReadRole(), "SELECT count(*) FROM public.customers"); got != tenant23 {
		t.Errorf("after the change the read role sees %d customers, want %d", got, tenant23)
	}

	// The filter goes: airlock undoes what it did.
	removed := e.scope(`{"tables": {"public.customers": {"columns": ["id", "tenant_id", "name"]}, "public.orders": {}}}`, write)
	stmts = e.plan(removed)
	for _, want := range []string{
		"DROP POLICY " + readPolicy, "DROP POLICY " + writePolicy,
		"DROP POLICY airlock_passthrough", "ALTER TABLE public.customers DISABLE ROW LEVEL SECURITY",
	} {
		if !contains(stmts, want) {
			t.Errorf("plan lacks %q; it is:\n%s", want, strings.Join(stmts, "\n"))
		}
	}
	e.applyConverged(removed, Options{})
	if got := e.mustAs(s.ReadRole(), "SELECT count(*) FROM public.customers"); got != all {
		t.Errorf("after removal the read role sees %d customers, want %d", got, all)
	}
}

// TestRowFilterKeepsOthersPolicies: on a table whose row-level security
// someone else set up, airlock adds no passthrough and never disables it.
func TestRowFilterKeepsOthersPolicies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.exec("ALTER TABLE public.products ENABLE ROW LEVEL SECURITY")
	e.exec("CREATE POLICY mine ON public.products FOR SELECT USING (active)")
	s := e.scope(`{"tables": {"public.products": {"row_filter": "category = 'software'"}}}`, "")
	ran := e.applyConverged(s, Options{})
	if contains(ran, "airlock_passthrough") || contains(ran, "ROW LEVEL SECURITY") {
		t.Errorf("apply touched someone else's row-level security:\n%s", strings.Join(ran, "\n"))
	}
	var want int64
	e.pool.QueryRow(e.ctx, "SELECT count(*) FROM public.products WHERE active AND category = 'software'").Scan(&want)
	if got := e.mustAs(s.ReadRole(), "SELECT count(*) FROM public.products"); got != want {
		t.Errorf("read role sees %d products, want %d", got, want)
	}
	removed := e.scope(`{"tables": {"public.products": {}}}`, "")
	// The edited scope is registered anew, and only the filter goes.
	stmts := slices.DeleteFunc(e.plan(removed), func(s string) bool { return strings.HasPrefix(s, "INSERT INTO airlock.scopes") })
	readPolicy, _ := FilterPolicies(s)
	if len(stmts) != 1 || !contains(stmts, "DROP POLICY "+readPolicy) {
		t.Errorf("plan = %q, want only the filter's DROP POLICY", stmts)
	}
}

func TestRowFilterRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// offline: `airlock check` (scopes.Parse) refuses it already, with the
	// same words Plan uses; the others need the catalog.
	tests := []struct {
		filter, want string
		offline      bool
	}{
		{"tenant_id = ", "not a valid SQL expression", true},
		{"tenant_id = (SELECT 2)", "contains a subquery", true},
		{"EXISTS (SELECT 1 FROM public.secrets)", "contains a subquery", true},
		{"id IN (SELECT id FROM public.secrets)", "contains a subquery", true},
		{"secrets.id = 1", `refers to "secrets", another table`, true},
		{"public.secrets.id = 1", `refers to "public.secrets", another table`, true},
		{"random() < 0.5", "volatile", false},
		{"nextval('public.ticket_seq') > 0", "nextval", false},
		{"pg_read_file('/etc/passwd') <> ''", "pg_read_file", false},
		{"public.leak_secrets() IS NOT NULL", "outside pg_catalog", true},
		{"nosuch = 1", `column "nosuch" does not exist`, false},
		{"tenant_id + 1", "must be type boolean", false},
		{"true; DROP TABLE public.secrets", "several statements", true},
		{"true UNION SELECT 1 FROM public.secrets", "nothing more", true},
		{"true GROUP BY id", "nothing more", true},
		{"true) OR (true", "not a valid SQL expression", true},
	}
	for _, tt := range tests {
		read := `{"tables": {"public.customers": {"row_filter": ` + jsonString(tt.filter) + `}}}`
		s, err := e.parse(read, "")
		if tt.offline {
			if err == nil || !strings.Contains(scopes.FormatProblems(err), `$.read.tables["public.customers"].row_filter: `) ||
				!strings.Contains(err.Error(), tt.want) {
				t.Errorf("filter %q: check accepted it or said %v, want %q", tt.filter, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("filter %q: check refused it (%v); only the catalog can tell", tt.filter, err)
			continue
		}
		_, err = Plan(e.ctx, e.pool, s, Options{})
		var fe *FilterError
		if !errors.As(err, &fe) || fe.Table != "public.customers" || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("filter %q: got %v, want a FilterError containing %q", tt.filter, err, tt.want)
		}
	}
	s := e.scope(`{"tables": {"public.secret_view": {"row_filter": "id = 1"}}}`, "")
	if _, err := Plan(e.ctx, e.pool, s, Options{}); err == nil || !strings.Contains(err.Error(), "is not a table") {
		t.Errorf("filter on a view: %v", err)
	}
	// Nothing was created along the way.
	var n int
	e.pool.QueryRow(e.ctx, "SELECT count(*) FROM pg_roles WHERE rolname LIKE $1", "airlock_"+strings.ReplaceAll(e.name, "-", "_")+"%").Scan(&n)
	if n != 0 {
		t.Errorf("%d roles exist after refused plans", n)
	}
}

func jsonString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func TestPlanRefusesBadOptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.scope(supportRead, "")
	if _, err := Plan(e.ctx, e.pool, s, Options{GrantTo: []string{"no_such_login_role"}}); err == nil || !strings.Contains(err.Error(), `"no_such_login_role" does not exist`) {
		t.Errorf("unknown grantee: %v", err)
	}
	same := e.scope(`{"role": "x_same", "tables": {}}`, `{"role": "x_same", "tables": ["public.orders"], "allow": ["insert"], "ticket_pattern": "^a$"}`)
	if _, err := Plan(e.ctx, e.pool, same, Options{}); err == nil || !strings.Contains(err.Error(), "need different privileges") {
		t.Errorf("same role twice: %v", err)
	}
	// A role that owns a table has every privilege on it.
	e.applyConverged(s, Options{})
	e.exec("ALTER TABLE public.products OWNER TO " + ident(s.ReadRole()))
	if _, err := Plan(e.ctx, e.pool, s, Options{}); err == nil || !strings.Contains(err.Error(), "owns") {
		t.Errorf("owner role: %v", err)
	}
	e.exec("ALTER TABLE public.products OWNER TO CURRENT_USER")
}

// TestOwnTables: with write.own_tables the write role owns the write
// tables and may create tables in their schema, so DDL runs under it; it
// still owns nothing else, and a second apply has nothing to do.
func TestOwnTables(t *testing.T) {
	e := newEnv(t)
	s := e.scope(`{"tables": {"public.orders": {}}}`,
		`{"tables": ["public.orders", "public.orders_archive"], "allow": ["insert", "add_column", "create_table", "create_index"], "ticket_pattern": "^T-[0-9]+$", "own_tables": true}`)
	t.Cleanup(func() { e.exec("REASSIGN OWNED BY " + ident(s.WriteRole()) + " TO postgres") })
	stmts := e.applyConverged(s, Options{})
	if !contains(stmts, "ALTER TABLE public.orders OWNER TO "+ident(s.WriteRole())) {
		t.Fatalf("ownership not transferred:\n%s", strings.Join(stmts, "\n"))
	}
	for _, ddl := range []string{
		"ALTER TABLE public.orders ADD COLUMN gift boolean",
		"CREATE INDEX ON public.orders (status)",
		"CREATE TABLE public.orders_archive (id bigint)",
	} {
		if err := e.execAs(s.WriteRole(), ddl); err != nil {
			t.Errorf("as the write role: %s: %v", ddl, err)
		}
	}
	for _, c := range []struct{ role, sql string }{
		{s.WriteRole(), "ALTER TABLE public.invoices ADD COLUMN x int"},
		{s.WriteRole(), "ALTER TABLE public.customers ADD COLUMN x int"},
		{s.ReadRole(), "ALTER TABLE public.orders ADD COLUMN y int"},
	} {
		var pe *pgconn.PgError
		if err := e.execAs(c.role, c.sql); !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("as %s: %s: got %v, want must be owner (42501)", c.role, c.sql, err)
		}
	}
	e.deniedAs(s.WriteRole(), "SELECT count(*) FROM public.secrets")
	// A row filter on an owned write table would not bind its owner.
	// `airlock check` refuses it: no database is needed to see it.
	_, err := e.parse(`{"tables": {"public.orders": {"row_filter": "status = 'paid'"}}}`,
		`{"tables": ["public.orders"], "allow": ["insert"], "ticket_pattern": "^T-[0-9]+$", "own_tables": true}`)
	if err == nil || !strings.Contains(scopes.FormatProblems(err), "$.write.tables[0]: public.orders has a row_filter") {
		t.Fatalf("row filter on an owned write table accepted: %v", err)
	}
}

// execAs runs one statement as role in a rolled-back transaction.
func (e *env) execAs(role, sql string) error {
	tx, err := e.pool.Begin(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, "SET LOCAL ROLE "+ident(role)); err != nil {
		e.t.Fatal(err)
	}
	_, err = tx.Exec(e.ctx, sql)
	return err
}
