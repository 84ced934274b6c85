package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// oracleEnv is a query_readonly over the seed database with the policy
// loaded through Catalog from the real pg_catalog, as the server loads it.
func oracleEnv(t *testing.T, scopeJSON string) (*QueryReadonly, *sqlguard.Policy, string) {
	t.Helper()
	env, url := testEnv(t)
	if scopeJSON != "" {
		scope, err := scopes.Parse([]byte(scopeJSON))
		if err != nil {
			t.Fatal(err)
		}
		env.Scope = scope
	}
	env.Catalog = NewCatalog(env.Pool, env.Scope, env.Log)
	policy, err := env.Catalog.Policy(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return NewQueryReadonly(env), policy, url
}

// oracleNameTypes are the types whose values name catalog objects: every
// object identifier type and aclitem (whose text names roles). A string
// literal passed where one is expected is looked up by name.
var oracleNameTypes = []string{"regclass", "regcollation", "regconfig", "regdictionary", "regnamespace", "regoper",
	"regoperator", "regproc", "regprocedure", "regrole", "regtype", "aclitem"}

// oracleNumberTypes are the bare object identifiers: numbers that a
// function may look up.
var oracleNumberTypes = []string{"oid", "oid[]", "oidvector"}

// oracleProc is one pg_catalog overload, as the test reads it from
// pg_proc itself.
type oracleProc struct {
	name     string
	nargs    int
	kind     string
	types    []string // result, arguments and OUT parameters, as format_type has them
	io, cast bool
}

// inClass is the catalog lookup class (docs/architecture.md, Catalog
// lookups), written out again here without sharing code or SQL with
// tools/catalog.go.
func (p oracleProc) inClass() bool {
	if p.io {
		return true
	}
	for _, t := range p.types {
		if slices.Contains(oracleNameTypes, strings.TrimSuffix(t, "[]")) {
			return true
		}
	}
	if p.kind == "a" || p.cast {
		return false
	}
	for _, t := range p.types {
		if slices.Contains(oracleNumberTypes, t) {
			return true
		}
	}
	return false
}

const oracleProcsSQL = `
SELECT p.proname, p.pronargs, p.prokind::text,
       ARRAY(SELECT pg_catalog.format_type(x, NULL)
             FROM unnest(ARRAY[p.prorettype] || p.proargtypes::pg_catalog.oid[] || coalesce(p.proallargtypes, '{}')) AS x),
       EXISTS (SELECT FROM pg_catalog.pg_type t
               WHERE p.oid IN (t.typinput, t.typoutput, t.typreceive, t.typsend, t.typmodin, t.typmodout)),
       EXISTS (SELECT FROM pg_catalog.pg_cast c WHERE c.castfunc = p.oid)
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
ORDER BY 1, 2`

func oracleProcs(t *testing.T, q *QueryReadonly) []oracleProc {
	t.Helper()
	rows, err := q.env.Pool.Query(context.Background(), oracleProcsSQL)
	if err != nil {
		t.Fatal(err)
	}
	procs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (oracleProc, error) {
		var p oracleProc
		err := row.Scan(&p.name, &p.nargs, &p.kind, &p.types, &p.io, &p.cast)
		return p, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return procs
}

// oracleCall is a call of a pg_catalog function with n NULL arguments: the
// guard decides on names and argument counts, not on types.
func oracleCall(schema, name string, n int) string {
	args := strings.TrimSuffix(strings.Repeat("NULL, ", n), ", ")
	fn := pgx.Identifier{name}.Sanitize()
	if schema != "" {
		fn = pgx.Identifier{schema, name}.Sanitize()
	}
	return fmt.Sprintf("SELECT %s(%s)", fn, args)
}

func oracleRefusal(t *testing.T, err error) *sqlguard.Refusal {
	t.Helper()
	var r *sqlguard.Refusal
	if !errors.As(err, &r) {
		return nil
	}
	return r
}

// TestCatalogLookupClass loads the policy from the real catalog and
// enumerates pg_proc itself: every pg_catalog function that maps oids or
// names to catalog objects is refused, called with the number of
// arguments it takes, qualified or not; so is every type whose values name
// objects, as a cast target. The test is about the class, so a function
// PostgreSQL adds to it is covered without a name in this file.
func TestCatalogLookupClass(t *testing.T) {
	q, policy, _ := oracleEnv(t, "")
	procs := oracleProcs(t, q)
	var inClass int
	for _, p := range procs {
		if !p.inClass() {
			continue
		}
		inClass++
		for _, schema := range []string{"", "pg_catalog"} {
			sql := oracleCall(schema, p.name, p.nargs)
			_, err := policy.CheckRead(sql, 10)
			if r := oracleRefusal(t, err); r == nil || r.Code != "function_not_allowed" {
				t.Errorf("%s (%s) not refused: %v", sql, strings.Join(p.types, ", "), err)
			}
		}
		// Asked by name alone (the migration guard), the name is refused
		// whatever the arguments.
		if policy.Functions.CheckFunction("", p.name) == nil {
			t.Errorf("CheckFunction(%q) allowed a catalog lookup", p.name)
		}
	}
	if inClass < 400 {
		t.Errorf("only %d overloads in the catalog lookup class; the enumeration is broken", inClass)
	}

	// Every object identifier type PostgreSQL has is one the test knows:
	// a new reg* type fails here until it is added above.
	rows, err := q.env.Pool.Query(context.Background(), `SELECT t.typname::text FROM pg_catalog.pg_type t
		WHERE t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace AND t.typname LIKE 'reg%'`)
	if err != nil {
		t.Fatal(err)
	}
	regTypes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(regTypes) < 11 {
		t.Errorf("object identifier types: %v", regTypes)
	}
	for _, name := range regTypes {
		if !slices.Contains(oracleNameTypes, name) {
			t.Errorf("object identifier type %s is missing from oracleNameTypes", name)
		}
	}
	for _, name := range oracleNameTypes {
		for _, sql := range []string{
			"SELECT NULL::" + name,
			"SELECT NULL::pg_catalog." + name,
			"SELECT NULL::" + name + "[]",
			"SELECT NULL::pg_catalog._" + name,
			"SELECT CAST(NULL AS " + name + ")",
		} {
			_, err := policy.CheckRead(sql, 10)
			if r := oracleRefusal(t, err); r == nil || r.Code != "type_not_allowed" {
				t.Errorf("%s not refused: %v", sql, err)
			}
		}
	}
}

// TestCatalogLookupProbes: the probes an agent would write, against the
// real catalog, are refused; the functions a query needs run.
func TestCatalogLookupProbes(t *testing.T) {
	q, policy, _ := oracleEnv(t, "")
	for _, sql := range []string{
		"SELECT format_type(g::oid, NULL) FROM generate_series(1, 20000) AS g",
		"SELECT f FROM generate_series(16384, 20000) AS g, LATERAL format_type(g::oid, -1) AS f",
		"SELECT regclassout(g::oid) FROM generate_series(16384, 20000) AS g",
		"SELECT regclassin('public.secrets')",
		"SELECT regtypein('public.secrets')",
		"SELECT oidvectortypes('16384')",
		"SELECT row_security_active('public.secrets')",
		"SELECT row_security_active(16384)",
		"SELECT to_regclass('public.secrets')",
		"SELECT to_regtype('public.secrets')",
		"SELECT pg_get_userbyid(10)",
		"SELECT pg_describe_object(1259, 16384, 0)",
		"SELECT pg_identify_object(1259, 16384, 0)",
		"SELECT obj_description(16384)",
		"SELECT obj_description(16384, 'pg_class')",
		"SELECT col_description(16384, 1)",
		"SELECT has_table_privilege('public.secrets', 'SELECT')",
		"SELECT has_schema_privilege('internal', 'USAGE')",
		"SELECT pg_has_role('postgres', 'MEMBER')",
		"SELECT pg_table_is_visible(16384)",
		"SELECT pg_relation_size('public.secrets')",
		"SELECT pg_database_size('postgres')",
		"SELECT pg_tablespace_size('pg_default')",
		"SELECT pg_indexam_has_property(403, 'can_order')",
		"SELECT pg_tablespace_databases(1663)",
		"SELECT aclexplode(NULL)",
		"SELECT ARRAY[pg_typeof(1), 'public.secrets']",
		"SELECT coalesce(pg_typeof(1), 'public.secrets')",
		"SELECT to_tsvector('nosuchschema.cfg', 'x')",
		"SELECT ts_lexize('nosuchschema.dict', 'x')",
		"SELECT ts_token_type('default')",
		"SELECT * FROM ts_parse('default', 'x')",
		"SELECT textin('x')",
		"SELECT int4in('1')",
		"SELECT 'public.secrets'::regclass",
		"SELECT 16384::regclass::text",
		"SELECT 'postgres=r/postgres'::aclitem",
		"SELECT pg_available_extensions()",
		"SELECT id FROM orders WHERE format_type(id::oid, NULL) = 'secrets'",
	} {
		_, err := policy.CheckRead(sql, 10)
		r := oracleRefusal(t, err)
		if r == nil || (r.Code != "function_not_allowed" && r.Code != "type_not_allowed") {
			t.Errorf("%s: %v, want a refusal", sql, err)
		}
	}
	for _, sql := range []string{
		"SELECT lower(status), upper(status), length(status), initcap(status) FROM orders",
		"SELECT now(), current_date, date_trunc('day', created_at), age(now(), created_at) FROM orders",
		"SELECT coalesce(notes, ''), nullif(status, 'x'), greatest(1, 2) FROM orders",
		"SELECT jsonb_build_object('id', id), to_json(status), row_to_json(o) FROM orders o",
		"SELECT array_agg(id), count(*), sum(total), avg(total), max(total), min(id), string_agg(status, ',') FROM orders",
		"SELECT to_char(created_at, 'YYYY-MM'), extract(year FROM created_at) FROM orders",
		"SELECT g FROM generate_series(1, 3) AS g",
		"SELECT to_tsvector(coalesce(notes, '')) @@ plainto_tsquery('x') FROM orders",
		"SELECT regexp_replace(status, 'a', 'b'), split_part(status, 'a', 1), format('%s', id) FROM orders",
		"SELECT max(id::oid), 1259::oid, max(pg_column_size(status)), pg_size_pretty(1024::bigint) FROM orders",
		"SELECT row_number() OVER (ORDER BY id), rank() OVER (ORDER BY total) FROM orders",
		"SELECT md5(status), sha256(status::bytea), gen_random_uuid(), random() FROM orders",
	} {
		res, _, refusal, err := q.run(context.Background(), QueryArgs{SQL: sql})
		if refusal != nil || err != nil {
			t.Errorf("%s: %v %v", sql, refusal, err)
			continue
		}
		if res.RowCount() == 0 {
			t.Errorf("%s: no rows", sql)
		}
	}
}

// TestCatalogRowFiltered: the catalog marks the tables EXPLAIN may not
// read: a scope row_filter, row-level security someone enabled, a view;
// and the guard refuses EXPLAIN there and nowhere else.
func TestCatalogRowFiltered(t *testing.T) {
	env, _ := testEnv(t)
	ctx := context.Background()
	if _, err := env.Pool.Exec(ctx, "ALTER TABLE public.invoices ENABLE ROW LEVEL SECURITY"); err != nil {
		t.Fatal(err)
	}
	scope, err := scopes.Parse([]byte(`{"name": "filtered", "read": {"tables": {
		"public.customers": {"columns": ["id", "tenant_id", "name"], "row_filter": "tenant_id = 2"},
		"public.invoices": {}, "public.orders": {}, "public.products": {}, "public.secret_view": {}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := NewCatalog(env.Pool, scope, env.Log).Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"public.customers": true, "public.invoices": true, "public.secret_view": true,
		"public.orders": false, "public.products": false}
	for name, filtered := range want {
		tab := policy.Tables[name]
		if tab == nil {
			t.Fatalf("%s not loaded", name)
		}
		if tab.RowFiltered != filtered {
			t.Errorf("%s: RowFiltered = %v, want %v", name, tab.RowFiltered, filtered)
		}
		_, err := policy.CheckRead("EXPLAIN SELECT 1 FROM "+name, 10)
		r := oracleRefusal(t, err)
		switch {
		case filtered && (r == nil || r.Code != "explain_not_allowed"):
			t.Errorf("EXPLAIN over %s: %v, want explain_not_allowed", name, err)
		case !filtered && err != nil:
			t.Errorf("EXPLAIN over %s: %v", name, err)
		}
	}
}
