package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/roles"
	"github.com/airlock-dev/airlock/scopes"
)

// TestHardenedReadsKeepTheirConnection: on a database hardened by scope
// apply --harden (no advisory-lock functions for PUBLIC), an agent login's
// reads come back clean and reuse their pooled connection. Before, the
// unlock each read sent failed for lack of privilege, and every call paid
// for a new connection (tens of milliseconds).
func TestHardenedReadsKeepTheirConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adminURL := pgtest.NewDatabase(t)
	admin := pgtest.Connect(t, adminURL)
	agent := "hd_agent_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
	scope, err := scopes.Parse([]byte(`{"name": "hd-` + agent[9:] + `", "read": {"tables": {"public.orders": {}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE ROLE "+agent+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := pgtest.Connect(t, pgtest.AdminURL(t))
		for _, r := range []string{agent, scope.ReadRole(), scope.WriteRole(), scope.MaskRole()} {
			c.Exec(context.Background(), "DROP OWNED BY "+pgx.Identifier{r}.Sanitize())
			c.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
		}
	})
	adminPool, err := pgxpool.New(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer adminPool.Close()
	if _, err := roles.Apply(ctx, adminPool, scope, roles.Options{GrantTo: []string{agent}, Harden: true}); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, strings.Replace(adminURL, "postgres@", agent+"@", 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	h := startHarness(t, adminURL, pool, scope, false)

	backends := func() []string {
		rows, err := admin.Query(ctx, "SELECT pid::text || '@' || backend_start::text FROM pg_stat_activity WHERE usename = $1 ORDER BY 1", agent)
		if err != nil {
			t.Fatal(err)
		}
		list, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	var first []string
	for i := range 20 {
		res := h.query("SELECT count(*) FROM orders WHERE id > $1", i)
		if res.IsError {
			t.Fatalf("read %d: %s", i, text(res))
		}
		if i == 0 {
			first = backends()
		}
	}
	if after := backends(); !slices.Equal(first, after) {
		t.Errorf("the agent login's connections changed over 20 sequential reads:\nafter the first %v\nafter the last  %v", first, after)
	}
}
