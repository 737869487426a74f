package store

import "sync"

// cache is a bounded map from token id to V. Each entry has a cost (1 for
// a small value, its size for a large one); the cache keeps two generations
// of at most half its budget each, so memory stays bounded however many
// tokens are stored, and recently used entries survive a rotation.
type cache[V any] struct {
	half int
	cost func(V) int

	mu        sync.Mutex // guards the fields below
	cur, prev map[string]V
	used      int // cost of cur
}

// newCache returns a cache of budget; cost nil counts entries.
func newCache[V any](budget int, cost func(V) int) *cache[V] {
	if cost == nil {
		cost = func(V) int { return 1 }
	}
	return &cache[V]{half: max(budget/2, 1), cost: cost, cur: make(map[string]V)}
}

func (c *cache[V]) get(token string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[token]; ok {
		return v, true
	}
	v, ok := c.prev[token]
	if ok {
		c.putLocked(token, v)
	}
	return v, ok
}

func (c *cache[V]) put(token string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(token, v)
}

func (c *cache[V]) putLocked(token string, v V) {
	if old, ok := c.cur[token]; ok {
		c.used -= c.cost(old)
	}
	cost := c.cost(v)
	if c.used+cost > c.half && len(c.cur) > 0 {
		c.prev, c.cur, c.used = c.cur, make(map[string]V, len(c.cur)), 0
	}
	c.cur[token] = v
	c.used += cost
}

// remove forgets token in both generations.
func (c *cache[V]) remove(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.cur[token]; ok {
		c.used -= c.cost(old)
		delete(c.cur, token)
	}
	delete(c.prev, token)
}
