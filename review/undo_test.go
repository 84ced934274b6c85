package review

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/sqlguard"
)

// TestRevertExactValues reverts updates whose new values print like the
// old ones (NULL and the text "<nil>", 2^53 and 2^53+1, 0.1 and 0.10), on a
// table whose column names are the aliases of airlock's own SQL:
// every row must come back exactly, none be taken for unchanged.
func TestRevertExactValues(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := pgtest.NewEmptyDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := EnsureSchema(ctx, pool); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		// Columns named like the aliases of the capture and the revert's own
		// SQL (n, o, t, e, value, ...) must not stand in for them.
		"CREATE TABLE exact (id bigint PRIMARY KEY, note text, n bigint, p numeric, tags text[], o int, t int, r int, x int, e int, value int, kv int)",
		"INSERT INTO exact VALUES (1, NULL, 9007199254740992, 0.1, NULL, 1, 2, 3, 4, 5, 6, 7), (2, 'x', 5, 1, '{}', NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
		"CREATE TRIGGER airlock_capture_upd AFTER UPDATE ON public.exact REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION airlock.capture_rows()",
		`INSERT INTO airlock.scopes (name, document, version, read_role, write_role) VALUES ('exact', '{"name": "exact",
			"read": {"tables": {"public.exact": {}}},
			"write": {"mode": "replay", "tables": ["public.exact"], "allow": ["update"],
				"ticket_pattern": "^[A-Z]+-[0-9]+$", "undo": {"retention": "7d"}}}', 'test', 'r', current_user)`,
	} {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	snapshot := func() string {
		var s string
		if err := pool.QueryRow(ctx, "SELECT string_agg(to_jsonb(s.*)::text, ' ' ORDER BY id) FROM exact s").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := snapshot()
	store := NewStore(pool, nil)
	policy := &sqlguard.WritePolicy{Tables: map[string]bool{"public.exact": true}, Allow: map[string]bool{"update": true}}
	for _, sql := range []string{
		"UPDATE exact SET note = '<nil>' WHERE id = 1",
		"UPDATE exact SET n = n + 1",
		"UPDATE exact SET p = 0.10 WHERE id = 1",
		"UPDATE exact SET tags = '{}' WHERE id = 1",
		"UPDATE exact SET tags = NULL WHERE id = 2",
		"UPDATE exact SET o = o + 1, t = 0, r = NULL, x = 9, e = e, value = 1, kv = 2",
	} {
		plan, err := policy.CheckMigration(sql)
		if err != nil {
			t.Fatal(err)
		}
		orig := commitChange(ctx, t, store, url, "exact", sql, plan)
		if snapshot() == want {
			t.Fatalf("%s changed nothing", sql)
		}
		rev, err := store.Revert(ctx, orig.ID, "alice", false)
		if err != nil {
			t.Fatalf("revert %s: %v", sql, err)
		}
		if _, err := store.Commit(ctx, rev.ID, "alice"); err != nil {
			t.Fatalf("commit the revert of %s: %v", sql, err)
		}
		if got := snapshot(); got != want {
			t.Errorf("after reverting %s:\n got %s\nwant %s", sql, got, want)
		}
	}
}
