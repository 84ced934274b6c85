package roles

import (
	"errors"
	"strings"
	"testing"
)

// TestMissingTables: a scope table the database lacks is a Problem with
// the nearest existing name, and Plan refuses to plan around it.
func TestMissingTables(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name, read, write string
		want              []string
	}{
		{"typo", `{"tables": {"public.custmers": {}, "public.orders": {}}}`, "",
			[]string{`$.read.tables["public.custmers"]: no table or view public.custmers in database`, "did you mean public.customers?"}},
		{"other schema", `{"tables": {"sales.orders": {}, "public.customers": {}}}`, "",
			[]string{`$.read.tables["sales.orders"]`, "did you mean public.orders?"}},
		{"nothing near", `{"tables": {"public.zzzzqqqq": {}, "public.orders": {}}}`, "",
			[]string{`no table or view public.zzzzqqqq`}},
		{"wrong database", `{"tables": {"public.alpha": {}, "public.beta": {}}}`, "",
			[]string{`$.read.tables: none of the scope's tables exist in database`, "AIRLOCK_DATABASE_URL"}},
		{"write table", `{"tables": {"public.orders": {}}}`, `{"tables": ["public.ordres"], "allow": ["insert"], "ticket_pattern": "^T-[0-9]+$"}`,
			[]string{`$.write.tables[0]: no table or view public.ordres`, "did you mean public.orders?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := e.scope(tc.read, tc.write)
			_, err := Plan(e.ctx, e.pool, s, Options{})
			var pe *ProblemsError
			if !errors.As(err, &pe) {
				t.Fatalf("Plan: %v, want a ProblemsError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			ps, err := Problems(e.ctx, e.pool, s)
			if err != nil || len(ps) != len(pe.Problems) {
				t.Errorf("Problems = %v, %v; want Plan's %v", ps, err, pe.Problems)
			}
		})
	}
	// A write table a migration may create is not missing.
	s := e.scope(`{"tables": {"public.orders": {}}}`, `{"tables": ["public.new_table"], "allow": ["create_table"], "ticket_pattern": "^T-[0-9]+$"}`)
	if _, err := Plan(e.ctx, e.pool, s, Options{}); err != nil {
		t.Fatalf("a table to be created: %v", err)
	}
}

// TestForeignRowSecurity: a table whose own row-level security gives the
// scope's roles nothing is reported until the scope says which rows it
// means; with a row_filter, Apply lets the roles through, limited by it.
func TestForeignRowSecurity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, sql := range []string{
		"CREATE ROLE " + ident(e.name+"_app") + " NOLOGIN",
		"CREATE TABLE public.rls_" + strings.ReplaceAll(e.name, "-", "_") + " (id int, tenant int)",
	} {
		if _, err := e.pool.Exec(e.ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		e.pool.Exec(e.ctx, "DROP OWNED BY "+ident(e.name+"_app"))
		e.pool.Exec(e.ctx, "DROP ROLE "+ident(e.name+"_app"))
	})
	table := "public.rls_" + strings.ReplaceAll(e.name, "-", "_")
	for _, sql := range []string{
		"INSERT INTO " + table + " SELECT g, g % 3 FROM generate_series(1, 30) g",
		"GRANT SELECT ON " + table + " TO " + ident(e.name+"_app"),
		"ALTER TABLE " + table + " ENABLE ROW LEVEL SECURITY",
		// The application's own policy, for its own role only.
		"CREATE POLICY app_tenant ON " + table + " FOR ALL TO " + ident(e.name+"_app") + " USING (tenant = 1)",
	} {
		if _, err := e.pool.Exec(e.ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	bare := e.scope(`{"tables": {"`+table+`": {}}}`, "")
	_, err := Plan(e.ctx, e.pool, bare, Options{})
	var pe *ProblemsError
	if !errors.As(err, &pe) || len(pe.Problems) != 1 || !strings.Contains(pe.Problems[0].Message, "none of its policies lets "+bare.ReadRole()+" see a row") ||
		!strings.Contains(pe.Problems[0].Fix, `"row_filter": "true"`) {
		t.Fatalf("Plan: %v", err)
	}
	filtered := e.scope(`{"tables": {"`+table+`": {"row_filter": "tenant = 2"}}}`, `{"tables": ["`+table+`"], "allow": ["update"], "ticket_pattern": "^T-[0-9]+$"}`)
	ran := e.applyConverged(filtered, Options{})
	readAccess, writeAccess := AccessPolicies(filtered)
	if !contains(ran, "CREATE POLICY "+readAccess) || !contains(ran, "CREATE POLICY "+writeAccess) {
		t.Fatalf("apply ran:\n%s", strings.Join(ran, "\n"))
	}
	if n := e.mustAs(filtered.ReadRole(), "SELECT count(*) FROM "+table); n != 10 {
		t.Errorf("read role sees %d rows, want the 10 of tenant 2", n)
	}
	if n := e.mustAs(filtered.WriteRole(), "WITH u AS (UPDATE "+table+" SET id = id RETURNING 1) SELECT count(*) FROM u"); n != 10 {
		t.Errorf("write role updates %d rows, want the 10 of tenant 2", n)
	}
	// The application's role still sees only its own policy's rows.
	if n := e.mustAs(e.name+"_app", "SELECT count(*) FROM "+table+" WHERE tenant <> 1"); n != 0 {
		t.Errorf("the application's role sees %d rows of other tenants, want none", n)
	}
	if ps, err := Problems(e.ctx, e.pool, filtered); err != nil || len(ps) != 0 {
		t.Errorf("Problems after apply: %v %v", ps, err)
	}
	// Dropping the filter drops the access policies again.
	ran = e.apply(e.scope(`{"tables": {"`+table+`": {"row_filter": "true"}}}`, ""), Options{})
	if !contains(ran, "DROP POLICY "+writeAccess) {
		t.Errorf("apply without writes ran:\n%s", strings.Join(ran, "\n"))
	}
}
