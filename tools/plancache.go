package tools

import (
	"container/list"
	"sync"

	"github.com/airlock-dev/airlock/sqlguard"
)

// planCache remembers the guard's decision on recent read statements, as
// pgx remembers statement descriptions: agents repeat queries, and parsing
// and deparsing is the largest part of airlock's own per-call cost. Entries
// belong to one policy; a catalog reload starts an empty cache, so a cached
// decision never outlives the catalog it was made on. Refusals are not
// cached: they are cheap to recompute and rare on the hot path.
type planCache struct {
	mu     sync.Mutex
	policy *sqlguard.Policy
	max    int
	order  *list.List // front = most recent
	items  map[planKey]*list.Element
}

type planKey struct {
	sql     string
	maxRows int
}

type planEntry struct {
	key  planKey
	plan *sqlguard.ReadPlan
}

func newPlanCache(max int) *planCache {
	return &planCache{max: max, order: list.New(), items: map[planKey]*list.Element{}}
}

// check returns the plan for sql under policy, from the cache or the guard.
func (c *planCache) check(policy *sqlguard.Policy, sql string, maxRows int) (*sqlguard.ReadPlan, error) {
	key := planKey{sql, maxRows}
	c.mu.Lock()
	if c.policy != policy {
		c.policy = policy
		c.order.Init()
		clear(c.items)
	}
	if el, ok := c.items[key]; ok {
		c.order.MoveToFront(el)
		plan := el.Value.(*planEntry).plan
		c.mu.Unlock()
		return plan, nil
	}
	c.mu.Unlock()

	plan, err := policy.CheckRead(sql, maxRows)
	if err != nil || len(sql) > 8<<10 {
		return plan, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.policy == policy {
		if _, ok := c.items[key]; !ok {
			c.items[key] = c.order.PushFront(&planEntry{key: key, plan: plan})
			if c.order.Len() > c.max {
				oldest := c.order.Back()
				c.order.Remove(oldest)
				delete(c.items, oldest.Value.(*planEntry).key)
			}
		}
	}
	return plan, nil
}
