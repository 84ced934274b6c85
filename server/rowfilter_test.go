package server_test

import (
	"context"
	"encoding/json"
	"testing"
)

// TestRowFilterThroughQueryReadonly: a scope's row_filter (tenant_id = 2)
// compiled to a row-level security policy hides other tenants' rows from
// every query the agent can send: plain reads, aggregates, joins and
// subqueries; other roles still see everything.
func TestRowFilterThroughQueryReadonly(t *testing.T) {
	h := newHarness(t, "row_filter.json", nil)
	ctx := context.Background()
	var want, others int
	h.pool.QueryRow(ctx, "SELECT count(*) FROM customers WHERE tenant_id = 2").Scan(&want)
	h.pool.QueryRow(ctx, "SELECT count(*) FROM customers WHERE tenant_id <> 2").Scan(&others)
	if want == 0 || others == 0 {
		t.Fatalf("seed has %d tenant-2 and %d other customers", want, others)
	}
	var wantOrders int
	h.pool.QueryRow(ctx, "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.tenant_id = 2").Scan(&wantOrders)

	for _, tc := range []struct {
		sql  string
		want int
	}{
		{"SELECT count(*) FROM customers", want},
		{"SELECT count(*) FROM customers WHERE tenant_id <> 2", 0},
		{"SELECT count(DISTINCT tenant_id) FROM customers", 1},
		{"SELECT count(*) FROM (SELECT id FROM customers WHERE tenant_id = 1) s", 0},
		{"SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id", wantOrders},
		{"SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.tenant_id = 3", 0},
		{"SELECT count(*) FROM orders WHERE customer_id IN (SELECT id FROM customers)", wantOrders},
		{"SELECT count(*) FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND c.tenant_id = 1)", 0},
	} {
		t.Run(tc.sql, func(t *testing.T) {
			out := h.mustQuery(tc.sql)
			var got int
			if err := json.Unmarshal(out.Rows[0][0], &got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
	// Other roles are unaffected by the scope's policy.
	var all int
	h.pool.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&all)
	if all != want+others {
		t.Fatalf("the admin sees %d customers, want %d", all, want+others)
	}
}
