package pgtest

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestFingerprintStable(t *testing.T) {
	url := NewDatabase(t)
	// A live session that only reads must not disturb the fingerprint.
	Connect(t, url)
	start := time.Now()
	a := Fingerprint(t, url)
	elapsed := time.Since(start)
	b := Fingerprint(t, url)
	if d := a.Diff(b); d != "" {
		t.Errorf("two fingerprints of an unchanged database differ:\n%s", d)
	}
	t.Logf("fingerprint of the seed database: %d items in %v", len(a.Items), elapsed)
	if elapsed > time.Second {
		t.Errorf("fingerprint took %v, want well under a second", elapsed)
	}
	for _, key := range []string{
		"rows public.customers", "rows public.secrets", "rows internal.api_keys",
		"column public.customers.ssn", "index public.orders_open_idx", "view public.secret_view",
		"function public.evil_write()", "function public.evil_proc()", "type public.product_category",
		"sequence_value public.ticket_seq", "constraint public.invoices.invoices_order_id_fkey",
		"role postgres", "database postgres", "file_setting pgcluster.conf:max_prepared_transactions",
	} {
		if _, ok := a.Items[key]; !ok && (key != "file_setting pgcluster.conf:max_prepared_transactions" || Cluster() != nil) {
			t.Errorf("fingerprint has no %q", key)
		}
	}
	if v := a.Items["rows public.customers"]; !strings.HasPrefix(v, "count=1000 md5=") {
		t.Errorf("rows public.customers = %q", v)
	}
}

func TestFingerprintDiff(t *testing.T) {
	role := "pgtest_fp_role_" + runID
	otherDB := "airlock_fp_db_" + runID
	tests := []struct {
		name string
		// change alters the database at url; it may keep sessions open
		// with Connect until the test ends.
		change func(t *testing.T, url string)
		// want lists the prefixes of the lines the diff must have, and of
		// the only lines it may have.
		want []string
	}{
		{
			name:   "inserted row",
			change: sqlChange("INSERT INTO products VALUES (13, 'SW-NEW', 'New', 'software', 1.00, true)"),
			want:   []string{"~ rows public.products: count=12 md5="},
		},
		{
			name:   "updated PII",
			change: sqlChange("UPDATE customers SET email = 'x@example.org' WHERE id = 500"),
			want:   []string{"~ rows public.customers:"},
		},
		{
			name:   "new table",
			change: sqlChange("CREATE TABLE public.extra (id int)"),
			want:   []string{"+ relation public.extra:", "+ column public.extra.id:", "+ rows public.extra: count=0"},
		},
		{
			name:   "added column",
			change: sqlChange("ALTER TABLE customers ADD COLUMN nickname text"),
			want:   []string{"+ column public.customers.nickname:", "~ rows public.customers:"},
		},
		{
			name:   "new index",
			change: sqlChange("CREATE INDEX products_name_idx ON products (name)"),
			want:   []string{"+ index public.products_name_idx:"},
		},
		{
			name:   "replaced function",
			change: sqlChange("CREATE OR REPLACE FUNCTION public.leak_secrets() RETURNS SETOF text LANGUAGE sql STABLE AS $$ SELECT 'nothing' $$"),
			want:   []string{"~ function public.leak_secrets():"},
		},
		{
			name:   "grant",
			change: sqlChange("GRANT SELECT ON secrets TO PUBLIC"),
			want:   []string{"~ relation public.secrets:"},
		},
		{
			name:   "new role",
			change: cleanedChange("CREATE ROLE "+role+" LOGIN PASSWORD 'hunter2'", "DROP ROLE "+role),
			want:   []string{"+ role " + role + ":", "+ role_password " + role + ":"},
		},
		{
			name:   "changed sequence",
			change: sqlChange("SELECT nextval('ticket_seq')"),
			want:   []string{"~ sequence_value public.ticket_seq: last_value=1000 is_called=f → last_value=1000 is_called=t"},
		},
		{
			name:   "large object",
			change: sqlChange("SELECT lo_from_bytea(0, 'exfiltrated')"),
			want:   []string{"+ large_object_meta ", "+ large_object "},
		},
		{
			name: "prepared transaction",
			change: func(t *testing.T, url string) {
				conn := Connect(t, url)
				for _, sql := range []string{"BEGIN", "UPDATE products SET price = 0 WHERE id = 1", "PREPARE TRANSACTION 'pgtest_fp_" + runID + "'"} {
					if _, err := conn.Exec(context.Background(), sql); err != nil {
						t.Fatalf("%s: %v", sql, err)
					}
				}
			},
			want: []string{"+ prepared_xact pgtest_fp_" + runID + ":"},
		},
		{
			name:   "leaked temporary table",
			change: sessionChange("CREATE TEMP TABLE leak (id int)"),
			want:   []string{"+ relation pg_temp_", "+ column pg_temp_"},
		},
		{
			name:   "held advisory lock",
			change: sessionChange("SELECT pg_advisory_lock(42)"),
			want:   []string{"+ advisory_lock 0:42:1 ExclusiveLock granted=t: holders=1"},
		},
		{
			name:   "ALTER SYSTEM",
			change: cleanedChange("ALTER SYSTEM SET work_mem = '7MB'", "ALTER SYSTEM RESET work_mem"),
			want:   []string{"+ file_setting postgresql.auto.conf:work_mem:"},
		},
		{
			name:   "database setting",
			change: sqlChange("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET work_mem = %L', current_database(), '3MB'); END $$"),
			want:   []string{"+ db_role_setting pgtest_"},
		},
		{
			name:   "new database",
			change: cleanedChange("CREATE DATABASE "+otherDB, "DROP DATABASE "+otherDB),
			want:   []string{"+ database " + otherDB + ":"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := NewDatabase(t)
			before := Fingerprint(t, url)
			tt.change(t, url)
			diff := before.Diff(Fingerprint(t, url))
			if diff == "" {
				t.Fatal("Diff is empty")
			}
			lines := strings.Split(diff, "\n")
			for _, w := range tt.want {
				if !hasLineWithPrefix(lines, w) {
					t.Errorf("Diff has no line starting with %q:\n%s", w, diff)
				}
			}
			for _, line := range lines {
				if !hasPrefixIn(line, tt.want) {
					t.Errorf("unexpected Diff line %q", line)
				}
			}
		})
	}
}

// TestFingerprintLockedRelations checks that relations locked in ACCESS
// EXCLUSIVE mode by a prepared transaction, which blocks even catalog
// functions such as pg_get_expr and pg_get_viewdef, are reported rather
// than waited for.
func TestFingerprintLockedRelations(t *testing.T) {
	url := NewDatabase(t)
	exec(t, url,
		`CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`,
		`CREATE TRIGGER customers_touch BEFORE UPDATE ON customers FOR EACH ROW
			WHEN (OLD.email IS DISTINCT FROM NEW.email) EXECUTE FUNCTION touch()`,
		`ALTER TABLE customers ENABLE ROW LEVEL SECURITY`,
		`CREATE POLICY tenant_one ON customers USING (tenant_id = 1) WITH CHECK (tenant_id = 1)`,
		`CREATE INDEX customers_lower_email_idx ON customers (lower(email)) WHERE is_active`,
		`ALTER TABLE customers ADD CONSTRAINT balance_sane CHECK (balance > -1000000)`,
		`CREATE TABLE events (id int DEFAULT 1, at date) PARTITION BY RANGE (at)`,
		`CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
		`CREATE MATERIALIZED VIEW customer_counts AS SELECT tenant_id, count(*) FROM customers GROUP BY 1`,
		`CREATE DOMAIN positive AS int CHECK (VALUE > 0)`,
		`SELECT nextval('ticket_seq')`,
	)
	before := Fingerprint(t, url)
	conn := Connect(t, url)
	gid := "pgtest_lock_" + runID
	for _, sql := range []string{
		"BEGIN",
		"LOCK TABLE customers, orders, secret_view, events, events_2024 IN ACCESS EXCLUSIVE MODE",
		"REFRESH MATERIALIZED VIEW customer_counts",
		"ALTER SEQUENCE ticket_seq RENAME TO ticket_seq_renamed",
		"PREPARE TRANSACTION '" + gid + "'",
	} {
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	start := time.Now()
	after := Fingerprint(t, url)
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("fingerprint took %v: it waited for a lock", elapsed)
	}
	diff := before.Diff(after)
	lines := strings.Split(diff, "\n")
	for _, want := range []string{
		"+ prepared_xact " + gid + ":",
		"~ rows public.customers: count=1000 md5=",
		"~ rows public.customer_counts: count=5 md5=",
		"~ sequence_value public.ticket_seq: last_value=1000 is_called=t → not read",
	} {
		if !hasLineWithPrefix(lines, want) {
			t.Errorf("Diff has no line starting with %q:\n%s", want, diff)
		}
	}
	if hasLineWithPrefix(lines, "~ rows public.products") {
		t.Errorf("an unlocked table's content changed:\n%s", diff)
	}
}

func hasLineWithPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func hasPrefixIn(line string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// sqlChange runs statements on a connection that is closed before the
// second fingerprint.
func sqlChange(sqls ...string) func(*testing.T, string) {
	return func(t *testing.T, url string) { exec(t, url, sqls...) }
}

// sessionChange runs a statement on a session that stays open until the
// test ends.
func sessionChange(sql string) func(*testing.T, string) {
	return func(t *testing.T, url string) {
		if _, err := Connect(t, url).Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// cleanedChange makes a server-wide change and undoes it when the test ends.
func cleanedChange(do, undo string) func(*testing.T, string) {
	return func(t *testing.T, url string) {
		exec(t, url, do)
		t.Cleanup(func() { exec(t, AdminURL(t), undo) })
	}
}

func TestDiffFormat(t *testing.T) {
	a := Snapshot{Items: map[string]string{"same": "1", "changed": "old", "gone": "x", "long": strings.Repeat("a", 500) + "b"}}
	b := Snapshot{Items: map[string]string{"same": "1", "changed": "new\n  value", "added": "y", "long": strings.Repeat("a", 500) + "c"}}
	got := a.Diff(b)
	want := []string{
		"+ added: y",
		"~ changed: old → new value",
		"- gone: x",
	}
	lines := strings.Split(got, "\n")
	if len(lines) != 4 {
		t.Fatalf("Diff =\n%s", got)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
		}
	}
	if long := lines[3]; !strings.HasPrefix(long, "~ long: …") || !strings.Contains(long, "ab → …") || !strings.HasSuffix(long, "ac") || len(long) > 150 {
		t.Errorf("long value line = %q, want it shortened around the difference", long)
	}
	if d := a.Diff(a); d != "" {
		t.Errorf("a.Diff(a) = %q", d)
	}
}

func BenchmarkFingerprint(b *testing.B) {
	url := NewDatabase(b)
	for b.Loop() {
		Fingerprint(b, url)
	}
}
