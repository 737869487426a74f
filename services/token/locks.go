package token

import (
	"hash/maphash"
	"sync"
)

// stripes is the number of token locks; tokens hashing to the same stripe
// share a lock, which only serialises them.
const stripes = 4096

// tokenLocks serialises the read–validate–commit cycles of one token within
// this instance, so concurrent changes to a token queue here instead of
// failing each other's compare-and-swap. Instances still race each other,
// and the store's compare-and-swap settles those races.
type tokenLocks struct {
	seed maphash.Seed
	mu   [stripes]sync.Mutex
}

func newTokenLocks() *tokenLocks { return &tokenLocks{seed: maphash.MakeSeed()} }

// lock locks the token's stripe and returns its unlock.
func (l *tokenLocks) lock(tokenID string) func() {
	m := &l.mu[maphash.String(l.seed, tokenID)%stripes]
	m.Lock()
	return m.Unlock
}
