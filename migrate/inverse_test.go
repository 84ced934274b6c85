package migrate

import (
	"slices"
	"strings"
	"testing"
)

func TestInverseOf(t *testing.T) {
	table := TrashEntry{Change: "c", Stmt: 0, Kind: "table", Schema: "public", Table: "invoices", Trash: "c_1_0_invoices",
		Recreate: []Recreated{{Object: "constraint", Name: "invoices_order_id_fkey", SQL: "ALTER TABLE public.invoices ADD CONSTRAINT fk"}}}
	column := TrashEntry{Change: "c", Stmt: 0, Kind: "column", Schema: "public", Table: "orders", Column: "notes", Trash: "c_1_1_orders_notes",
		Key: []string{"id"}, Type: "text", Default: "'x'::text", NotNull: true, Comment: "it's free text",
		Recreate: []Recreated{{Object: "index", Name: "orders_notes", SQL: "CREATE INDEX orders_notes ON public.orders (notes)"}}}
	retype := TrashEntry{Change: "c", Stmt: 1, Kind: "column_def", Schema: "public", Table: "orders", Column: "total", Trash: "c_2_0_orders_total",
		Key: []string{"id"}, Type: "numeric(12,2)", NotNull: true}
	for _, tc := range []struct {
		name     string
		diff     []SchemaChange
		trash    []TrashEntry
		lastRow  int // the last statement that changed rows of public.orders
		recreate []string
		drop     []string
		err      string
	}{
		{name: "added", diff: []SchemaChange{
			{Object: "table", Name: "public.archive", Action: "added"},
			{Object: "column", Name: "public.orders.priority", Action: "added"},
			{Object: "index", Name: "public.orders_priority", Action: "added"},
			{Object: "constraint", Name: "public.archive.archive_pkey", Action: "added"},
		}, drop: []string{`DROP INDEX "public"."orders_priority"`, `ALTER TABLE "public"."orders" DROP COLUMN "priority"`, `DROP TABLE "public"."archive"`}},
		{name: "dropped table", diff: []SchemaChange{{Object: "table", Name: "public.invoices", Action: "dropped"}}, trash: []TrashEntry{table},
			recreate: []string{`ALTER TABLE "airlock_trash"."c_1_0_invoices" SET SCHEMA "public"`, `ALTER TABLE "public"."c_1_0_invoices" RENAME TO "invoices"`,
				"ALTER TABLE public.invoices ADD CONSTRAINT fk"}},
		{name: "dropped column", diff: []SchemaChange{
			{Object: "column", Name: "public.orders.notes", Action: "dropped"},
			{Object: "index", Name: "public.orders_notes", Action: "dropped"},
		}, trash: []TrashEntry{column}, recreate: []string{
			`ALTER TABLE "public"."orders" ADD COLUMN "notes" text`,
			`UPDATE "public"."orders" AS airlock_cur SET "notes" = airlock_old."notes" FROM "airlock_trash"."c_1_1_orders_notes" AS airlock_old WHERE airlock_cur."id" = airlock_old."id"`,
			`ALTER TABLE "public"."orders" ALTER COLUMN "notes" SET DEFAULT 'x'::text`,
			`ALTER TABLE "public"."orders" ALTER COLUMN "notes" SET NOT NULL`,
			`COMMENT ON COLUMN "public"."orders"."notes" IS 'it''s free text'`,
			"CREATE INDEX orders_notes ON public.orders (notes)",
		}, drop: []string{`DROP TABLE "airlock_trash"."c_1_1_orders_notes"`}},
		{name: "renamed", diff: []SchemaChange{
			{Object: "table", Name: "public.invoices", Action: "renamed", Before: "public.invoices", After: "public.bills"},
			{Object: "index", Name: "public.invoices_pkey", Action: "changed", Before: "CREATE UNIQUE INDEX invoices_pkey ON public.invoices USING btree (id)", After: "CREATE UNIQUE INDEX invoices_pkey ON public.bills USING btree (id)"},
			{Object: "column", Name: "public.orders.notes", Action: "renamed", Before: "notes", After: "remarks"},
		}, recreate: []string{`ALTER TABLE "public"."orders" RENAME COLUMN "remarks" TO "notes"`, `ALTER TABLE "public"."bills" RENAME TO "invoices"`}},
		{name: "retype, rows changed before it", diff: []SchemaChange{{Object: "column", Name: "public.orders.total", Action: "changed"}},
			trash: []TrashEntry{retype}, lastRow: 0, recreate: []string{
				`ALTER TABLE "public"."orders" ALTER COLUMN "total" DROP DEFAULT`, `ALTER TABLE "public"."orders" ALTER COLUMN "total" DROP NOT NULL`,
				`ALTER TABLE "public"."orders" ALTER COLUMN "total" TYPE numeric(12,2) USING "total"::numeric(12,2)`,
				`UPDATE "public"."orders" AS airlock_cur SET "total" = airlock_old."total" FROM "airlock_trash"."c_2_0_orders_total" AS airlock_old WHERE airlock_cur."id" = airlock_old."id" AND airlock_cur."total" IS DISTINCT FROM airlock_old."total"`,
				`ALTER TABLE "public"."orders" ALTER COLUMN "total" SET NOT NULL`,
			}, drop: []string{`DROP TABLE "airlock_trash"."c_2_0_orders_total"`}},
		{name: "retype, rows changed after it", diff: []SchemaChange{{Object: "column", Name: "public.orders.total", Action: "changed"}},
			trash: []TrashEntry{retype}, lastRow: 2, drop: []string{
				`ALTER TABLE "public"."orders" ALTER COLUMN "total" DROP DEFAULT`, `ALTER TABLE "public"."orders" ALTER COLUMN "total" DROP NOT NULL`,
				`ALTER TABLE "public"."orders" ALTER COLUMN "total" TYPE numeric(12,2) USING "total"::numeric(12,2)`,
				`UPDATE "public"."orders" AS airlock_cur SET "total" = airlock_old."total" FROM "airlock_trash"."c_2_0_orders_total" AS airlock_old WHERE airlock_cur."id" = airlock_old."id" AND airlock_cur."total" IS DISTINCT FROM airlock_old."total"`,
				`ALTER TABLE "public"."orders" ALTER COLUMN "total" SET NOT NULL`,
				`DROP TABLE "airlock_trash"."c_2_0_orders_total"`,
			}},
		{name: "dropped without a trash entry", diff: []SchemaChange{{Object: "table", Name: "public.invoices", Action: "dropped"}}, err: "kept nothing"},
		{name: "dropped view", diff: []SchemaChange{{Object: "view", Name: "public.v", Action: "dropped"}}, err: "kept nothing"},
		{name: "changed index", diff: []SchemaChange{{Object: "index", Name: "public.i", Action: "changed", Before: "a", After: "b"}}, err: "cannot undo"},
		{name: "changed column without its definition", diff: []SchemaChange{{Object: "column", Name: "public.orders.total", Action: "changed"}}, err: "cannot undo"},
		{name: "moved schema", diff: []SchemaChange{{Object: "table", Name: "public.t", Action: "renamed", Before: "public.t", After: "other.t"}}, err: "another schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last := func(schema, table string) int {
				if schema+"."+table == "public.orders" {
					return tc.lastRow
				}
				return -1
			}
			inv, err := InverseOf(SchemaDiff{Changes: tc.diff}, tc.trash, last)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(inv.Recreate, tc.recreate) {
				t.Errorf("Recreate:\n%s\nwant:\n%s", strings.Join(inv.Recreate, "\n"), strings.Join(tc.recreate, "\n"))
			}
			if !slices.Equal(inv.Drop, tc.drop) {
				t.Errorf("Drop:\n%s\nwant:\n%s", strings.Join(inv.Drop, "\n"), strings.Join(tc.drop, "\n"))
			}
		})
	}
}
