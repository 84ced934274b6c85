package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// The approval is bound to what commits (docs/architecture.md, Approvals
// and Effects). Every test here ends with the database oracle: whatever
// the reviewer's command printed, the data is what it was unless the
// change the reviewer saw committed.

var approvalLine = regexp.MustCompile(`(?m)^approval:\s+([0-9a-f]{64})$`)

// showApproval runs airlock show and returns the approval hash it prints.
func showApproval(t *testing.T, url, id string) (string, string) {
	t.Helper()
	out, code := reviewer(t, url, "show", id)
	m := approvalLine.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("show (%d) prints no approval hash:\n%s", code, out)
	}
	return m[1], out
}

// TestCommitComparesRows: statements whose row counts stay the same while
// the rows they reach change between the dry run and the commit drift.
func TestCommitComparesRows(t *testing.T) {
	tests := []struct {
		name, sql, between string
	}{
		{
			name:    "a data-dependent predicate picks another row",
			sql:     "UPDATE orders SET status = 'cancelled' WHERE id = (SELECT min(id) FROM orders WHERE status <> 'cancelled')",
			between: "UPDATE orders SET status = 'cancelled' WHERE id = (SELECT min(id) FROM orders WHERE status <> 'cancelled')",
		},
		{
			name:    "rows moved between dry run and commit",
			sql:     "DELETE FROM invoices WHERE order_id IN (SELECT id FROM orders WHERE status = 'refunded' AND id <= 40)",
			between: "UPDATE orders SET status = 'refunded' WHERE id = (SELECT min(id) FROM orders WHERE id <= 40 AND status <> 'refunded' AND id IN (SELECT order_id FROM invoices)); UPDATE orders SET status = 'paid' WHERE id = (SELECT max(id) FROM orders WHERE id <= 40 AND status = 'refunded' AND id IN (SELECT order_id FROM invoices))",
		},
		{
			name:    "the value a row gets depends on data read at commit",
			sql:     "UPDATE orders SET notes = (SELECT name FROM products WHERE id = 1) WHERE id = 3",
			between: "UPDATE products SET name = name || ' (renamed)' WHERE id = 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := pgtest.NewDatabase(t)
			c := startAirlock(t, url, "support.json")
			id := applyChange(t, c, "OPS-21", tt.sql)
			_, show := showApproval(t, url, id)
			if !strings.Contains(show, "a commit compares:") {
				t.Errorf("show does not say what a commit compares:\n%s", show)
			}
			if _, err := pgtest.Connect(t, url).Exec(context.Background(), tt.between); err != nil {
				t.Fatal(err)
			}
			before := pgtest.Fingerprint(t, url)
			out, code := reviewer(t, url, "commit", id, "--reviewer", "alice")
			if code == 0 || !strings.Contains(out, "not the same rows or values") {
				t.Fatalf("commit (%d) did not drift on the rows:\n%s", code, out)
			}
			if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
				t.Fatalf("a drifted commit changed the database:\n%s", d)
			}
			if st := changeStatus(t, c, id); st != "drifted" {
				t.Fatalf("status %s, want drifted", st)
			}
		})
	}
}

// TestCommitBoundToApproval: a stored change altered after the reviewer
// read it, a scope narrowed since, or a wrong --expect: no commit.
func TestCommitBoundToApproval(t *testing.T) {
	const sql = "UPDATE orders SET status = 'cancelled' WHERE id = 9"
	tamper := func(t *testing.T, url, id, set string) {
		t.Helper()
		_, err := pgtest.Connect(t, url).Exec(context.Background(), `
			ALTER TABLE airlock.changes DISABLE TRIGGER changes_guard;
			UPDATE airlock.changes SET `+set+` WHERE id = '`+id+`';
			ALTER TABLE airlock.changes ENABLE TRIGGER changes_guard`)
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		before func(t *testing.T, url, id string) // between show and commit
		expect bool                               // commit with --expect
		want   string
	}{
		{
			name: "stored statements altered",
			before: func(t *testing.T, url, id string) {
				tamper(t, url, id, `statements = jsonb_set(statements, '{0,qualified_sql}', '"DELETE FROM public.orders"')`)
			},
			want: "is not what the guard makes of the change's SQL",
		},
		{
			name: "stored statements and SQL altered alike",
			before: func(t *testing.T, url, id string) {
				tamper(t, url, id, `sql = 'DELETE FROM orders WHERE id = 9',
					statements = jsonb_set(jsonb_set(jsonb_set(statements, '{0,qualified_sql}', '"DELETE FROM public.orders WHERE id = 9"'),
						'{0,sql}', '"DELETE FROM orders WHERE id = 9"'), '{0,kind}', '"delete"')`)
			},
			expect: true,
			want:   "is not the change you reviewed",
		},
		{
			name: "summary altered after show",
			before: func(t *testing.T, url, id string) {
				tamper(t, url, id, `summary = 'harmless typo fix'`)
			},
			expect: true,
			want:   "is not the change you reviewed",
		},
		{
			name: "scope narrowed since",
			before: func(t *testing.T, url, id string) {
				doc, err := os.ReadFile(filepath.Join("..", "testdata", "scopes", "support.json"))
				if err != nil {
					t.Fatal(err)
				}
				var scope map[string]any
				if err := json.Unmarshal(doc, &scope); err != nil {
					t.Fatal(err)
				}
				w := scope["write"].(map[string]any)
				w["allow"] = []string{"insert"}
				w["tables"] = []string{"public.orders", "public.invoices"}
				b, _ := json.Marshal(scope)
				path := filepath.Join(t.TempDir(), "narrowed.json")
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
				if out, code := reviewer(t, url, "scope", "apply", "--scope", path); code != 0 {
					t.Fatalf("scope apply (%d):\n%s", code, out)
				}
			},
			want: "changed since the change was recorded",
		},
		{
			name:   "wrong approval hash",
			before: func(*testing.T, string, string) {},
			want:   "is not the change you reviewed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := pgtest.NewDatabase(t)
			c := startAirlock(t, url, "support.json")
			id := applyChange(t, c, "OPS-22", sql)
			hash, _ := showApproval(t, url, id)
			tt.before(t, url, id)
			before := pgtest.Fingerprint(t, url)
			args := []string{"commit", id, "--reviewer", "alice"}
			switch {
			case tt.expect:
				args = append(args, "--expect", hash)
			case tt.name == "wrong approval hash":
				args = append(args, "--expect", strings.Repeat("0", 64))
			}
			out, code := reviewer(t, url, args...)
			if code == 0 || !strings.Contains(out, tt.want) {
				t.Fatalf("commit (%d), want a refusal saying %q:\n%s", code, tt.want, out)
			}
			if d := before.Diff(pgtest.Fingerprint(t, url)); d != "" {
				t.Fatalf("a refused commit changed the database:\n%s", d)
			}
			if st := changeStatus(t, c, id); st != "pending" {
				t.Fatalf("status %s, want pending", st)
			}
		})
	}

	t.Run("the expected hash commits", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		c := startAirlock(t, url, "support.json")
		id := applyChange(t, c, "OPS-23", sql)
		hash, _ := showApproval(t, url, id)
		if out, code := reviewer(t, url, "commit", id, "--reviewer", "alice", "--expect", hash[:16]); code != 0 {
			t.Fatalf("commit --expect (%d):\n%s", code, out)
		}
		if n := count(t, url, "SELECT count(*) FROM orders WHERE id = 9 AND status = 'cancelled'"); n != 1 {
			t.Fatal("the approved change did not commit")
		}
	})
}
