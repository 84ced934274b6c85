package migrate

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// TestCompareTableSchemas: the same tables in two databases compare by
// name: column positions (a dropped column) and NOT VALID do not count,
// an added column and a changed default do, and tables not named are not
// read.
func TestCompareTableSchemas(t *testing.T) {
	ctx := testContext(t)
	read := func(url string, tables []string) *TableSchema {
		conn := pgtest.Connect(t, url)
		var out *TableSchema
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var err error
			out, err = ReadTableSchema(ctx, tx, tables)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	exec := func(url, sql string) {
		if _, err := pgtest.Connect(t, url).Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	source, branch := fixtureDB(t), fixtureDB(t)
	tables := []string{"public.orders", "public.customers"}
	exec(source, "ALTER TABLE public.orders ADD COLUMN scratch int; ALTER TABLE public.orders DROP COLUMN scratch")
	exec(source, "ALTER TABLE public.orders ADD CONSTRAINT total_positive CHECK (total >= 0)")
	exec(branch, "ALTER TABLE public.orders ADD CONSTRAINT total_positive CHECK (total >= 0) NOT VALID")
	exec(branch, "ALTER TABLE public.products ADD COLUMN unread int")
	if d := CompareTableSchemas(read(source, tables), read(branch, tables)); !d.Empty() {
		t.Fatalf("same tables differ: %+v", d)
	}
	exec(branch, "ALTER TABLE public.orders ADD COLUMN gift boolean NOT NULL DEFAULT false")
	exec(source, "ALTER TABLE public.customers ALTER COLUMN name SET DEFAULT 'x'")
	d := CompareTableSchemas(read(source, tables), read(branch, tables))
	if !slices.Equal(d.Added, []string{"public.customers: column name text not null", "public.orders: column gift boolean not null default false"}) ||
		len(d.Removed) != 1 || d.Removed[0] != "public.customers: column name text not null default 'x'::text" {
		t.Fatalf("diff %+v", d)
	}
	if d := CompareTableSchemas(read(source, nil), read(branch, []string{})); !d.Empty() {
		t.Fatalf("no tables: %+v", d)
	}
}
