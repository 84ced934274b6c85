package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/internal/pgcluster"
	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/server"
)

type reportOut struct {
	Statements []struct {
		SQL           string `json:"sql"`
		Kind          string `json:"kind"`
		RowsAffected  int64  `json:"rows_affected"`
		RewritesTable bool   `json:"rewrites_table"`
		Locks         []struct {
			Relation string `json:"relation"`
			Mode     string `json:"mode"`
		} `json:"locks"`
	} `json:"statements"`
	SchemaDiff struct {
		Changes []struct{ Object, Name, Action string } `json:"changes"`
	} `json:"schema_diff"`
	Warnings []struct{ Code string } `json:"warnings"`
	Risk     string                  `json:"risk"`
}

func (h *harness) dryRun(sql string) (reportOut, string, bool) {
	h.t.Helper()
	res := h.call(scopes.ToolMigrateDryRun, map[string]any{"sql": sql})
	var out reportOut
	if !res.IsError {
		structured(h.t, res, &out)
	}
	return out, text(res), res.IsError
}

func TestDryRunChangesNothing(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	before := pgtest.Fingerprint(t, h.url)
	for _, tc := range []struct {
		sql, kind string
		rows      int64
	}{
		{"INSERT INTO orders (id, customer_id, status, total, created_at) VALUES (100001, 1, 'pending', 10, now())", "insert", 1},
		{"UPDATE orders SET status = 'cancelled' WHERE id <= 10", "update", 10},
		{"DELETE FROM invoices WHERE id <= 5", "delete", 5},
		{"ALTER TABLE orders ADD COLUMN shipped_at timestamptz", "add_column", 0},
		{"CREATE INDEX orders_status_idx ON orders (status)", "create_index", 0},
		{"CREATE TABLE public.orders_archive (id bigint primary key)", "create_table", 0},
		{"ALTER TABLE orders ALTER COLUMN total TYPE numeric(14,2)", "alter_column_type", 0},
		{"ALTER TABLE orders RENAME COLUMN notes TO remarks", "rename", 0},
		{"TRUNCATE invoices", "truncate", 0},
		{"DROP TABLE invoices", "drop_table", 0},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			out, txt, isErr := h.dryRun(tc.sql)
			if isErr {
				t.Fatalf("refused: %s", txt)
			}
			if len(out.Statements) != 1 || out.Statements[0].Kind != tc.kind || out.Statements[0].RowsAffected != tc.rows {
				t.Fatalf("report: %+v", out.Statements)
			}
			if !strings.Contains(txt, "DRY RUN") {
				t.Fatalf("text does not say dry run: %s", txt)
			}
		})
	}
	out, _, _ := h.dryRun("DROP TABLE invoices")
	if out.Risk != "high" || len(out.SchemaDiff.Changes) == 0 {
		t.Fatalf("drop table report: risk %s, diff %+v", out.Risk, out.SchemaDiff)
	}
	if d := before.Diff(pgtest.Fingerprint(t, h.url)); d != "" {
		t.Fatalf("dry runs changed the database:\n%s", d)
	}
}

func TestWriteRefusalsChangeNothing(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	before := pgtest.Fingerprint(t, h.url)
	for _, sql := range []string{
		"BEGIN; DELETE FROM orders; COMMIT",
		"COMMIT; DROP TABLE orders",
		"DELETE FROM orders; COMMIT",
		"PREPARE TRANSACTION 'x'",
		"CREATE ROLE evil SUPERUSER",
		"GRANT ALL ON secrets TO PUBLIC",
		"SET ROLE postgres",
		"SET SESSION AUTHORIZATION postgres",
		"ALTER SYSTEM SET fsync = off",
		"CREATE DATABASE evil",
		"CREATE EXTENSION dblink",
		"COPY orders FROM PROGRAM 'id'",
		"COPY orders TO '/tmp/x'",
		"LOAD 'auto_explain'",
		"DO $$ BEGIN DELETE FROM orders; END $$",
		"CALL evil_proc()",
		"CREATE INDEX CONCURRENTLY orders_x ON orders (status)",
		"VACUUM orders",
		"DELETE FROM customers",
		"DROP TABLE secrets",
		"INSERT INTO orders (customer_id, status, total) SELECT 1, token, 0 FROM secrets",
		"CREATE TABLE public.sneaky (id int)",
		"ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'x'",
		"DROP TABLE orders CASCADE",
		"SELECT evil_write()",
	} {
		t.Run(sql, func(t *testing.T) {
			_, txt, isErr := h.dryRun(sql)
			if !isErr {
				t.Fatalf("dry run accepted: %s", txt)
			}
			res := h.call(scopes.ToolApplyMigration, map[string]any{"ticket": "OPS-1", "summary": "attack", "sql": sql})
			if !res.IsError {
				t.Fatalf("apply accepted: %s", text(res))
			}
			assertNoLeak(t, res)
		})
	}
	for name, args := range map[string]map[string]any{
		"bad ticket":    {"ticket": "ops 1; DROP", "summary": "x", "sql": "DELETE FROM orders WHERE id = 1"},
		"empty summary": {"ticket": "OPS-1", "summary": "  ", "sql": "DELETE FROM orders WHERE id = 1"},
	} {
		if res := h.call(scopes.ToolApplyMigration, args); !res.IsError {
			t.Fatalf("%s accepted: %s", name, text(res))
		}
	}
	if d := before.Diff(pgtest.Fingerprint(t, h.url)); d != "" {
		t.Fatalf("database changed:\n%s", d)
	}
}

type applyOut struct {
	ChangeID  string    `json:"change_id"`
	Status    string    `json:"status"`
	Mode      string    `json:"mode"`
	ExpiresAt time.Time `json:"expires_at"`
	Report    reportOut `json:"report"`
}

func (h *harness) apply(ticket, sql string) applyOut {
	h.t.Helper()
	res := h.call(scopes.ToolApplyMigration, map[string]any{"ticket": ticket, "summary": "test change", "sql": sql})
	if res.IsError {
		h.t.Fatalf("apply refused: %s", text(res))
	}
	var out applyOut
	structured(h.t, res, &out)
	return out
}

func (h *harness) status(id string) map[string]any {
	h.t.Helper()
	res := h.call(scopes.ToolChangeStatus, map[string]any{"change_id": id})
	if res.IsError {
		h.t.Fatalf("status: %s", text(res))
	}
	var out map[string]any
	structured(h.t, res, &out)
	return out
}

func countOrders(t *testing.T, h *harness, where string) int {
	t.Helper()
	var n int
	if err := h.pool.QueryRow(context.Background(), "SELECT count(*) FROM orders WHERE "+where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestApplyHoldsUntilReviewerCommits(t *testing.T) {
	for _, scope := range []string{"support.json", "prepared.json"} {
		t.Run(scope, func(t *testing.T) {
			h := newHarness(t, scope, nil)
			store := review.NewStore(h.pool, audit.NewLog(nil, discardLogger()))
			before := pgtest.Fingerprint(t, h.url)
			out := h.apply("OPS-7", "UPDATE orders SET status = 'refunded' WHERE id <= 3")
			if out.Status != "pending" || out.ChangeID == "" || time.Until(out.ExpiresAt) < 29*time.Minute {
				t.Fatalf("apply: %+v", out)
			}
			if scope == "prepared.json" {
				if out.Mode != "prepared" || len(out.Report.Statements[0].Locks) == 0 {
					t.Fatalf("prepared: %+v", out)
				}
			} else if d := before.Diff(pgtest.Fingerprint(t, h.url)); d != "" {
				t.Fatalf("replay apply changed the database:\n%s", d)
			}
			if got := countOrders(t, h, "status = 'refunded' AND id <= 3"); got != 0 {
				t.Fatalf("change visible before commit: %d rows", got)
			}
			if st := h.status(out.ChangeID); st["status"] != "pending" {
				t.Fatalf("status: %v", st)
			}
			if _, err := store.Commit(context.Background(), out.ChangeID, "alice"); err != nil {
				t.Fatalf("commit: %v", err)
			}
			if got := countOrders(t, h, "status = 'refunded' AND id <= 3"); got != 3 {
				t.Fatalf("after commit: %d rows", got)
			}
			st := h.status(out.ChangeID)
			if st["status"] != "committed" || st["reviewer"] != "alice" {
				t.Fatalf("status after commit: %v", st)
			}

			// The rollback path.
			out = h.apply("OPS-8", "DELETE FROM invoices WHERE id <= 2")
			if _, err := store.Rollback(context.Background(), out.ChangeID, "bob", "not today"); err != nil {
				t.Fatalf("rollback: %v", err)
			}
			if st := h.status(out.ChangeID); st["status"] != "rolled_back" || st["reason"] != "not today" {
				t.Fatalf("status after rollback: %v", st)
			}
			var n int
			h.pool.QueryRow(context.Background(), "SELECT count(*) FROM invoices WHERE id <= 2").Scan(&n)
			if n != 2 {
				t.Fatalf("rolled back change applied: %d", n)
			}
		})
	}
}

func TestChangeStatusScoped(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	out := h.apply("OPS-9", "DELETE FROM invoices WHERE id = 1")
	other := newHarnessOn(t, h.url, "prepared.json", nil)
	res := other.call(scopes.ToolChangeStatus, map[string]any{"change_id": out.ChangeID})
	if !res.IsError || strings.Contains(text(res), "OPS-9") {
		t.Fatalf("another scope sees the change: %s", text(res))
	}
	if res := h.call(scopes.ToolChangeStatus, map[string]any{"change_id": "not-a-uuid"}); !res.IsError {
		t.Fatal("bad id accepted")
	}
}

// TestBackgroundReaper: serve's reaper expires a change past its TTL
// without any reviewer command; it can then never be committed.
func TestBackgroundReaper(t *testing.T) {
	for _, scope := range []string{"support.json", "prepared.json"} {
		t.Run(scope, func(t *testing.T) {
			h := newHarness(t, scope, nil)
			out := h.apply("OPS-11", "DELETE FROM invoices WHERE id = 20")
			if _, err := h.pool.Exec(context.Background(), "UPDATE airlock.changes SET expires_at = now() WHERE id = $1", out.ChangeID); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for h.status(out.ChangeID)["status"] != "expired" {
				if time.Now().After(deadline) {
					t.Fatalf("not reaped: %v", h.status(out.ChangeID))
				}
				time.Sleep(100 * time.Millisecond)
			}
			store := review.NewStore(h.pool, nil)
			if _, err := store.Commit(context.Background(), out.ChangeID, "alice"); err == nil {
				t.Fatal("expired change committed")
			}
			var n int
			h.pool.QueryRow(context.Background(), "SELECT count(*) FROM invoices WHERE id = 20").Scan(&n)
			if n != 1 {
				t.Fatal("expired change applied")
			}
		})
	}
}

// TestDryRunProgress: a client that asks for progress gets a
// notifications/progress per statement.
func TestDryRunProgress(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	var mu sync.Mutex
	var got []map[string]any
	h.client.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			mu.Lock()
			got = append(got, n.Params.AdditionalFields)
			mu.Unlock()
		}
	})
	req := mcp.CallToolRequest{}
	req.Params.Name = scopes.ToolMigrateDryRun
	req.Params.Arguments = map[string]any{"sql": "UPDATE orders SET status = 'paid' WHERE id = 1; UPDATE orders SET status = 'paid' WHERE id = 2; DELETE FROM invoices WHERE id = 1"}
	req.Params.Meta = &mcp.Meta{ProgressToken: "tok-1"}
	res, err := h.client.CallTool(context.Background(), req)
	if err != nil || res.IsError {
		t.Fatalf("%v %v", err, res)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || got[2]["progressToken"] != "tok-1" || fmt.Sprint(got[2]["total"]) != "3" {
		t.Fatalf("progress notifications: %v", got)
	}
}

// TestPreparedModeNeedsPreparedTransactions: serve refuses to start a
// prepared-mode scope on a server with max_prepared_transactions = 0, and
// says how to fix it.
func TestPreparedModeNeedsPreparedTransactions(t *testing.T) {
	c, err := pgcluster.Start(context.Background(), pgcluster.Options{MaxPreparedTransactions: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	pool, err := pgxpool.New(context.Background(), c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = server.New(context.Background(), server.Config{Scope: loadScope(t, "prepared.json"), Pool: pool, Logger: discardLogger()})
	if err == nil || !strings.Contains(err.Error(), "max_prepared_transactions") || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("serve started without prepared transactions: %v", err)
	}
}
