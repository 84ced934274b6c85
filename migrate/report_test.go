package migrate

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/sqlguard"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/reports")

// TestGoldenReports pins the exact JSON and text of representative
// reports. Run with -update to regenerate them after a deliberate change.
func TestGoldenReports(t *testing.T) {
	url := fixtureDB(t)
	conn := pgtest.Connect(t, url)
	ctx := testContext(t)
	info := func(code, msg string, i int) sqlguard.Finding {
		return sqlguard.Finding{Code: code, Level: "info", Message: msg, Fix: "parse-tree fix", Statement: i}
	}
	warn := func(code, msg string, i int) sqlguard.Finding {
		f := info(code, msg, i)
		f.Level = "warning"
		return f
	}
	danger := func(code, msg string, i int) sqlguard.Finding {
		f := info(code, msg, i)
		f.Level = "danger"
		return f
	}

	tests := []struct {
		name string
		opt  Options
		plan *sqlguard.MigrationPlan
	}{
		{
			name: "add_column_volatile_default",
			opt:  Options{LargeTableRows: 100},
			plan: planOf(stmt{sql: "ALTER TABLE public.orders ADD COLUMN token uuid DEFAULT gen_random_uuid()", kind: "add_column", targets: []string{orders},
				findings: []sqlguard.Finding{warn("PG302", "the default of token calls gen_random_uuid, which may be volatile", 0)}}),
		},
		{
			name: "narrowing_type_change",
			plan: planOf(stmt{sql: "ALTER TABLE public.orders ALTER COLUMN total TYPE smallint", kind: "alter_column_type", targets: []string{orders},
				findings: []sqlguard.Finding{warn("PG301", "changing the type of public.orders.total may rewrite the table", 0)}}),
		},
		{
			name: "update_and_delete",
			opt:  Options{RowsAffectedWarn: 50},
			plan: planOf(
				stmt{sql: "UPDATE public.orders\n   SET status = 'cancelled'\n WHERE status = 'new'", kind: "update", targets: []string{orders}},
				stmt{sql: "DELETE FROM public.orders WHERE id > 190", kind: "delete", targets: []string{orders}},
			),
		},
		{
			name: "create_table_index_insert",
			plan: planOf(
				stmt{sql: "CREATE TABLE public.refunds (id serial PRIMARY KEY, order_id int NOT NULL REFERENCES public.orders (id), amount numeric(10,2) NOT NULL CHECK (amount > 0))",
					kind: "create_table", targets: []string{"public.refunds"}},
				stmt{sql: "CREATE INDEX refunds_order_idx ON public.refunds (order_id)", kind: "create_index", targets: []string{"public.refunds"},
					findings: []sqlguard.Finding{info("PG101", "CREATE INDEX on public.refunds blocks writes to it", 1)}},
				stmt{sql: "INSERT INTO public.refunds (order_id, amount) SELECT id, total / 10.0 FROM public.orders WHERE id <= 3", kind: "insert", targets: []string{"public.refunds"}},
			),
		},
		{
			name: "drop_table",
			plan: planOf(stmt{sql: "DROP TABLE public.orders", kind: "drop_table", targets: []string{orders},
				findings: []sqlguard.Finding{danger("DS102", "data loss: drops table public.orders", 0)}}),
		},
		{
			name: "rename_comment_view",
			plan: planOf(
				stmt{sql: "ALTER TABLE public.customers RENAME COLUMN plan TO tier", kind: "rename", targets: []string{customers},
					findings: []sqlguard.Finding{warn("BC102", "renames column public.customers.plan to tier", 0)}},
				stmt{sql: "COMMENT ON COLUMN public.customers.tier IS 'billing tier'", kind: "comment", targets: []string{customers}},
				stmt{sql: "CREATE VIEW public.pro_customers AS SELECT id, name FROM public.customers WHERE tier = 'pro'", kind: "create_view", targets: []string{"public.pro_customers"}},
			),
		},
		{
			name: "set_not_null_large_table",
			opt:  Options{LargeTableRows: 10},
			plan: planOf(stmt{sql: "ALTER TABLE public.customers ALTER COLUMN email SET NOT NULL", kind: "set_not_null", targets: []string{customers},
				findings: []sqlguard.Finding{warn("MF104", "SET NOT NULL on public.customers.email scans the whole table", 0)}}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Run(ctx, conn, tt.plan, tt.opt, EndRollback, RunArg{})
			if err != nil {
				t.Fatal(err)
			}
			got := goldenText(t, rep)
			path := filepath.Join("testdata", "reports", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, got)
			}
		})
	}
}

// goldenText renders a report with its timings zeroed: JSON, then text.
func goldenText(t *testing.T, rep *Report) []byte {
	t.Helper()
	rep.ElapsedMS = 0
	for i := range rep.Statements {
		rep.Statements[i].ElapsedMS = 0
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return []byte(string(js) + "\n---- text ----\n" + rep.Text())
}

func TestEffects(t *testing.T) {
	base := Effects{
		RowsAffected: []int64{0, 12},
		SchemaDiff: SchemaDiff{Changes: []SchemaChange{
			{Object: "column", Name: "public.orders.discount", Action: "added", After: "integer"},
		}},
	}
	fewer := Effects{RowsAffected: []int64{0}}
	tests := []struct {
		name  string
		other Effects
		want  []string
	}{
		{"identical", base, nil},
		{"rows", Effects{RowsAffected: []int64{0, 13}, SchemaDiff: base.SchemaDiff}, []string{"statement 2 affected 13 rows, expected 12"}},
		{"statements and schema", fewer, []string{
			"expected 2 statements, got 1",
			"missing schema change: column public.orders.discount added: integer",
		}},
		{"schema changed", Effects{RowsAffected: []int64{0, 12}, SchemaDiff: SchemaDiff{Changes: []SchemaChange{
			{Object: "column", Name: "public.orders.discount", Action: "added", After: "bigint"},
		}}}, []string{
			"unexpected schema change: column public.orders.discount added: bigint",
			"missing schema change: column public.orders.discount added: integer",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := base.Compare(tt.other)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Compare = %q, want %q", got, tt.want)
			}
			if same := base.Fingerprint() == tt.other.Fingerprint(); same != (tt.want == nil) {
				t.Errorf("fingerprints equal = %v, want %v", same, tt.want == nil)
			}
		})
	}
	// nil and empty lists are the same effects.
	if (Effects{}).Fingerprint() != (Effects{RowsAffected: []int64{}, SchemaDiff: SchemaDiff{Changes: []SchemaChange{}}}).Fingerprint() {
		t.Error("nil and empty effects fingerprint differently")
	}
	if fp := base.Fingerprint(); len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		t.Errorf("fingerprint %q is not sha256 hex", fp)
	}
}

func TestTextClipsLongSQL(t *testing.T) {
	rep := &Report{Risk: RiskLow, Statements: []StatementReport{{SQL: "INSERT INTO t VALUES ('" + strings.Repeat("é", 400) + "')", Kind: "insert"}}}
	text := rep.Text()
	if !strings.Contains(text, "more bytes)") || !strings.Contains(text, "no new locks") {
		t.Errorf("text:\n%s", text)
	}
	if !utf8.ValidString(text) {
		t.Error("SQL clipped inside a rune")
	}
}
