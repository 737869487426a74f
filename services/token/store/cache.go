package store

import "sync"

// cache is a bounded map from token id to V. It keeps two generations of at
// most half its size each: memory stays bounded however many tokens are
// stored, and recently used entries survive a rotation.
type cache[V any] struct {
	half int

	mu        sync.Mutex // guards cur and prev
	cur, prev map[string]V
}

func newCache[V any](size int) *cache[V] {
	return &cache[V]{half: max(size/2, 1), cur: make(map[string]V)}
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
	if len(c.cur) >= c.half {
		c.prev, c.cur = c.cur, make(map[string]V, c.half)
	}
	c.cur[token] = v
}

// remove forgets token in both generations.
func (c *cache[V]) remove(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cur, token)
	delete(c.prev, token)
}
