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
					"nextval": 'v',
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
		{"create table like", "CREATE TABLE invoices (LIKE products INCLUDING DEFAULTS)", nil, []string{"create_table"}, nil},
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
