package catalog_test

import (
	"cmp"
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/catalog"
	"github.com/airlock-dev/airlock/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestLookups(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.NewEmptyDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	role := "catalog_test_" + time.Now().Format("150405.000000")
	for _, sql := range []string{
		`CREATE SCHEMA s`,
		`CREATE TABLE s.t (id serial PRIMARY KEY, gone int, name text)`,
		`ALTER TABLE s.t DROP COLUMN gone`,
		`ALTER TABLE s.t ENABLE ROW LEVEL SECURITY`,
		`CREATE VIEW s.v AS SELECT name FROM s.t`,
		`CREATE ROLE "` + role + `" NOLOGIN`,
		`GRANT USAGE ON SCHEMA s TO "` + role + `"`,
		`GRANT SELECT (name) ON s.t TO "` + role + `"`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), `DROP SCHEMA s CASCADE`)
		_, _ = conn.Exec(context.Background(), `DROP ROLE "`+role+`"`)
	})

	var cols []catalog.Column
	if err := catalog.Columns(ctx, conn, []string{"s.v", "s.t", "s.none"}, func(c catalog.Column) error {
		cols = append(cols, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []catalog.Column{
		{Schema: "s", Relation: "t", Kind: catalog.KindTable, RowSecurity: true, Name: "id"},
		{Schema: "s", Relation: "t", Kind: catalog.KindTable, RowSecurity: true, Name: "name"},
		{Schema: "s", Relation: "v", Kind: catalog.KindView, Name: "name"},
	}
	if !slices.Equal(cols, want) {
		t.Errorf("Columns = %+v, want %+v", cols, want)
	}

	seqs, err := catalog.OwnedSequences(ctx, conn, []string{"s.t"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []catalog.Sequence{{Table: "s.t", Schema: "s", Name: "t_id_seq"}}; !slices.Equal(seqs, want) {
		t.Errorf("OwnedSequences = %+v, want %+v", seqs, want)
	}

	var privs []catalog.Privilege
	if err := catalog.Privileges(ctx, conn, role, func(p catalog.Privilege) { privs = append(privs, p) }); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(privs, func(a, b catalog.Privilege) int { return cmp.Compare(a.Kind, b.Kind) })
	wantPrivs := []catalog.Privilege{
		{Kind: catalog.OnColumn, Schema: "s", Relation: "t", Column: "name", Privilege: "SELECT"},
		{Kind: catalog.OnSchema, Schema: "s", Privilege: "USAGE"},
	}
	if !slices.Equal(privs, wantPrivs) {
		t.Errorf("Privileges = %+v, want %+v", privs, wantPrivs)
	}

	attrs, ok, err := catalog.RoleAttributes(ctx, conn, role)
	if err != nil || !ok || attrs != (catalog.Role{Inherit: true}) {
		t.Errorf("RoleAttributes = %+v, %v, %v; want only Inherit", attrs, ok, err)
	}
	if _, ok, err := catalog.RoleAttributes(ctx, conn, role+"_none"); ok || err != nil {
		t.Errorf("RoleAttributes of a missing role = %v, %v", ok, err)
	}
	existing, err := catalog.ExistingRoles(ctx, conn, []string{role, role + "_none"})
	if err != nil || !slices.Equal(existing, []string{role}) {
		t.Errorf("ExistingRoles = %v, %v", existing, err)
	}

	owners, err := catalog.TableOwners(ctx, conn, []string{"s.t", "s.v"})
	if err != nil || len(owners) != 1 || owners[0].Relation != "s.t" {
		t.Errorf("TableOwners = %+v, %v; want s.t only", owners, err)
	}
	mine, err := catalog.OwnerRightsOfCurrentUser(ctx, conn, []string{"s.t", "s.v"})
	if err != nil || len(mine) != 2 {
		t.Errorf("OwnerRightsOfCurrentUser = %+v, %v; want both", mine, err)
	}
	owned, err := catalog.OwnedBy(ctx, conn, owners[0].Role)
	if err != nil || !slices.Contains(owned, "s.t") || !slices.Contains(owned, "s.v") {
		t.Errorf("OwnedBy = %v, %v", owned, err)
	}
	rels, err := catalog.Relations(ctx, conn)
	if err != nil || !slices.Equal(rels, []string{"s.t", "s.v"}) {
		t.Errorf("Relations = %v, %v", rels, err)
	}

	if key, err := catalog.KeyColumns(ctx, conn, "s.t"); err != nil || !slices.Equal(key, []string{"id"}) {
		t.Errorf("KeyColumns(s.t) = %v, %v; want [id]", key, err)
	}
	if key, err := catalog.KeyColumns(ctx, conn, "s.v"); err != nil || key != nil {
		t.Errorf("KeyColumns(s.v) = %v, %v; want none", key, err)
	}
	for name, want := range map[string]bool{"s.t": true, `"s"."v"`: true, "s.none": false} {
		if got, err := catalog.RelationExists(ctx, conn, name); err != nil || got != want {
			t.Errorf("RelationExists(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	if ok, err := catalog.MaySelect(ctx, conn, "s.t"); err != nil || !ok {
		t.Errorf("MaySelect(s.t) as its owner = %v, %v", ok, err)
	}
	if _, err := conn.Exec(ctx, `SET ROLE "`+role+`"`); err != nil {
		t.Fatal(err)
	}
	ok, err = catalog.MaySelect(ctx, conn, "s.t")
	if _, rerr := conn.Exec(ctx, `RESET ROLE`); rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil || ok {
		t.Errorf("MaySelect(s.t) with SELECT on one column only = %v, %v; want false", ok, err)
	}
}
