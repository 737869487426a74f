package store

import "sync"

// idCache remembers token id → workflow id, which never changes once a
// token exists, so a read by id skips the index lookup. It keeps two
// generations of at most half its size each: memory stays bounded however
// many tokens are stored, and recently used ids survive a rotation.
type idCache struct {
	half int

	mu        sync.Mutex // guards cur and prev
	cur, prev map[string]string
}

func newIDCache(size int) *idCache {
	return &idCache{half: max(size/2, 1), cur: make(map[string]string)}
}

func (c *idCache) get(token string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if wf, ok := c.cur[token]; ok {
		return wf, true
	}
	wf, ok := c.prev[token]
	if ok {
		c.putLocked(token, wf)
	}
	return wf, ok
}

func (c *idCache) put(token, wf string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(token, wf)
}

func (c *idCache) putLocked(token, wf string) {
	if len(c.cur) >= c.half {
		c.prev, c.cur = c.cur, make(map[string]string, c.half)
	}
	c.cur[token] = wf
}
