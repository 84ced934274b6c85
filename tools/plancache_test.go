package tools

import (
	"fmt"
	"testing"

	"github.com/airlock-dev/airlock/sqlguard"
)

func TestPlanCache(t *testing.T) {
	policy := &sqlguard.Policy{
		Tables:    map[string]*sqlguard.Table{"public.t": {Schema: "public", Name: "t", Columns: []sqlguard.Column{{Name: "a", Access: sqlguard.Allowed}}}},
		Functions: sqlguard.FunctionRule{Volatility: map[string]byte{}},
	}
	c := newPlanCache(2)
	p1, err := c.check(policy, "SELECT a FROM t", 10)
	if err != nil {
		t.Fatal(err)
	}
	if p2, _ := c.check(policy, "SELECT a FROM t", 10); p2 != p1 {
		t.Fatal("second check not served from the cache")
	}
	if p3, _ := c.check(policy, "SELECT a FROM t", 11); p3 == p1 {
		t.Fatal("max_rows not part of the key")
	}
	if _, err := c.check(policy, "SELECT a FROM secrets", 10); err == nil {
		t.Fatal("refusal lost")
	}
	for i := 0; i < 5; i++ {
		c.check(policy, fmt.Sprintf("SELECT a FROM t WHERE a = %d", i), 10)
	}
	if c.order.Len() != 2 || len(c.items) != 2 {
		t.Fatalf("cache not bounded: %d", c.order.Len())
	}
	other := &sqlguard.Policy{Tables: map[string]*sqlguard.Table{}, Functions: sqlguard.FunctionRule{}}
	if _, err := c.check(other, "SELECT a FROM t", 10); err == nil {
		t.Fatal("plan survived a policy change")
	}
}
