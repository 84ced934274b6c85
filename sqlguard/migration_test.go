package sqlguard

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// migTestFunctions is a FunctionChecker that allows the functions it lists
// (pg_catalog or unqualified) and reports their volatility.
type migTestFunctions map[string]byte

func (f migTestFunctions) CheckFunction(schema, name string) *Refusal {
	if _, ok := f[name]; ok && (schema == "" || schema == "pg_catalog") {
		return nil
	}
	return refuse("function_not_allowed", "allowed functions: lower, upper, now, ...", "function %s is not allowed", migQualify(schema, name))
}

func (f migTestFunctions) FunctionVolatility(schema, name string) (byte, bool) {
	v, ok := f[name]
	return v, ok
}

func migCols(access map[string]Access, names ...string) []Column {
	var out []Column
	for _, n := range names {
		a, ok := access[n]
		if !ok {
			a = Allowed
		}
		out = append(out, Column{Name: n, Access: a})
	}
	return out
}

// migTestPolicy writes orders and invoices, allows every kind but do and
// call, and reads customers (ssn denied, email and phone masked), orders,
// invoices and products.
func migTestPolicy() *WritePolicy {
	allow := map[string]bool{}
	for _, k := range MigrationKinds {
		if k != "do" && k != "call" {
			allow[k] = true
		}
	}
	return &WritePolicy{
		Tables: map[string]bool{"public.orders": true, "public.invoices": true},
		Allow:  allow,
		Read: &Policy{
			Tables: map[string]*Table{
				"public.customers": {Schema: "public", Name: "customers", Restricted: true,
					Columns: migCols(map[string]Access{"ssn": Denied, "email": Masked, "phone": Masked},
						"id", "name", "email", "phone", "ssn", "plan")},
				"public.orders": {Schema: "public", Name: "orders",
					Columns: migCols(nil, "id", "customer_id", "total", "status", "note", "created_at")},
				"public.invoices": {Schema: "public", Name: "invoices",
					Columns: migCols(nil, "id", "order_id", "amount", "due")},
				"public.products": {Schema: "public", Name: "products",
					Columns: migCols(nil, "id", "name", "price")},
			},
			SearchPath: []string{"public"},
			Functions: FunctionRule{
				Volatility: map[string]byte{
					"lower": 'i', "upper": 'i', "now": 's', "length": 'i', "sum": 'i', "count": 'i',
					"row_to_json": 's', "random": 'v', "gen_random_uuid": 'v',
					"nextval": 'v', "abs": 'i', "round": 'i', "extract": 'i', "similar_to_escape": 'i',
					"like_escape": 'i', "row_number": 'i', "tstzrange": 'i', "substring": 'i', "btrim": 'i',
				},
				Allowed: map[string]bool{"public.archive_orders": true},
			},
		},
	}
}

func migAllow(kinds ...string) func(*WritePolicy) {
	return func(w *WritePolicy) {
		for _, k := range kinds {
			w.Allow[k] = true
		}
	}
}

func migCheck(t *testing.T, sql string, edit func(*WritePolicy)) (*MigrationPlan, *Refusal) {
	t.Helper()
	w := migTestPolicy()
	if edit != nil {
		edit(w)
	}
	plan, err := w.CheckMigration(sql)
	if err == nil {
		return plan, nil
	}
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("CheckMigration(%q) returned %T %v, want *Refusal", sql, err, err)
	}
	if r.Code == "" || r.Reason == "" || r.Hint == "" {
		t.Errorf("refusal %+v lacks a code, reason or hint", r)
	}
	return nil, r
}

// migFindingCodes renders a plan's findings as "statement:CODE".
func migFindingCodes(plan *MigrationPlan) []string {
	var out []string
	for _, s := range plan.Statements {
		for _, f := range s.Findings {
			out = append(out, fmt.Sprintf("%d:%s", f.Statement, f.Code))
		}
	}
	return out
}

func TestCheckMigrationKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sql      string
		edit     func(*WritePolicy)
		kinds    []string // Kind per statement
		findings []string // "statement:CODE"
	}{
		{"create_table", "CREATE TABLE invoices (id bigserial PRIMARY KEY, order_id int NOT NULL REFERENCES orders (id), created timestamptz DEFAULT now())", nil, []string{"create_table"}, nil},
		{"create_table partition of write table", "CREATE TABLE invoices PARTITION OF orders FOR VALUES IN (1)", nil, []string{"create_table"}, nil},
		{"drop_table", "DROP TABLE invoices", nil, []string{"drop_table"}, []string{"0:DS102"}},
		{"drop_table two", "DROP TABLE IF EXISTS invoices, public.orders", nil, []string{"drop_table"}, []string{"0:DS102", "0:DS102"}},
		{"add_column", "ALTER TABLE orders ADD COLUMN note text", nil, []string{"add_column"}, nil},
		{"drop_column", "ALTER TABLE orders DROP COLUMN note", nil, []string{"drop_column"}, []string{"0:DS103"}},
		{"alter_column_type", "ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2)", nil, []string{"alter_column_type"}, []string{"0:PG301"}},
		{"set_not_null", "ALTER TABLE orders ALTER COLUMN status SET NOT NULL", nil, []string{"set_not_null"}, []string{"0:MF104"}},
		{"drop_not_null", "ALTER TABLE orders ALTER COLUMN status DROP NOT NULL", nil, []string{"drop_not_null"}, nil},
		{"set_default", "ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new'", nil, []string{"set_default"}, nil},
		{"set_default nextval", "ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('orders_id_seq')", nil, []string{"set_default"}, nil},
		{"drop_default", "ALTER TABLE orders ALTER COLUMN status DROP DEFAULT", nil, []string{"drop_default"}, nil},
		{"add_constraint not valid", "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total > 0) NOT VALID", nil, []string{"add_constraint"}, nil},
		{"add_constraint check", "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total > 0)", nil, []string{"add_constraint"}, []string{"0:PG305"}},
		{"add_constraint unique", "ALTER TABLE orders ADD CONSTRAINT orders_uq UNIQUE (customer_id, created_at)", nil, []string{"add_constraint"}, []string{"0:PG305"}},
		{"add_constraint unique using index", "ALTER TABLE orders ADD CONSTRAINT orders_uq UNIQUE USING INDEX orders_uq_idx", nil, []string{"add_constraint"}, nil},
		{"add_constraint foreign key", "ALTER TABLE invoices ADD FOREIGN KEY (order_id) REFERENCES orders (id)", nil, []string{"add_constraint"}, []string{"0:PG305"}},
		{"drop_constraint", "ALTER TABLE orders DROP CONSTRAINT total_positive", nil, []string{"drop_constraint"}, nil},
		{"validate_constraint", "ALTER TABLE orders VALIDATE CONSTRAINT total_positive", nil, []string{"validate_constraint"}, nil},
		{"create_index", "CREATE INDEX orders_status_idx ON orders (status) WHERE status <> 'done'", nil, []string{"create_index"}, []string{"0:PG101"}},
		{"create_index expression", "CREATE UNIQUE INDEX ON orders (lower(status))", nil, []string{"create_index"}, []string{"0:PG101"}},
		{"drop_index", "DROP INDEX orders_status_idx", nil, []string{"drop_index"}, nil},
		{"rename table", "ALTER TABLE orders RENAME TO orders_old", nil, []string{"rename"}, []string{"0:BC101"}},
		{"rename column", "ALTER TABLE orders RENAME COLUMN status TO state", nil, []string{"rename"}, []string{"0:BC102"}},
		{"rename constraint", "ALTER TABLE orders RENAME CONSTRAINT a TO b", nil, []string{"rename"}, nil},
		{"rename index", "ALTER INDEX orders_status_idx RENAME TO orders_state_idx", nil, []string{"rename"}, nil},
		{"insert", "INSERT INTO orders (customer_id, total) VALUES (1, 10.5)", nil, []string{"insert"}, nil},
		{"insert on conflict returning", "INSERT INTO orders (id, total) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET total = EXCLUDED.total RETURNING id", nil, []string{"insert"}, nil},
		{"update", "UPDATE orders SET status = 'done' WHERE id = 1", nil, []string{"update"}, nil},
		{"update without where", "UPDATE orders SET status = lower(status)", nil, []string{"update"}, []string{"0:DL102"}},
		{"delete", "DELETE FROM orders WHERE id = 1", nil, []string{"delete"}, nil},
		{"delete without where", "DELETE FROM orders", nil, []string{"delete"}, []string{"0:DL101"}},
		{"truncate", "TRUNCATE orders, invoices RESTART IDENTITY", nil, []string{"truncate"}, []string{"0:DS104", "0:DS104"}},
		{"create_view", "CREATE OR REPLACE VIEW invoices AS SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id", nil, []string{"create_view"}, nil},
		{"drop_view", "DROP VIEW invoices", nil, []string{"drop_view"}, nil},
		{"comment table", "COMMENT ON TABLE orders IS 'customer orders'", nil, []string{"comment"}, nil},
		{"comment column", "COMMENT ON COLUMN public.orders.total IS 'in cents'", nil, []string{"comment"}, nil},
		{"comment constraint", "COMMENT ON CONSTRAINT total_positive ON orders IS 'x'", nil, []string{"comment"}, nil},
		{"comment index", "COMMENT ON INDEX orders_status_idx IS 'x'", nil, []string{"comment"}, nil},
		{"do allowed", "DO $$ BEGIN PERFORM 1; END $$", migAllow("do"), []string{"do"}, []string{"0:CD101"}},
		{"call allowed", "CALL public.archive_orders(30)", migAllow("call"), []string{"call"}, []string{"0:CD101"}},
		{"multi-statement", `
			-- a new table for invoices
			CREATE TABLE invoices (id serial PRIMARY KEY, order_id int, amount numeric);
			CREATE INDEX ON invoices (order_id);
			INSERT INTO invoices (order_id, amount) SELECT id, total FROM orders WHERE status = 'done';
			DELETE FROM orders;`,
			nil, []string{"create_table", "create_index", "insert", "delete"}, []string{"1:PG101", "3:DL101"}},
		{"alter table several kinds", "ALTER TABLE orders ADD COLUMN a int, DROP COLUMN b, ALTER COLUMN c SET NOT NULL", nil,
			[]string{"drop_column"}, []string{"0:DS103", "0:MF104"}},
		{"add not null column without default", "ALTER TABLE orders ADD COLUMN region text NOT NULL", nil, []string{"add_column"}, []string{"0:MF103"}},
		{"add primary key column without default", "ALTER TABLE orders ADD COLUMN ref int PRIMARY KEY", nil, []string{"add_column"}, []string{"0:MF103"}},
		{"add not null column with default", "ALTER TABLE orders ADD COLUMN region text NOT NULL DEFAULT 'eu'", nil, []string{"add_column"}, nil},
		{"add column stable default", "ALTER TABLE orders ADD COLUMN seen timestamptz DEFAULT now()", nil, []string{"add_column"}, nil},
		{"add column volatile default", "ALTER TABLE orders ADD COLUMN r float8 DEFAULT random()", nil, []string{"add_column"}, []string{"0:PG302"}},
		{"add column uuid default", "ALTER TABLE orders ADD COLUMN u uuid NOT NULL DEFAULT gen_random_uuid()", nil, []string{"add_column"}, []string{"0:PG302"}},
		{"add column nextval default", "ALTER TABLE orders ADD COLUMN n bigint DEFAULT nextval('orders_n_seq')", nil, []string{"add_column"}, []string{"0:PG302"}},
		{"add identity column", "ALTER TABLE orders ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY", nil, []string{"add_column"}, []string{"0:PG302"}},
		{"add serial column", "ALTER TABLE orders ADD COLUMN n bigserial", nil, []string{"add_column"}, []string{"0:PG302"}},
		{"add stored generated column", "ALTER TABLE orders ADD COLUMN t2 numeric GENERATED ALWAYS AS (total * 2) STORED", nil, []string{"add_column"}, []string{"0:PG302"}},
		{"insert select from readable table", "INSERT INTO orders (customer_id, note) SELECT id, name FROM customers WHERE plan = 'pro'", nil, []string{"insert"}, nil},
		{"cte read", "WITH recent AS (SELECT id FROM products) INSERT INTO orders (id) SELECT id FROM recent", nil, []string{"insert"}, nil},
		{"recursive cte", "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) INSERT INTO orders (id) SELECT i FROM n", nil, []string{"insert"}, nil},
		{"cte named like a target", "WITH orders AS (SELECT 1 AS id) INSERT INTO orders (id) SELECT id FROM orders", nil, []string{"insert"}, nil},
		{"update from", "UPDATE orders o SET total = p.price FROM products p WHERE p.id = o.id", nil, []string{"update"}, nil},
		{"delete using", "DELETE FROM orders o USING customers c WHERE c.id = o.customer_id AND c.plan = 'free'", nil, []string{"delete"}, nil},
		{"returning star on unrestricted table", "DELETE FROM orders WHERE id = 1 RETURNING *", nil, []string{"delete"}, nil},
		{"for update of alias", "UPDATE orders SET total = 0 WHERE id IN (SELECT id FROM invoices i FOR UPDATE OF i)", nil, []string{"update"}, nil},
		{"foreign key to allowed column of restricted table", "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID", nil, []string{"add_constraint"}, nil},
		{"create table like", "CREATE TABLE invoices (LIKE products INCLUDING COMMENTS)", nil, []string{"create_table"}, nil},
		{"create table like writable with defaults", "CREATE TABLE invoices (LIKE orders INCLUDING ALL)", nil, []string{"create_table"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plan, r := migCheck(t, tt.sql, tt.edit)
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			var kinds []string
			for _, s := range plan.Statements {
				kinds = append(kinds, s.Kind)
				if !slices.Contains(MigrationKinds, s.Kind) {
					t.Errorf("kind %q is not in MigrationKinds", s.Kind)
				}
				if s.QualifiedSQL == "" {
					t.Errorf("statement %q has no QualifiedSQL", s.SQL)
				}
			}
			if !slices.Equal(kinds, tt.kinds) {
				t.Errorf("kinds = %v, want %v", kinds, tt.kinds)
			}
			if got := migFindingCodes(plan); !slices.Equal(got, tt.findings) {
				t.Errorf("findings = %v, want %v", got, tt.findings)
			}
		})
	}
}

func TestCheckMigrationRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql  string
		code string
		edit func(*WritePolicy)
	}{
		// Input.
		{"SELEC 1", "syntax_error", nil},
		{"", "empty", nil},
		{" ; ;", "empty", nil},
		{"-- only a comment", "empty", nil},
		{strings.Repeat("DELETE FROM orders WHERE id = 1;", MaxMigrationStatements+1), "too_many_statements", nil},

		// Transaction control.
		{"BEGIN", "transaction_control", nil},
		{"START TRANSACTION READ WRITE", "transaction_control", nil},
		{"COMMIT", "transaction_control", nil},
		{"END", "transaction_control", nil},
		{"ROLLBACK", "transaction_control", nil},
		{"SAVEPOINT s", "transaction_control", nil},
		{"RELEASE SAVEPOINT s", "transaction_control", nil},
		{"ROLLBACK TO SAVEPOINT s", "transaction_control", nil},
		{"PREPARE TRANSACTION 'x'", "transaction_control", nil},
		{"COMMIT PREPARED 'x'", "transaction_control", nil},
		{"ROLLBACK PREPARED 'x'", "transaction_control", nil},
		{"INSERT INTO orders (id) VALUES (1); COMMIT; DROP TABLE customers", "transaction_control", nil},

		// Roles and privileges.
		{"CREATE ROLE r", "privileges", nil},
		{"CREATE USER u WITH PASSWORD 'p'", "privileges", nil},
		{"CREATE GROUP g", "privileges", nil},
		{"ALTER ROLE r WITH SUPERUSER", "privileges", nil},
		{"ALTER USER u SET search_path = x", "privileges", nil},
		{"ALTER GROUP g ADD USER u", "privileges", nil},
		{"DROP ROLE r", "privileges", nil},
		{"DROP USER u", "privileges", nil},
		{"DROP GROUP g", "privileges", nil},
		{"ALTER ROLE r RENAME TO s", "privileges", nil},
		{"GRANT SELECT ON orders TO r", "privileges", nil},
		{"REVOKE ALL ON orders FROM PUBLIC", "privileges", nil},
		{"GRANT admin TO agent", "privileges", nil},
		{"REVOKE admin FROM agent", "privileges", nil},
		{"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO r", "privileges", nil},
		{"SET ROLE postgres", "privileges", nil},
		{"RESET ROLE", "privileges", nil},
		{"SET SESSION AUTHORIZATION postgres", "privileges", nil},
		{"RESET SESSION AUTHORIZATION", "privileges", nil},
		{"ALTER TABLE orders OWNER TO r", "privileges", nil},
		{"ALTER FUNCTION f() OWNER TO r", "privileges", nil},
		{"REASSIGN OWNED BY a TO b", "privileges", nil},
		{"DROP OWNED BY a", "privileges", nil},

		// Settings.
		{"SET search_path = evil, public", "session_setting", nil},
		{"SET LOCAL statement_timeout = 0", "session_setting", nil},
		{"RESET statement_timeout", "session_setting", nil},
		{"RESET ALL", "session_setting", nil},
		{"SET TRANSACTION READ WRITE", "session_setting", nil},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "session_setting", nil},
		{"SET CONSTRAINTS ALL DEFERRED", "session_setting", nil},
		{"ALTER SYSTEM SET max_connections = 1", "server_config", nil},

		// Databases, tablespaces, extensions, LOAD, COPY.
		{"CREATE DATABASE d", "database", nil},
		{"DROP DATABASE d", "database", nil},
		{"ALTER DATABASE d SET work_mem = '1GB'", "database", nil},
		{"ALTER DATABASE d RENAME TO e", "database", nil},
		{"CREATE TABLESPACE t LOCATION '/tmp/t'", "tablespace", nil},
		{"DROP TABLESPACE t", "tablespace", nil},
		{"ALTER TABLESPACE t SET (random_page_cost = 1)", "tablespace", nil},
		{"CREATE EXTENSION dblink", "extension", nil},
		{"ALTER EXTENSION dblink UPDATE", "extension", nil},
		{"DROP EXTENSION dblink", "extension", nil},
		{"LOAD 'auto_explain'", "load", nil},
		{"COPY orders FROM '/etc/passwd'", "copy", nil},
		{"COPY orders TO PROGRAM 'curl evil'", "copy", nil},
		{"COPY orders FROM STDIN", "copy", nil},
		{"COPY (SELECT * FROM customers) TO STDOUT", "copy", nil},

		// DO and CALL are kinds a scope must allow.
		{"DO $$ BEGIN DELETE FROM customers; END $$", "kind_not_allowed", nil},
		{"CALL public.archive_orders(30)", "kind_not_allowed", nil},
		{"CALL archive_orders(30)", "function_not_allowed", migAllow("call")},
		{"CALL pg_catalog.dangerous()", "function_not_allowed", migAllow("call")},

		// Statements that cannot run in, or be rolled back with, a transaction.
		{"CREATE INDEX CONCURRENTLY i ON orders (status)", "not_transactional", nil},
		{"DROP INDEX CONCURRENTLY i", "not_transactional", nil},
		{"REINDEX TABLE orders", "not_transactional", nil},
		{"REINDEX INDEX CONCURRENTLY i", "not_transactional", nil},
		{"VACUUM", "not_transactional", nil},
		{"VACUUM FULL orders", "not_transactional", nil},
		{"CLUSTER orders USING orders_pkey", "not_transactional", nil},
		{"ALTER TABLE orders DETACH PARTITION orders_2020 CONCURRENTLY", "not_transactional", nil},
		{"CHECKPOINT", "not_transactional", nil},
		{"DISCARD ALL", "not_transactional", nil},

		// Session-level objects.
		{"LISTEN c", "listen_notify", nil},
		{"NOTIFY c, 'x'", "listen_notify", nil},
		{"UNLISTEN *", "listen_notify", nil},
		{"PREPARE p AS DELETE FROM orders", "prepared_statement", nil},
		{"EXECUTE p", "prepared_statement", nil},
		{"DEALLOCATE ALL", "prepared_statement", nil},
		{"DECLARE c CURSOR FOR SELECT * FROM orders", "cursor", nil},
		{"FETCH 10 FROM c", "cursor", nil},
		{"CLOSE c", "cursor", nil},
		{"LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", "lock", nil},

		// Code objects.
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "code_object", nil},
		{"CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS 'SELECT 1'", "code_object", nil},
		{"ALTER FUNCTION f() SECURITY DEFINER", "code_object", nil},
		{"CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION f()", "code_object", nil},
		{"CREATE RULE r AS ON INSERT TO orders DO INSTEAD NOTHING", "code_object", nil},
		{"CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()", "code_object", nil},
		{"CREATE POLICY p ON orders USING (true)", "code_object", nil},
		{"CREATE AGGREGATE a (int) (SFUNC = int4pl, STYPE = int)", "code_object", nil},
		{"DROP FUNCTION f()", "code_object", nil},
		{"DROP TRIGGER t ON orders", "code_object", nil},
		{"DROP POLICY p ON orders", "code_object", nil},
		{"ALTER TRIGGER t ON orders RENAME TO u", "code_object", nil},
		{"SECURITY LABEL ON TABLE orders IS 'secret'", "security_label", nil},

		// Temporary objects and CREATE TABLE AS.
		{"CREATE TEMP TABLE invoices (id int)", "temp_object", nil},
		{"CREATE UNLOGGED TABLE invoices (id int)", "temp_object", nil},
		{"CREATE TEMP VIEW invoices AS SELECT 1", "temp_object", nil},
		{"CREATE TABLE invoices AS SELECT * FROM orders", "create_table_as", nil},
		{"SELECT * INTO invoices FROM orders", "create_table_as", nil},

		// Outside the closed list.
		{"SELECT * FROM orders", "statement_not_allowed", nil},
		{"EXPLAIN ANALYZE DELETE FROM orders", "statement_not_allowed", nil},
		{"MERGE INTO orders o USING invoices i ON o.id = i.order_id WHEN MATCHED THEN DELETE", "statement_not_allowed", nil},
		{"CREATE SCHEMA s", "statement_not_allowed", nil},
		{"DROP SCHEMA public", "statement_not_allowed", nil},
		{"CREATE SEQUENCE s", "statement_not_allowed", nil},
		{"CREATE MATERIALIZED VIEW invoices AS SELECT 1", "statement_not_allowed", nil},
		{"REFRESH MATERIALIZED VIEW invoices", "statement_not_allowed", nil},
		{"ANALYZE orders", "statement_not_allowed", nil},
		{"SHOW search_path", "statement_not_allowed", nil},
		{"ALTER TABLE orders ENABLE ROW LEVEL SECURITY", "statement_not_allowed", nil},
		{"ALTER TABLE orders DISABLE TRIGGER ALL", "statement_not_allowed", nil},
		{"ALTER TABLE orders ADD COLUMN a int, DISABLE TRIGGER ALL", "statement_not_allowed", nil},
		{"ALTER TABLE orders SET SCHEMA archive", "statement_not_allowed", nil},
		{"ALTER TABLE orders SET TABLESPACE t", "statement_not_allowed", nil},
		{"ALTER VIEW invoices ALTER COLUMN id SET DEFAULT 1", "statement_not_allowed", nil},
		{"ALTER SEQUENCE orders_id_seq RENAME TO s", "statement_not_allowed", nil},
		{"COMMENT ON SCHEMA public IS 'x'", "statement_not_allowed", nil},
		{"CREATE TYPE mood AS ENUM ('a')", "statement_not_allowed", nil},

		// CASCADE and data-modifying CTEs.
		{"DROP TABLE orders CASCADE", "cascade", nil},
		{"TRUNCATE orders CASCADE", "cascade", nil},
		{"ALTER TABLE orders DROP COLUMN note CASCADE", "cascade", nil},
		{"DROP INDEX i CASCADE", "cascade", nil},
		{"WITH d AS (DELETE FROM orders RETURNING id) INSERT INTO invoices (order_id) SELECT id FROM d", "data_modifying_cte", nil},
		{"UPDATE orders SET total = 0 WHERE id IN (WITH x AS (INSERT INTO invoices DEFAULT VALUES RETURNING id) SELECT id FROM x)", "data_modifying_cte", nil},

		// Scope: kinds.
		{"DROP TABLE orders", "kind_not_allowed", func(w *WritePolicy) { w.Allow = map[string]bool{"insert": true} }},
		{"ALTER TABLE orders ADD COLUMN a int, DROP COLUMN b", "kind_not_allowed", func(w *WritePolicy) { delete(w.Allow, "drop_column") }},
		{"INSERT INTO orders (id) VALUES (1)", "kind_not_allowed", func(w *WritePolicy) { w.Allow = nil }},

		// Scope: tables written or altered.
		{"INSERT INTO customers (name) VALUES ('x')", "table_not_writable", nil},
		{"UPDATE products SET price = 0 WHERE id = 1", "table_not_writable", nil},
		{"DELETE FROM secrets WHERE true", "table_not_writable", nil},
		{"ALTER TABLE products ADD COLUMN x int", "table_not_writable", nil},
		{"CREATE TABLE secrets2 (id int)", "table_not_writable", nil},
		{"CREATE TABLE archive.invoices (id int)", "table_not_writable", nil},
		{"CREATE TABLE invoices (id int) INHERITS (customers)", "table_not_writable", nil},
		{"CREATE INDEX ON products (name)", "table_not_writable", nil},
		{"CREATE VIEW customer_view AS SELECT id FROM customers", "table_not_writable", nil},
		{"DROP TABLE customers", "table_not_writable", nil},
		{"DROP TABLE invoices, customers", "table_not_writable", nil},
		{"DROP VIEW customer_view", "table_not_writable", nil},
		{"TRUNCATE orders, customers", "table_not_writable", nil},
		{"ALTER TABLE customers RENAME TO c2", "table_not_writable", nil},
		{"ALTER TABLE customers RENAME COLUMN ssn TO x", "table_not_writable", nil},
		{"COMMENT ON TABLE products IS 'x'", "table_not_writable", nil},
		{"COMMENT ON COLUMN customers.ssn IS 'x'", "table_not_writable", nil},
		{"INSERT INTO archive.orders (id) VALUES (1)", "table_not_writable", nil},
		{"INSERT INTO otherdb.public.orders (id) VALUES (1)", "cross_database", nil},
		{"DROP TABLE otherdb.public.orders", "cross_database", nil},

		// Scope: tables read.
		{"INSERT INTO orders (note) SELECT secret FROM secrets", "table_not_in_scope", nil},
		{"UPDATE orders SET note = s.secret FROM secrets s WHERE s.id = orders.id", "table_not_in_scope", nil},
		{"DELETE FROM orders USING secrets s WHERE s.id = orders.id", "table_not_in_scope", nil},
		{"DELETE FROM orders WHERE id IN (SELECT id FROM secrets)", "table_not_in_scope", nil},
		{"UPDATE orders SET note = 'x' WHERE EXISTS (SELECT 1 FROM pg_authid)", "table_not_in_scope", nil},
		{"INSERT INTO orders (id) VALUES (1) RETURNING (SELECT count(*) FROM secrets)", "table_not_in_scope", nil},
		{"CREATE VIEW invoices AS SELECT * FROM secrets", "table_not_in_scope", nil},
		{"ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES secrets (id)", "table_not_in_scope", nil},
		{"CREATE TABLE invoices (LIKE secrets)", "table_not_in_scope", nil},
		{"INSERT INTO orders (id) SELECT id FROM otherdb.public.products", "cross_database", nil},
		// CTE names only hide tables where PostgreSQL's scoping says so.
		{"INSERT INTO orders (id) SELECT s.id FROM (WITH secrets AS (SELECT 1 AS id) SELECT id FROM secrets) s, secrets", "table_not_in_scope", nil},
		{"WITH a AS (SELECT * FROM secrets), secrets AS (SELECT 1) INSERT INTO orders (id) SELECT 1 FROM a", "table_not_in_scope", nil},
		{"WITH secrets AS (SELECT * FROM secrets) INSERT INTO orders (id) SELECT 1 FROM secrets", "table_not_in_scope", nil},

		// Columns of read tables.
		{"INSERT INTO orders (note) SELECT ssn FROM customers", "column_not_allowed", nil},
		{"INSERT INTO orders (note) SELECT c.email FROM customers c", "column_not_allowed", nil},
		{"INSERT INTO orders (note) SELECT * FROM customers", "column_not_allowed", nil},
		{"INSERT INTO orders (note) SELECT c.* FROM customers c", "column_not_allowed", nil},
		{"INSERT INTO orders (note) SELECT row_to_json(c) FROM customers c", "column_not_allowed", nil},
		{"UPDATE orders SET note = 'x' FROM customers c WHERE c.id = orders.customer_id AND c.email LIKE 'a%'", "column_not_allowed", nil},
		{"DELETE FROM orders USING customers c WHERE c.id = orders.customer_id RETURNING c.ssn", "column_not_allowed", nil},
		{"DELETE FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE phone IS NULL)", "column_not_allowed", nil},
		{"INSERT INTO orders (note) SELECT public.customers.ssn FROM public.customers", "column_not_allowed", nil},
		{"INSERT INTO orders (note) SELECT c.nonexistent FROM customers c", "column_not_allowed", nil},
		{"INSERT INTO orders (note) SELECT name FROM customers NATURAL JOIN products", "column_not_allowed", nil},
		{"INSERT INTO orders (note) SELECT c.name FROM customers c JOIN customers d USING (ssn)", "column_not_allowed", nil},
		{"ALTER TABLE orders ADD FOREIGN KEY (note) REFERENCES customers (ssn)", "column_not_allowed", nil},
		{"ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers", "column_not_allowed", nil},
		{"CREATE VIEW invoices AS SELECT id, email FROM customers", "column_not_allowed", nil},

		// Functions.
		{"INSERT INTO orders (note) VALUES (pg_read_file('/etc/passwd'))", "function_not_allowed", nil},
		{"UPDATE orders SET note = 'x' WHERE id = (SELECT pg_sleep(10))::int", "function_not_allowed", nil},
		{"DELETE FROM orders WHERE id IN (SELECT * FROM dblink_exec('x'))", "function_not_allowed", nil},
		{"INSERT INTO orders (id) VALUES (nextval('orders_id_seq'))", "function_not_allowed", nil},
		{"ALTER TABLE orders ADD CONSTRAINT c CHECK (set_config('a', 'b', false) <> '')", "function_not_allowed", nil},
		{"CREATE INDEX ON orders (pg_catalog.current_setting(note))", "function_not_allowed", nil},
		{"CREATE TABLE invoices (id int DEFAULT txid_current())", "function_not_allowed", nil},
		{"ALTER TABLE orders ALTER COLUMN total TYPE int USING pg_terminate_backend(1)::int", "function_not_allowed", nil},
		{"INSERT INTO orders (note) VALUES (evil.lower('x'))", "function_not_allowed", nil},
		{"INSERT INTO orders (note) VALUES (otherdb.public.lower('x'))", "cross_database", nil},
		{"INSERT INTO orders (note) VALUES (lower('x'))", "function_not_allowed", func(w *WritePolicy) { w.Read.Functions = nil }},
	}
	for _, tt := range tests {
		name := tt.sql
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			plan, r := migCheck(t, tt.sql, tt.edit)
			if r == nil {
				t.Fatalf("accepted (kinds %v), want refusal %s", migKinds(plan), tt.code)
			}
			if r.Code != tt.code {
				t.Fatalf("code = %s (%v), want %s", r.Code, r, tt.code)
			}
			if _, ok := MigrationRefusalCodes[r.Code]; !ok {
				t.Errorf("code %s is not documented in MigrationRefusalCodes", r.Code)
			}
		})
	}
}

func migKinds(plan *MigrationPlan) []string {
	var out []string
	for _, s := range plan.Statements {
		out = append(out, s.Kind)
	}
	return out
}

func TestCheckMigrationDetails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		sql       string
		statement int
		check     func(t *testing.T, s MigrationStatement)
	}{
		{"statement text and qualified sql", "  INSERT INTO orders (id) SELECT id FROM invoices ;\n\n -- next\nDELETE FROM orders WHERE id = 2;", 0,
			func(t *testing.T, s MigrationStatement) {
				migWant(t, "SQL", s.SQL, "INSERT INTO orders (id) SELECT id FROM invoices")
				migWant(t, "QualifiedSQL", s.QualifiedSQL, "INSERT INTO public.orders (id) SELECT id FROM public.invoices")
				migWantList(t, "Targets", s.Targets, "public.orders")
				migWantList(t, "Reads", s.Reads, "public.invoices")
			}},
		{"second statement text keeps its comment", "INSERT INTO orders (id) VALUES (1);\n -- next\nDELETE FROM orders WHERE id = 2;", 1,
			func(t *testing.T, s MigrationStatement) {
				migWant(t, "SQL", s.SQL, "-- next\nDELETE FROM orders WHERE id = 2")
				if !s.HasWhere {
					t.Error("HasWhere = false, want true")
				}
			}},
		{"offsets are bytes", "INSERT INTO orders (note) VALUES ('héllo wörld ✓');\nDELETE FROM orders WHERE note = 'ü'", 1,
			func(t *testing.T, s MigrationStatement) {
				migWant(t, "SQL", s.SQL, "DELETE FROM orders WHERE note = 'ü'")
			}},
		{"semicolon inside a string", "UPDATE orders SET note = 'a; DROP TABLE customers' WHERE id = 1", 0,
			func(t *testing.T, s MigrationStatement) {
				migWant(t, "SQL", s.SQL, "UPDATE orders SET note = 'a; DROP TABLE customers' WHERE id = 1")
			}},
		{"delete without where", "DELETE FROM orders", 0,
			func(t *testing.T, s MigrationStatement) {
				if s.HasWhere {
					t.Error("HasWhere = true, want false")
				}
				f := s.Findings[0]
				if f.Level != "danger" || f.Fix == "" || !strings.Contains(f.Message, "public.orders") {
					t.Errorf("finding = %+v", f)
				}
			}},
		{"drop index targets", "DROP INDEX orders_status_idx, archive.old_idx", 0,
			func(t *testing.T, s MigrationStatement) {
				migWantList(t, "Targets", s.Targets, "public.orders_status_idx", "archive.old_idx")
				migWantList(t, "IndexTargets", s.IndexTargets, "public.orders_status_idx", "archive.old_idx")
				migWant(t, "QualifiedSQL", s.QualifiedSQL, "DROP INDEX public.orders_status_idx, archive.old_idx")
			}},
		{"rename index targets", "ALTER INDEX orders_status_idx RENAME TO orders_state_idx", 0,
			func(t *testing.T, s MigrationStatement) {
				migWantList(t, "IndexTargets", s.IndexTargets, "public.orders_status_idx")
			}},
		{"comment on column", "COMMENT ON COLUMN orders.total IS 'cents'", 0,
			func(t *testing.T, s MigrationStatement) {
				migWantList(t, "Targets", s.Targets, "public.orders")
				migWant(t, "QualifiedSQL", s.QualifiedSQL, "COMMENT ON COLUMN public.orders.total IS 'cents'")
			}},
		{"not valid", "ALTER TABLE orders ADD CONSTRAINT c CHECK (total > 0) NOT VALID", 0,
			func(t *testing.T, s MigrationStatement) {
				if !s.NotValid {
					t.Error("NotValid = false, want true")
				}
			}},
		{"alter table kinds, strongest first", "ALTER TABLE orders ALTER COLUMN a SET DEFAULT 1, ADD COLUMN b int, ALTER COLUMN c TYPE bigint, ADD COLUMN d int", 0,
			func(t *testing.T, s MigrationStatement) {
				migWant(t, "Kind", s.Kind, "alter_column_type")
				migWantList(t, "Kinds", s.Kinds, "alter_column_type", "add_column", "set_default")
			}},
		{"foreign key target is a read", "CREATE TABLE invoices (id int, order_id int REFERENCES orders (id), c int REFERENCES customers (id))", 0,
			func(t *testing.T, s MigrationStatement) {
				migWantList(t, "Targets", s.Targets, "public.invoices")
				migWantList(t, "Reads", s.Reads, "public.orders", "public.customers")
				migWant(t, "QualifiedSQL", s.QualifiedSQL, "CREATE TABLE public.invoices (id int, order_id int REFERENCES public.orders (id), c int REFERENCES public.customers (id))")
			}},
		{"cte is not qualified", "WITH x AS (SELECT id FROM products) INSERT INTO orders (id) SELECT id FROM x", 0,
			func(t *testing.T, s MigrationStatement) {
				migWant(t, "QualifiedSQL", s.QualifiedSQL, "WITH x AS (SELECT id FROM public.products) INSERT INTO public.orders (id) SELECT id FROM x")
				migWantList(t, "Reads", s.Reads, "public.products")
			}},
		{"finding message names the column", "ALTER TABLE orders DROP COLUMN note", 0,
			func(t *testing.T, s MigrationStatement) {
				migWant(t, "Message", s.Findings[0].Message, "data loss: drops column public.orders.note")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plan, r := migCheck(t, tt.sql, nil)
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			tt.check(t, plan.Statements[tt.statement])
		})
	}
}

func migWant(t *testing.T, field, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", field, got, want)
	}
}

func migWantList(t *testing.T, field string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", field, got, want)
	}
}

func TestCheckMigrationSearchPath(t *testing.T) {
	t.Parallel()
	edit := func(w *WritePolicy) {
		w.Read.SearchPath = []string{"app", "public"}
		w.Tables["app.events"] = true
	}
	plan, r := migCheck(t, "INSERT INTO events (id) SELECT id FROM orders", edit)
	if r != nil {
		t.Fatalf("refused: %v", r)
	}
	s := plan.Statements[0]
	migWantList(t, "Targets", s.Targets, "app.events")
	migWantList(t, "Reads", s.Reads, "public.orders")

	// A new table goes to the first schema of the search path.
	if _, r := migCheck(t, "CREATE TABLE orders (id int)", edit); r == nil || r.Code != "table_not_writable" || !strings.Contains(r.Reason, "app.orders") {
		t.Errorf("CREATE TABLE orders under search path app, public: %v, want table_not_writable for app.orders", r)
	}
}

func TestCheckMigrationWithoutFunctionChecker(t *testing.T) {
	t.Parallel()
	noFunctions := func(w *WritePolicy) { w.Read.Functions = nil }
	if _, r := migCheck(t, "INSERT INTO orders (note) VALUES ('x')", noFunctions); r != nil {
		t.Errorf("statement without calls refused: %v", r)
	}
	if _, r := migCheck(t, "CREATE TABLE invoices (id int DEFAULT nextval('s'))", noFunctions); r != nil {
		t.Errorf("nextval in a column default refused: %v", r)
	}
	if _, r := migCheck(t, "INSERT INTO orders (note) VALUES (lower('x'))", noFunctions); r == nil || r.Code != "function_not_allowed" {
		t.Errorf("call without a FunctionChecker: %v, want function_not_allowed", r)
	}
	// No read policy at all: only write tables, no calls.
	w := &WritePolicy{Tables: map[string]bool{"public.orders": true}, Allow: map[string]bool{"insert": true}}
	if _, err := w.CheckMigration("INSERT INTO orders (id) SELECT id FROM orders"); err != nil {
		t.Errorf("nil Read: %v", err)
	}
}

func TestCheckMigrationVolatileDefault(t *testing.T) {
	t.Parallel()
	reporter := func(w *WritePolicy) {
		w.Read.Functions = migTestFunctions{"my_stable": 's', "my_volatile": 'v', "my_unknown": 0}
	}
	tests := []struct {
		sql     string
		edit    func(*WritePolicy)
		message string // of the PG302 finding; "" for none
	}{
		{"ALTER TABLE orders ADD COLUMN a int DEFAULT length('x')", nil, ""},
		{"ALTER TABLE orders ADD COLUMN a timestamptz DEFAULT now()", nil, ""},
		{"ALTER TABLE orders ADD COLUMN a float8 DEFAULT random()", nil, "calls random, which is volatile"},
		{"ALTER TABLE orders ADD COLUMN a timestamptz DEFAULT clock_timestamp()", nil, "calls clock_timestamp, which is not known to be non-volatile"},
		{"ALTER TABLE orders ADD COLUMN a int DEFAULT my_stable()", reporter, ""},
		{"ALTER TABLE orders ADD COLUMN a int DEFAULT my_volatile()", reporter, "calls my_volatile, which is volatile"},
		{"ALTER TABLE orders ADD COLUMN a int DEFAULT my_stable() + my_volatile()", reporter, "calls my_volatile, which is volatile"},
		{"ALTER TABLE orders ADD COLUMN a int DEFAULT 1 + 2", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			t.Parallel()
			plan, r := migCheck(t, tt.sql, tt.edit)
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			var got string
			for _, f := range plan.Statements[0].Findings {
				if f.Code == "PG302" {
					got = f.Message
				}
			}
			if tt.message == "" && got != "" || !strings.Contains(got, tt.message) {
				t.Errorf("PG302 message = %q, want it to contain %q", got, tt.message)
			}
		})
	}
}

func TestCheckMigrationDoKind(t *testing.T) {
	t.Parallel()
	_, r := migCheck(t, "DO $$ BEGIN END $$", nil)
	if r == nil || r.Code != "kind_not_allowed" || !strings.Contains(r.Hint, "plain SQL") {
		t.Fatalf("DO without kind do: %v", r)
	}
	plan, r := migCheck(t, "DO $$ BEGIN END $$", migAllow("do"))
	if r != nil {
		t.Fatalf("DO with kind do refused: %v", r)
	}
	if plan.Statements[0].Kind != "do" || plan.Statements[0].Findings[0].Code != "CD101" {
		t.Errorf("plan = %+v", plan.Statements[0])
	}
}

func TestCheckMigrationRefusalText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql          string
		edit         func(*WritePolicy)
		reason, hint string
	}{
		{"BEGIN", nil, "BEGIN controls the transaction", "airlock runs your statements in its own transaction; send only the statements"},
		{"COPY orders TO PROGRAM 'x'", nil, "COPY", "PROGRAM is never allowed"},
		{"CREATE INDEX CONCURRENTLY i ON orders (id)", nil, "CONCURRENTLY", "drop CONCURRENTLY"},
		{"VACUUM orders", nil, "VACUUM", "outside airlock after review"},
		{"CREATE TABLE invoices AS SELECT 1", nil, "CREATE TABLE ... AS", "INSERT INTO ... SELECT"},
		{"INSERT INTO orders (id) VALUES (1); GRANT admin TO agent", nil, "statement 2: GRANT/REVOKE role", "ask a human"},
		{"DROP TABLE orders", func(w *WritePolicy) { w.Allow = map[string]bool{"update": true, "insert": true} }, `"drop_table"`, "this scope allows: insert, update"},
		{"INSERT INTO products (id) VALUES (1)", nil, "public.products", "writable tables: public.invoices, public.orders"},
		{"INSERT INTO orders (id) SELECT id FROM secrets", nil, "public.secrets", "public.customers, public.invoices, public.orders, public.products"},
		{"INSERT INTO orders (note) SELECT ssn FROM customers", nil, "public.customers.ssn", "id, name, email, phone, plan"},
		{"CREATE SCHEMA s", nil, "CREATE SCHEMA is not an allowed statement kind", "create_table"},
		{"ALTER TABLE orders ENABLE ROW LEVEL SECURITY", nil, "EnableRowSecurity", "create_table"},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			t.Parallel()
			_, r := migCheck(t, tt.sql, tt.edit)
			if r == nil {
				t.Fatal("accepted, want refusal")
			}
			if !strings.Contains(r.Reason, tt.reason) || !strings.Contains(r.Hint, tt.hint) {
				t.Errorf("refusal = %q / %q, want reason with %q and hint with %q", r.Reason, r.Hint, tt.reason, tt.hint)
			}
		})
	}
}

func TestCheckMigrationFingerprint(t *testing.T) {
	t.Parallel()
	sql := "INSERT INTO orders (id) VALUES (1); DELETE FROM orders WHERE id = 2"
	plan, r := migCheck(t, sql, nil)
	if r != nil {
		t.Fatalf("refused: %v", r)
	}
	want, err := pg.Fingerprint(sql)
	if err != nil {
		t.Fatal(err)
	}
	migWant(t, "Fingerprint", plan.Fingerprint, want)
}

// TestFindingCatalog checks that every finding the guard emits is
// documented, with the level and fix the catalog gives it.
func TestFindingCatalog(t *testing.T) {
	t.Parallel()
	sqls := []string{
		"DROP TABLE invoices", "ALTER TABLE orders DROP COLUMN a", "TRUNCATE orders",
		"DELETE FROM orders", "UPDATE orders SET a = 1", "ALTER TABLE orders RENAME TO o",
		"ALTER TABLE orders RENAME COLUMN a TO b", "ALTER TABLE orders ADD COLUMN a int NOT NULL",
		"ALTER TABLE orders ALTER COLUMN a SET NOT NULL", "ALTER TABLE orders ALTER COLUMN a TYPE int",
		"ALTER TABLE orders ADD COLUMN a float8 DEFAULT random()", "CREATE INDEX ON orders (a)",
		"ALTER TABLE orders ADD CHECK (a > 0)", "DO $$ BEGIN END $$",
	}
	seen := map[string]bool{}
	for _, sql := range sqls {
		plan, r := migCheck(t, sql, migAllow("do"))
		if r != nil {
			t.Fatalf("%s refused: %v", sql, r)
		}
		for _, f := range plan.Statements[0].Findings {
			info, ok := FindingCatalog[f.Code]
			if !ok {
				t.Errorf("%s: code %s is not in FindingCatalog", sql, f.Code)
				continue
			}
			if f.Level != info.Level || f.Fix != info.Fix || f.Message == "" {
				t.Errorf("%s: finding %+v does not match catalog %+v", sql, f, info)
			}
			seen[f.Code] = true
		}
	}
	for code, info := range FindingCatalog {
		if !seen[code] {
			t.Errorf("catalog code %s is never emitted by these cases", code)
		}
		if info.Title == "" || info.Fix == "" || !slices.Contains([]string{"info", "warning", "danger"}, info.Level) {
			t.Errorf("catalog entry %s = %+v is incomplete", code, info)
		}
	}
}

func BenchmarkCheckMigration(b *testing.B) {
	w := migTestPolicy()
	sql := `CREATE TABLE invoices (id serial PRIMARY KEY, order_id int REFERENCES orders (id), amount numeric);
		CREATE INDEX ON invoices (order_id);
		INSERT INTO invoices (order_id, amount) SELECT o.id, o.total FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.plan = 'pro';
		ALTER TABLE orders ADD COLUMN note text, ALTER COLUMN status SET NOT NULL`
	for b.Loop() {
		if _, err := w.CheckMigration(sql); err != nil {
			b.Fatal(err)
		}
	}
}

// migPlaces are the places of a write statement that hold an expression,
// each with %s where one goes. The read rules must apply in every one of
// them (docs/architecture.md, Write statements: the read rules everywhere).
var migPlaces = []struct {
	name  string
	sql   string
	edit  func(*WritePolicy)
	deflt bool // a column DEFAULT, where nextval('seq') is allowed
}{
	{name: "update set", sql: "UPDATE orders SET note = (%s)::text WHERE id = 1"},
	{name: "update where", sql: "UPDATE orders SET note = 'x' WHERE (%s) IS NOT NULL"},
	{name: "update set subquery", sql: "UPDATE orders SET note = (SELECT (%s)::text FROM products LIMIT 1) WHERE id = 1"},
	{name: "update from subquery", sql: "UPDATE orders SET note = p.n FROM (SELECT (%s)::text AS n FROM products) p WHERE orders.id = 1"},
	{name: "insert values", sql: "INSERT INTO orders (note) VALUES ((%s)::text)"},
	{name: "insert select", sql: "INSERT INTO orders (note) SELECT (%s)::text FROM products"},
	{name: "insert select where", sql: "INSERT INTO orders (note) SELECT name FROM products WHERE (%s) IS NULL"},
	{name: "returning", sql: "DELETE FROM orders WHERE id = 1 RETURNING (%s)"},
	{name: "on conflict set", sql: "INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET note = (%s)::text"},
	{name: "on conflict where", sql: "INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET note = 'x' WHERE (%s) IS NULL"},
	{name: "on conflict target where", sql: "INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) WHERE (%s) IS NULL DO NOTHING"},
	{name: "delete where subquery", sql: "DELETE FROM orders WHERE id IN (SELECT id FROM products WHERE (%s) IS NOT NULL)"},
	{name: "cte", sql: "WITH x AS (SELECT (%s) AS v) INSERT INTO orders (note) SELECT v::text FROM x"},
	{name: "create table default", sql: "CREATE TABLE invoices (id int, n text DEFAULT (%s))", deflt: true},
	{name: "add column default", sql: "ALTER TABLE orders ADD COLUMN n text DEFAULT (%s)", deflt: true},
	{name: "set default", sql: "ALTER TABLE orders ALTER COLUMN note SET DEFAULT (%s)", deflt: true},
	{name: "create table check", sql: "CREATE TABLE invoices (id int CHECK ((%s) IS NOT NULL))"},
	{name: "create table table check", sql: "CREATE TABLE invoices (id int, CONSTRAINT c CHECK ((%s) IS NOT NULL))"},
	{name: "add constraint check", sql: "ALTER TABLE orders ADD CONSTRAINT c CHECK ((%s) IS NOT NULL) NOT VALID"},
	{name: "add column check", sql: "ALTER TABLE orders ADD COLUMN n int CHECK ((%s) IS NOT NULL)"},
	{name: "create table generated", sql: "CREATE TABLE invoices (id int, g text GENERATED ALWAYS AS ((%s)::text) STORED)"},
	{name: "add column generated", sql: "ALTER TABLE orders ADD COLUMN g text GENERATED ALWAYS AS ((%s)::text) STORED"},
	{name: "index expression", sql: "CREATE INDEX ON orders (((%s)))"},
	{name: "index predicate", sql: "CREATE INDEX ON orders (status) WHERE (%s) IS NOT NULL"},
	{name: "unique constraint predicate", sql: "ALTER TABLE orders ADD CONSTRAINT x EXCLUDE USING btree (status WITH =) WHERE ((%s) IS NOT NULL)"},
	{name: "exclusion expression", sql: "ALTER TABLE orders ADD CONSTRAINT x EXCLUDE USING gist (((%s)) WITH =)"},
	{name: "alter column type using", sql: "ALTER TABLE orders ALTER COLUMN note TYPE text USING (%s)::text"},
	{name: "view body", sql: "CREATE VIEW invoices AS SELECT (%s) AS x FROM products"},
	{name: "view where", sql: "CREATE VIEW invoices AS SELECT id FROM products WHERE (%s) IS NOT NULL"},
	{name: "partition bound", sql: "CREATE TABLE invoices PARTITION OF orders FOR VALUES IN ((%s))"},
	{name: "call argument", sql: "CALL public.archive_orders((%s))", edit: migAllow("call")},
}

// migClasses are expressions that reach outside the scope, each with the
// refusal it must get in every place.
var migClasses = []struct {
	name, expr, code string
}{
	{"out-of-scope table", "(SELECT token FROM secrets LIMIT 1)", "table_not_in_scope"},
	{"out-of-scope table in another schema", "(SELECT key FROM internal.api_keys LIMIT 1)", "table_not_in_scope"},
	{"catalog table", "(SELECT rolpassword FROM pg_authid LIMIT 1)", "table_not_in_scope"},
	{"denied column", "(SELECT ssn FROM customers LIMIT 1)", "column_not_allowed"},
	{"masked column", "(SELECT email FROM customers LIMIT 1)", "column_not_allowed"},
	{"whole row of a restricted table", "(SELECT row_to_json(c) FROM customers c LIMIT 1)", "column_not_allowed"},
	{"pg_read_file", "pg_read_file('/etc/passwd')", "function_not_allowed"},
	{"pg_sleep", "pg_sleep(10)", "function_not_allowed"},
	{"set_config", "set_config('search_path', 'evil', true)", "function_not_allowed"},
	{"to_regclass", "to_regclass('public.secrets')", "function_not_allowed"},
	{"function in another schema", "public.leak_secrets()", "function_not_allowed"},
	{"nextval outside a default", "nextval('orders_id_seq')", "function_not_allowed"},
	{"regclass cast", "'public.secrets'::regclass", "type_not_allowed"},
	{"qualified regclass cast", "CAST('public.secrets' AS pg_catalog.regclass)", "type_not_allowed"},
	{"regclass array cast", "'{public.secrets}'::regclass[]", "type_not_allowed"},
	{"regproc cast", "'public.evil_write'::regproc", "type_not_allowed"},
	{"regrole cast", "'postgres'::regrole", "type_not_allowed"},
	{"regnamespace cast", "'internal'::regnamespace", "type_not_allowed"},
	{"xml cast", "'<a/>'::xml", "type_not_allowed"},
	{"xml expression", "xmlparse(document '<a/>')", "function_not_allowed"},
	{"type of another schema", "'x'::internal.secret_type", "type_not_allowed"},
	{"type of another database", "'x'::otherdb.public.t", "type_not_allowed"},
	{"operator of another schema", "1 OPERATOR(public.+) 1", "operator_not_allowed"},
	{"operator of another schema in ANY", "1 OPERATOR(public.=) ANY ('{1}'::int[])", "operator_not_allowed"},
	{"operator of another schema on a subquery", "1 OPERATOR(public.=) ANY (SELECT id FROM products)", "operator_not_allowed"},
	{"collation of another schema", "'a' COLLATE public.evil", "collation_not_allowed"},
	{"regclass cast in a subquery", "(SELECT 'public.secrets'::regclass FROM products LIMIT 1)", "type_not_allowed"},
}

func TestCheckMigrationReadRulesEverywhere(t *testing.T) {
	t.Parallel()
	for _, p := range migPlaces {
		for _, cl := range migClasses {
			if p.deflt && strings.HasPrefix(cl.expr, "nextval(") {
				continue // below
			}
			sql := fmt.Sprintf(p.sql, cl.expr)
			t.Run(p.name+"/"+cl.name, func(t *testing.T) {
				t.Parallel()
				plan, r := migCheck(t, sql, p.edit)
				if r == nil {
					t.Fatalf("accepted %q (kinds %v), want refusal %s", sql, migKinds(plan), cl.code)
				}
				if r.Code != cl.code {
					t.Fatalf("%q: code = %s (%v), want %s", sql, r.Code, r, cl.code)
				}
				if _, ok := MigrationRefusalCodes[r.Code]; !ok {
					t.Errorf("code %s is not documented in MigrationRefusalCodes", r.Code)
				}
			})
		}
		// A DEFAULT may name a sequence, which the caller must find owned
		// by a writable table; everywhere else nextval is refused.
		t.Run(p.name+"/nextval of another sequence", func(t *testing.T) {
			t.Parallel()
			sql := fmt.Sprintf(p.sql, "nextval('public.other_seq')")
			plan, r := migCheck(t, sql, p.edit)
			if !p.deflt {
				if r == nil || r.Code != "function_not_allowed" {
					t.Fatalf("%q: %v, want function_not_allowed", sql, r)
				}
				return
			}
			if r != nil {
				t.Fatalf("%q refused: %v", sql, r)
			}
			migWantList(t, "Sequences", plan.Statements[0].Sequences, "public.other_seq")
		})
	}
}

func TestCheckMigrationNameRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql  string
		code string // "" when accepted
		edit func(*WritePolicy)
	}{
		// Column types: a reg* column makes every literal insert a name
		// lookup, xml every insert a run of the XML parser.
		{"CREATE TABLE invoices (id int, r regclass)", "type_not_allowed", nil},
		{"CREATE TABLE invoices (id int, r pg_catalog.regoper[])", "type_not_allowed", nil},
		{"ALTER TABLE orders ADD COLUMN r regclass", "type_not_allowed", nil},
		{"ALTER TABLE orders ADD COLUMN r regtype DEFAULT 'int4'", "type_not_allowed", nil},
		{"ALTER TABLE orders ADD COLUMN x xml", "type_not_allowed", nil},
		{"ALTER TABLE orders ALTER COLUMN note TYPE regclass USING note::regclass", "type_not_allowed", nil},
		{"ALTER TABLE orders ALTER COLUMN note TYPE regclass", "type_not_allowed", nil},
		{"ALTER TABLE orders ADD COLUMN x internal.secret_type", "type_not_allowed", nil},
		{"CREATE TABLE invoices OF internal.t", "type_not_allowed", nil},
		{"CREATE TABLE invoices (id int, t text COLLATE public.evil)", "collation_not_allowed", nil},
		{"ALTER TABLE orders ALTER COLUMN note TYPE text COLLATE public.evil", "collation_not_allowed", nil},
		{"CREATE INDEX ON orders (note COLLATE public.evil)", "collation_not_allowed", nil},
		{"CREATE INDEX ON orders (note internal.evil_ops)", "opclass_not_allowed", nil},
		{"ALTER TABLE orders ADD CONSTRAINT x EXCLUDE USING gist (note internal.evil_ops WITH =)", "opclass_not_allowed", nil},
		{"ALTER TABLE orders ADD CONSTRAINT x EXCLUDE USING gist (status WITH OPERATOR(public.=))", "operator_not_allowed", nil},
		{"INSERT INTO orders (id) SELECT id FROM products ORDER BY id USING OPERATOR(public.<)", "operator_not_allowed", nil},
		{"INSERT INTO orders (id) SELECT id FROM products WHERE name OPERATOR(evil.~~) 'a%'", "operator_not_allowed", nil},
		{"INSERT INTO orders (note) SELECT xmlserialize(content '<a/>' AS text)", "function_not_allowed", nil},
		{"INSERT INTO orders (note) SELECT x FROM XMLTABLE('/a' PASSING '<a/>' COLUMNS x text)", "function_not_allowed", nil},
		{"UPDATE orders SET note = 'x' WHERE '<a/>' IS DOCUMENT", "function_not_allowed", nil},
		// CREATE TABLE ... LIKE copies what the statement does not show.
		{"CREATE TABLE invoices (LIKE customers)", "like_not_allowed", nil},
		{"CREATE TABLE invoices (LIKE customers EXCLUDING ALL)", "like_not_allowed", nil},
		{"CREATE TABLE invoices (LIKE products INCLUDING DEFAULTS)", "like_not_allowed", nil},
		{"CREATE TABLE invoices (LIKE products INCLUDING CONSTRAINTS)", "like_not_allowed", nil},
		{"CREATE TABLE invoices (LIKE products INCLUDING GENERATED)", "like_not_allowed", nil},
		{"CREATE TABLE invoices (LIKE products INCLUDING INDEXES)", "like_not_allowed", nil},
		{"CREATE TABLE invoices (LIKE products INCLUDING STATISTICS)", "like_not_allowed", nil},
		{"CREATE TABLE invoices (LIKE products INCLUDING ALL)", "like_not_allowed", nil},
		{"CREATE TABLE invoices (LIKE products INCLUDING ALL EXCLUDING DEFAULTS EXCLUDING CONSTRAINTS EXCLUDING GENERATED EXCLUDING INDEXES EXCLUDING STATISTICS)", "", nil},
		{"CREATE TABLE invoices (LIKE products INCLUDING COMMENTS INCLUDING STORAGE INCLUDING IDENTITY)", "", nil},
		{"CREATE TABLE invoices (LIKE orders INCLUDING ALL)", "", nil},
		// Code objects stay refused.
		{"CREATE FUNCTION public.upper(integer) RETURNS text LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'", "code_object", nil},
		{"CREATE OPERATOR public.+ (LEFTARG = int, RIGHTARG = text, FUNCTION = f)", "statement_not_allowed", nil},
		{"CREATE OPERATOR CLASS c FOR TYPE int USING btree AS OPERATOR 1 <", "statement_not_allowed", nil},
		{"CREATE COLLATION public.evil (locale = 'C')", "statement_not_allowed", nil},
		{"CREATE DOMAIN d AS int CHECK (VALUE > 0)", "statement_not_allowed", nil},
		// What must keep working.
		{"CREATE TABLE invoices (id serial PRIMARY KEY, n bigserial, s smallserial)", "", nil},
		{"CREATE TABLE invoices (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, o bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 10))", "", nil},
		{"CREATE TABLE invoices (id int, created timestamptz NOT NULL DEFAULT now(), u uuid DEFAULT gen_random_uuid())", "", nil},
		{"CREATE TABLE invoices (id int, price numeric CHECK (price > 0), a int, b int GENERATED ALWAYS AS (a * 2) STORED)", "", nil},
		{"CREATE TABLE invoices (id int, c public.product_category, d pg_catalog.int4, e text[], f double precision, g timestamp(3) with time zone, h \"char\", i interval hour to minute)", "", nil},
		{"CREATE TABLE invoices (id int, t text COLLATE \"C\", u text COLLATE pg_catalog.\"default\")", "", nil},
		{"ALTER TABLE orders ADD COLUMN c product_category NOT NULL DEFAULT 'software'", "", nil},
		{"ALTER TABLE orders ADD COLUMN c public.product_category", "", nil},
		{"ALTER TABLE orders ALTER COLUMN total TYPE numeric(14,2) USING total::numeric(14,2)", "", nil},
		{"CREATE INDEX ON orders (lower(note))", "", nil},
		{"CREATE INDEX ON orders (status) WHERE status = 'pending' AND total > 0", "", nil},
		{"CREATE INDEX ON orders (note text_pattern_ops, status COLLATE \"C\" pg_catalog.text_ops)", "", nil},
		{"CREATE INDEX ON orders USING gin (note public.gin_trgm_ops)", "", nil},
		{"ALTER TABLE orders ADD CONSTRAINT x EXCLUDE USING gist (customer_id WITH =, tstzrange(created_at, created_at) WITH &&)", "", nil},
		{"ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total > 0 AND status IN ('a', 'b') AND note NOT LIKE 'x%')", "", nil},
		{"CREATE VIEW invoices AS SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.plan = 'pro'", "", nil},
		{"CREATE VIEW invoices AS SELECT id, name, price FROM products", "", nil},
		{"UPDATE orders SET note = 'x' WHERE id = 1 RETURNING id, note, total OPERATOR(pg_catalog.+) 1", "", nil},
		{"INSERT INTO orders (note) SELECT name COLLATE pg_catalog.\"C\" FROM products ORDER BY name USING OPERATOR(pg_catalog.<)", "", nil},
		{"UPDATE orders SET note = 'x'::text::varchar(10), total = '1'::pg_catalog.numeric WHERE id = '1'::int8", "", nil},
		// A writable table with masked columns: RETURNING and the
		// statement's own expressions cannot read them either.
		{"UPDATE orders SET total = 0 WHERE id = 1 RETURNING note", "column_not_allowed", migMaskOrdersNote},
		{"INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET total = 1 WHERE orders.note = 'x'", "column_not_allowed", migMaskOrdersNote},
		{"ALTER TABLE orders ADD CONSTRAINT c CHECK (note <> 'x') NOT VALID", "column_not_allowed", migMaskOrdersNote},
		{"CREATE INDEX ON orders (lower(note))", "column_not_allowed", migMaskOrdersNote},
		{"UPDATE orders SET total = 0 WHERE id = 1 RETURNING id, total", "", migMaskOrdersNote},
		// View bodies follow the table and column rules.
		{"CREATE VIEW invoices AS SELECT id, ssn FROM customers", "column_not_allowed", nil},
		{"CREATE VIEW invoices AS SELECT c.* FROM customers c", "column_not_allowed", nil},
		{"CREATE VIEW invoices AS SELECT id FROM customers WHERE email LIKE '%@x.com'", "column_not_allowed", nil},
		{"CREATE VIEW invoices AS SELECT token FROM secrets", "table_not_in_scope", nil},
		{"CREATE VIEW invoices AS SELECT * FROM public.secret_view", "table_not_in_scope", nil},
		{"CREATE VIEW invoices AS SELECT id FROM products UNION SELECT id FROM internal.api_keys", "table_not_in_scope", nil},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			t.Parallel()
			plan, r := migCheck(t, tt.sql, tt.edit)
			switch {
			case tt.code == "" && r != nil:
				t.Fatalf("refused: %v", r)
			case tt.code == "":
				if plan.Statements[0].QualifiedSQL == "" {
					t.Error("no QualifiedSQL")
				}
			case r == nil:
				t.Fatalf("accepted (kinds %v), want refusal %s", migKinds(plan), tt.code)
			case r.Code != tt.code:
				t.Fatalf("code = %s (%v), want %s", r.Code, r, tt.code)
			}
			if r != nil {
				if _, ok := MigrationRefusalCodes[r.Code]; !ok {
					t.Errorf("code %s is not documented in MigrationRefusalCodes", r.Code)
				}
			}
		})
	}
}

// migMaskOrdersNote masks orders.note, a column of a writable table.
func migMaskOrdersNote(w *WritePolicy) {
	o := *w.Read.Tables["public.orders"]
	o.Columns = migCols(map[string]Access{"note": Masked}, "id", "customer_id", "total", "status", "note", "created_at")
	o.Restricted = true
	tables := map[string]*Table{}
	for k, v := range w.Read.Tables {
		tables[k] = v
	}
	tables["public.orders"] = &o
	w.Read.Tables = tables
}

func TestCheckMigrationNextval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql       string
		sequences []string // nil with qualified "" for a refusal
		qualified string   // QualifiedSQL, or "" to skip
	}{
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('orders_id_seq'::regclass)", []string{"public.orders_id_seq"},
			`ALTER TABLE public.orders ALTER COLUMN id SET DEFAULT pg_catalog.nextval('"public"."orders_id_seq"'::regclass)`},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('orders_id_seq')", []string{"public.orders_id_seq"},
			`ALTER TABLE public.orders ALTER COLUMN id SET DEFAULT pg_catalog.nextval('"public"."orders_id_seq"')`},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT pg_catalog.nextval('public.orders_id_seq'::pg_catalog.regclass)", []string{"public.orders_id_seq"}, ""},
		{`CREATE TABLE invoices (id bigint DEFAULT nextval('"Odd ""Seq"""'), n int DEFAULT nextval('app.s') + 1)`, []string{`public.Odd "Seq"`, "app.s"},
			`CREATE TABLE public.invoices (id bigint DEFAULT pg_catalog.nextval('"public"."Odd ""Seq"""'), n int DEFAULT pg_catalog.nextval('"app"."s"') OPERATOR(pg_catalog.+) 1)`},
		{"ALTER TABLE orders ADD COLUMN n bigint DEFAULT nextval('  public . ticket_seq ')", []string{"public.ticket_seq"}, ""},
		{"ALTER TABLE orders ADD COLUMN n bigint DEFAULT nextval('public.ticket_seq'), ADD COLUMN m bigint DEFAULT nextval('public.ticket_seq')", []string{"public.ticket_seq"}, ""},
		// Refused: anything but one sequence name as a literal.
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval(note::regclass)", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('a' || 'b')", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('s'::text)", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval(('s'::regclass)::text)", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('s'::regclass::regclass)", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('s'::public.regclass)", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval(NULL)", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval(VARIADIC ARRAY['s'])", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('a, b')", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('a; DROP TABLE orders')", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('a WHERE true')", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('otherdb.public.s')", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('\"a.b\"')", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('')", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('ONLY s')", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('s', 1)", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT evil.nextval('s')", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT currval('orders_id_seq')", nil, ""},
		{"ALTER TABLE orders ALTER COLUMN id SET DEFAULT setval('orders_id_seq', 1)", nil, ""},
		{"ALTER TABLE orders ADD CONSTRAINT c CHECK (nextval('orders_id_seq') > 0)", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			t.Parallel()
			plan, r := migCheck(t, tt.sql, nil)
			if tt.sequences == nil {
				if r == nil || r.Code != "function_not_allowed" {
					t.Fatalf("%v, want function_not_allowed", r)
				}
				return
			}
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			s := plan.Statements[0]
			migWantList(t, "Sequences", s.Sequences, tt.sequences...)
			if tt.qualified != "" {
				migWant(t, "QualifiedSQL", s.QualifiedSQL, tt.qualified)
			}
		})
	}
}

// TestCheckMigrationQualifiedCode: QualifiedSQL, what runs, names every
// unqualified function and operator in pg_catalog, in every place.
func TestCheckMigrationQualifiedCode(t *testing.T) {
	t.Parallel()
	tests := []struct{ sql, want string }{
		{"UPDATE orders SET note = upper(note) WHERE id = 1",
			"UPDATE public.orders SET note = pg_catalog.upper(note) WHERE id OPERATOR(pg_catalog.=) 1"},
		{"INSERT INTO orders (total) SELECT count(*) FROM products",
			"INSERT INTO public.orders (total) SELECT pg_catalog.count(*) FROM public.products"},
		{"INSERT INTO orders (id, total) SELECT row_number() OVER (ORDER BY id), sum(price) OVER w FROM products WINDOW w AS (PARTITION BY name)",
			"INSERT INTO public.orders (id, total) SELECT pg_catalog.row_number() OVER (ORDER BY id), pg_catalog.sum(price) OVER w FROM public.products WINDOW w AS (PARTITION BY name)"},
		{"UPDATE orders SET note = substring(note from 1 for 2) || trim(both 'x' from note) WHERE extract(year from created_at) > 2000",
			"UPDATE public.orders SET note = SUBSTRING(note FROM 1 FOR 2) OPERATOR(pg_catalog.||) TRIM (BOTH 'x' FROM note) WHERE extract ('year' FROM created_at) OPERATOR(pg_catalog.>) 2000"},
		{"UPDATE orders SET note = 'x' WHERE note LIKE 'a%' OR note NOT ILIKE 'b' OR note SIMILAR TO 'c' OR note LIKE 'd!%' ESCAPE '!'",
			"UPDATE public.orders SET note = 'x' WHERE note OPERATOR(pg_catalog.~~) 'a%' OR note OPERATOR(pg_catalog.!~~*) 'b' OR note OPERATOR(pg_catalog.~) pg_catalog.similar_to_escape('c') OR note OPERATOR(pg_catalog.~~) pg_catalog.like_escape('d!%', '!')"},
		{"DELETE FROM orders WHERE id IN (SELECT id FROM products) AND id NOT IN (SELECT id FROM invoices) AND id = ANY ('{1}') AND id <> ALL (SELECT 2)",
			"DELETE FROM public.orders WHERE id OPERATOR(pg_catalog.=) ANY (SELECT id FROM public.products) AND NOT id OPERATOR(pg_catalog.=) ANY (SELECT id FROM public.invoices) AND id OPERATOR(pg_catalog.=) ANY('{1}') AND id OPERATOR(pg_catalog.<>) ALL (SELECT 2)"},
		{"UPDATE orders SET total = -total + 2 * 3 WHERE (id, total) < (1, 2)",
			"UPDATE public.orders SET total = (OPERATOR(pg_catalog.-) total) OPERATOR(pg_catalog.+) (2 OPERATOR(pg_catalog.*) 3) WHERE (id, total) OPERATOR(pg_catalog.<) (1, 2)"},
		{"CREATE TABLE invoices (id int DEFAULT abs(1), a int CHECK (a > 0), b int GENERATED ALWAYS AS (a * 2) STORED)",
			"CREATE TABLE public.invoices (id int DEFAULT pg_catalog.abs(1), a int CHECK (a OPERATOR(pg_catalog.>) 0), b int GENERATED ALWAYS AS (a OPERATOR(pg_catalog.*) 2) STORED)"},
		{"CREATE INDEX i ON orders (lower(note)) WHERE total > 0",
			"CREATE INDEX i ON public.orders USING btree (pg_catalog.lower(note)) WHERE total OPERATOR(pg_catalog.>) 0"},
		{"ALTER TABLE orders ADD CONSTRAINT x EXCLUDE USING gist (customer_id WITH =)",
			"ALTER TABLE public.orders ADD CONSTRAINT x EXCLUDE USING gist (customer_id WITH pg_catalog.=)"},
		{"INSERT INTO orders (id) SELECT id FROM products ORDER BY id USING <",
			"INSERT INTO public.orders (id) SELECT id FROM public.products ORDER BY id USING OPERATOR(pg_catalog.<)"},
		{"CREATE VIEW invoices AS SELECT lower(name) AS n FROM products WHERE price > 1",
			"CREATE VIEW public.invoices AS SELECT pg_catalog.lower(name) AS n FROM public.products WHERE price OPERATOR(pg_catalog.>) 1"},
		{"ALTER TABLE orders ALTER COLUMN total TYPE int USING round(total)::int",
			"ALTER TABLE public.orders ALTER COLUMN total TYPE int USING pg_catalog.round(total)::int"},
		{"CALL public.archive_orders(abs(1))", "CALL public.archive_orders(pg_catalog.abs(1))"},
		// Fixed names stay as PostgreSQL's grammar has them.
		{"UPDATE orders SET note = nullif(note, '') WHERE id IN (1, 2) AND total BETWEEN 1 AND 2 AND note IS DISTINCT FROM 'x'",
			"UPDATE public.orders SET note = NULLIF(note, '') WHERE id IN (1, 2) AND total BETWEEN 1 AND 2 AND note IS DISTINCT FROM 'x'"},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			t.Parallel()
			plan, r := migCheck(t, tt.sql, migAllow("call"))
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			migWant(t, "QualifiedSQL", plan.Statements[0].QualifiedSQL, tt.want)
		})
	}
}

func TestCheckMigrationDoBlock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql, code, body string
	}{
		{"DO $$ BEGIN UPDATE orders SET note = 'x' WHERE id = 1; END $$", "", " BEGIN UPDATE orders SET note = 'x' WHERE id = 1; END "},
		{"DO LANGUAGE plpgsql $body$ DECLARE n int; BEGIN n := 1; END $body$", "", " DECLARE n int; BEGIN n := 1; END "},
		{"DO $$ BEGIN END $$ LANGUAGE plpgsql", "", " BEGIN END "},
		{"DO $$ BEGIN SELEC 1; END $$", "syntax_error", ""},
		{"DO $$ BEGI END $$", "syntax_error", ""},
		{"DO $$ DECLARE x int; BEGIN x := 1 +; END $$", "syntax_error", ""},
		{"DO LANGUAGE plperlu $$ system('id') $$", "code_object", ""},
		{"DO LANGUAGE sql $$ SELECT 1 $$", "code_object", ""},
		{"DO LANGUAGE 'PLpgSQL' $$ BEGIN END $$", "code_object", ""},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			t.Parallel()
			plan, r := migCheck(t, tt.sql, migAllow("do"))
			if tt.code != "" {
				if r == nil || r.Code != tt.code {
					t.Fatalf("%v, want %s", r, tt.code)
				}
				return
			}
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			migWant(t, "DoBody", plan.Statements[0].DoBody, tt.body)
		})
	}
	// Without kind do, the language is not the first thing said.
	if _, r := migCheck(t, "DO LANGUAGE plperlu $$ x $$", nil); r == nil || r.Code != "kind_not_allowed" {
		t.Errorf("DO without kind do: %v, want kind_not_allowed", r)
	}
	plan, r := migCheck(t, "INSERT INTO orders (id) VALUES (1)", nil)
	if r != nil || plan.Statements[0].DoBody != "" {
		t.Errorf("INSERT: %v, DoBody %q", r, plan.Statements[0].DoBody)
	}
}

// TestCheckMigrationFieldNotation: t.f and (t).f with no column f are the
// call f(t), looked up through the search path; they are refused where the
// guard knows t's columns, and columns the migration adds count.
func TestCheckMigrationFieldNotation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql  string
		code string
	}{
		{"UPDATE orders o SET note = o.leak WHERE id = 1", "column_not_allowed"},
		{"UPDATE orders SET note = orders.leak WHERE id = 1", "column_not_allowed"},
		{"UPDATE orders SET note = public.orders.leak WHERE id = 1", "column_not_allowed"},
		{"UPDATE orders SET note = (orders).leak WHERE id = 1", "column_not_allowed"},
		{"UPDATE orders o SET note = (o.*).leak WHERE id = 1", "column_not_allowed"},
		{"INSERT INTO orders (note) SELECT p.leak FROM products p", "column_not_allowed"},
		{"DELETE FROM orders WHERE id = 1 RETURNING orders.leak", "column_not_allowed"},
		{"INSERT INTO orders (note) SELECT (ROW(1)).leak", "function_not_allowed"},
		{"UPDATE orders o SET note = o.status WHERE o.ctid = '(0,1)' AND (o).id = 1", ""},
		{"ALTER TABLE orders ADD COLUMN a int, ADD CONSTRAINT c CHECK (orders.a > 0)", ""},
		{"ALTER TABLE orders ADD COLUMN region text; UPDATE orders SET region = 'eu' WHERE orders.region IS NULL", ""},
		{"ALTER TABLE orders RENAME COLUMN note TO memo; UPDATE orders SET memo = 'x' WHERE orders.memo IS NULL", ""},
		{"UPDATE orders SET note = 'x' WHERE orders.region IS NULL; ALTER TABLE orders ADD COLUMN region text", "column_not_allowed"},
		{"UPDATE orders SET note = p.n FROM (SELECT name AS n FROM products) p WHERE orders.id = 1", ""},
		{"CREATE TABLE invoices (a int, CHECK (invoices.a > 0))", ""},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			t.Parallel()
			_, r := migCheck(t, tt.sql, nil)
			switch {
			case tt.code == "" && r != nil:
				t.Fatalf("refused: %v", r)
			case tt.code != "" && (r == nil || r.Code != tt.code):
				t.Fatalf("%v, want %s", r, tt.code)
			}
		})
	}
}

// TestSearchPathOperators: the statements whose syntax cannot name a
// qualified operator list the operators PostgreSQL will look up through
// the search path; the caller checks the catalog for same-named ones.
func TestSearchPathOperators(t *testing.T) {
	for _, tt := range []struct {
		sql  string
		want []string
	}{
		{"UPDATE orders SET note = 'x' WHERE id = 1", nil},
		{"UPDATE orders SET note = 'x' WHERE id IN (1, 2)", []string{"="}},
		{"UPDATE orders SET note = 'x' WHERE id NOT IN (1, 2)", []string{"<>"}},
		{"UPDATE orders SET note = 'x' WHERE id BETWEEN 1 AND 2", []string{"<=", ">=", "<", ">"}},
		{"UPDATE orders SET note = 'x' WHERE id NOT BETWEEN SYMMETRIC 2 AND 1", []string{"<=", ">=", "<", ">"}},
		{"UPDATE orders SET note = 'x' WHERE id IS DISTINCT FROM 1", []string{"="}},
		{"UPDATE orders SET note = 'x' WHERE id IS NOT DISTINCT FROM 1", []string{"="}},
		{"UPDATE orders SET note = NULLIF(note, 'x') WHERE id = 1", []string{"="}},
		{"UPDATE orders SET note = CASE status WHEN 'a' THEN 'b' END WHERE id = 1", []string{"="}},
		{"UPDATE orders SET note = CASE WHEN status = 'a' THEN 'b' END WHERE id = 1", nil},
		{"INSERT INTO invoices (id) SELECT o.id FROM orders o JOIN products p USING (id)", []string{"="}},
		{"INSERT INTO invoices (id) SELECT o.id FROM orders o NATURAL JOIN products p", []string{"="}},
	} {
		plan, r := migCheck(t, tt.sql, nil)
		if r != nil {
			t.Fatalf("%s: %v", tt.sql, r)
		}
		if got := plan.Statements[0].SearchPathOperators; !slices.Equal(got, tt.want) {
			t.Errorf("%s: SearchPathOperators = %q, want %q", tt.sql, got, tt.want)
		}
	}
}
