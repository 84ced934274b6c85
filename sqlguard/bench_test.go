package sqlguard

import "testing"

func BenchmarkCheckRead(b *testing.B) {
	queries := []struct{ name, sql string }{
		{"point", "SELECT id, name, email FROM customers WHERE id = $1"},
		{"join_aggregate", "SELECT c.name, count(o.id), sum(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id " +
			"WHERE o.created_at > now() - interval '30 days' GROUP BY c.name HAVING sum(o.total) > 100 ORDER BY 3 DESC LIMIT 20"},
		{"cte", "WITH recent AS (SELECT customer_id, max(created_at) AS last FROM orders GROUP BY customer_id), " +
			"paid AS (SELECT o.customer_id, sum(i.amount) AS amount FROM invoices i JOIN orders o ON o.id = i.order_id WHERE i.paid GROUP BY 1) " +
			"SELECT c.id, c.plan, r.last, p.amount FROM customers c JOIN recent r ON r.customer_id = c.id LEFT JOIN paid p ON p.customer_id = c.id"},
	}
	p := readTestPolicy()
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := p.CheckRead(q.sql, 500); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
