package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// reviewer runs an airlock reviewer command the way a human would, with
// their own AIRLOCK_DATABASE_URL. It returns the output and exit code.
func reviewer(t *testing.T, url string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL="+url)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

func applyChange(t *testing.T, c *client.Client, ticket, sql string) string {
	t.Helper()
	res := call(t, c, "apply_migration_with_ticket", map[string]any{"ticket": ticket, "summary": "e2e " + ticket, "sql": sql})
	if res.IsError {
		t.Fatalf("apply: %s", resultText(res))
	}
	b, _ := json.Marshal(res.StructuredContent)
	var out struct {
		ChangeID string `json:"change_id"`
		Status   string `json:"status"`
	}
	json.Unmarshal(b, &out)
	if out.Status != "pending" || out.ChangeID == "" {
		t.Fatalf("apply: %s", b)
	}
	return out.ChangeID
}

func changeStatus(t *testing.T, c *client.Client, id string) string {
	t.Helper()
	res := call(t, c, "get_change_status", map[string]any{"change_id": id})
	b, _ := json.Marshal(res.StructuredContent)
	var out struct{ Status string }
	json.Unmarshal(b, &out)
	return out.Status
}

func count(t *testing.T, url, sql string) int {
	t.Helper()
	var n int
	if err := pgtest.Connect(t, url).QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReviewFlow: the agent applies over stdio, the reviewer lists, shows
// and commits from the CLI, the change becomes visible; the rollback path;
// and expiry, after which commit is refused. In both write modes.
func TestReviewFlow(t *testing.T) {
	for _, scope := range []string{"support.json", "prepared.json"} {
		t.Run(scope, func(t *testing.T) {
			url := pgtest.NewDatabase(t)
			c := startAirlock(t, url, scope)

			id := applyChange(t, c, "OPS-1", "UPDATE orders SET status = 'refunded' WHERE id BETWEEN 1 AND 4")
			if n := count(t, url, "SELECT count(*) FROM orders WHERE status = 'refunded' AND id BETWEEN 1 AND 4"); n != 0 {
				t.Fatalf("visible before review: %d", n)
			}
			out, code := reviewer(t, url, "pending")
			if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "OPS-1") {
				t.Fatalf("pending (%d):\n%s", code, out)
			}
			out, code = reviewer(t, url, "pending", "--json")
			var list []map[string]any
			if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 {
				t.Fatalf("pending --json (%d):\n%s", code, out)
			}
			out, code = reviewer(t, url, "show", id)
			if code != 0 || !strings.Contains(out, "UPDATE orders") || !strings.Contains(out, "rows") {
				t.Fatalf("show (%d):\n%s", code, out)
			}
			if out, code = reviewer(t, url, "commit", id); code != 2 {
				t.Fatalf("commit without --reviewer: %d\n%s", code, out)
			}
			if out, code = reviewer(t, url, "commit", id, "--reviewer", "alice"); code != 0 {
				t.Fatalf("commit (%d):\n%s", code, out)
			}
			if n := count(t, url, "SELECT count(*) FROM orders WHERE status = 'refunded' AND id BETWEEN 1 AND 4"); n != 4 {
				t.Fatalf("after commit: %d rows", n)
			}
			if st := changeStatus(t, c, id); st != "committed" {
				t.Fatalf("status after commit: %s", st)
			}
			if out, code = reviewer(t, url, "commit", id, "--reviewer", "bob"); code == 0 || !strings.Contains(out, "alice") {
				t.Fatalf("second commit (%d):\n%s", code, out)
			}

			id = applyChange(t, c, "OPS-2", "DELETE FROM invoices WHERE id <= 3")
			if out, code = reviewer(t, url, "rollback", id, "--reviewer", "alice", "--reason", "wrong rows"); code != 0 {
				t.Fatalf("rollback (%d):\n%s", code, out)
			}
			if st := changeStatus(t, c, id); st != "rolled_back" {
				t.Fatalf("status after rollback: %s", st)
			}
			if n := count(t, url, "SELECT count(*) FROM invoices WHERE id <= 3"); n != 3 {
				t.Fatalf("rolled back change applied: %d", n)
			}

			// Expiry: move the change's deadline into the past (the test's
			// clock jump), then reap. An expired change can never commit.
			id = applyChange(t, c, "OPS-3", "DELETE FROM invoices WHERE id = 10")
			conn := pgtest.Connect(t, url)
			if _, err := conn.Exec(context.Background(), "UPDATE airlock.changes SET expires_at = now() - interval '1 second' WHERE id = $1", id); err != nil {
				t.Fatal(err)
			}
			if out, code = reviewer(t, url, "reap"); code != 0 {
				t.Fatalf("reap (%d):\n%s", code, out)
			}
			if st := changeStatus(t, c, id); st != "expired" {
				t.Fatalf("status after reap: %s", st)
			}
			if out, code = reviewer(t, url, "commit", id, "--reviewer", "alice"); code == 0 {
				t.Fatalf("expired change committed:\n%s", out)
			}
			if n := count(t, url, "SELECT count(*) FROM invoices WHERE id = 10"); n != 1 {
				t.Fatal("expired change applied")
			}
			if n := count(t, url, "SELECT count(*) FROM pg_prepared_xacts"); n != 0 {
				t.Fatalf("%d prepared transactions left", n)
			}
		})
	}
}

// TestPreparedSurvivesKill: kill -9 the server right after apply; the
// change is still pending and committable.
func TestPreparedSurvivesKill(t *testing.T) {
	url := pgtest.NewDatabase(t)
	c, cmd := startAirlockCmd(t, url, "prepared.json")
	id := applyChange(t, c, "OPS-5", "UPDATE orders SET status = 'cancelled' WHERE id = 7")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	out, code := reviewer(t, url, "pending")
	if code != 0 || !strings.Contains(out, id) {
		t.Fatalf("pending after kill (%d):\n%s", code, out)
	}
	if out, code = reviewer(t, url, "commit", id, "--reviewer", "alice"); code != 0 {
		t.Fatalf("commit after kill (%d):\n%s", code, out)
	}
	if n := count(t, url, "SELECT count(*) FROM orders WHERE id = 7 AND status = 'cancelled'"); n != 1 {
		t.Fatal("change lost")
	}
}

// TestReplayDrift: the data changes between apply and commit, so the
// replay affects a different number of rows: drifted, nothing committed.
func TestReplayDrift(t *testing.T) {
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, "support.json")
	id := applyChange(t, c, "OPS-6", "UPDATE orders SET status = 'cancelled' WHERE customer_id = 8")
	conn := pgtest.Connect(t, url)
	if _, err := conn.Exec(context.Background(), "DELETE FROM invoices WHERE order_id IN (SELECT id FROM orders WHERE customer_id = 8 LIMIT 1); DELETE FROM orders WHERE id = (SELECT min(id) FROM orders WHERE customer_id = 8)"); err != nil {
		t.Fatal(err)
	}
	before := pgtest.Fingerprint(t, url)
	out, code := reviewer(t, url, "commit", id, "--reviewer", "alice")
	if code == 0 || !strings.Contains(strings.ToLower(out), "drift") {
		t.Fatalf("drifted commit (%d):\n%s", code, out)
	}
	if st := changeStatus(t, c, id); st != "drifted" {
		t.Fatalf("status: %s", st)
	}
	after := pgtest.Fingerprint(t, url)
	if d := before.Diff(after); d != "" {
		t.Fatalf("drifted commit changed data:\n%s", d)
	}
}

// TestRacingReviewers: two reviewers commit the same change at the same
// moment; exactly one succeeds, and the change is applied once.
func TestRacingReviewers(t *testing.T) {
	for _, scope := range []string{"support.json", "prepared.json"} {
		t.Run(scope, func(t *testing.T) {
			url := pgtest.NewDatabase(t)
			c := startAirlock(t, url, scope)
			id := applyChange(t, c, "OPS-9", "INSERT INTO invoices (id, order_id, amount, issued_on, paid) VALUES (900001, 1, 5, '2024-01-01', false)")
			var wg sync.WaitGroup
			codes := make([]int, 2)
			start := time.Now().Add(200 * time.Millisecond)
			for i, who := range []string{"alice", "bob"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					time.Sleep(time.Until(start))
					_, codes[i] = reviewer(t, url, "commit", id, "--reviewer", who)
				}()
			}
			wg.Wait()
			if (codes[0] == 0) == (codes[1] == 0) {
				t.Fatalf("exit codes %v: want exactly one success", codes)
			}
			if n := count(t, url, "SELECT count(*) FROM invoices WHERE id = 900001"); n != 1 {
				t.Fatalf("applied %d times", n)
			}
		})
	}
}
