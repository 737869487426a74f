package server

import (
	"net/netip"
	"sync"
)

// clientSlots counts the requests in progress per client address and
// refuses more than max from one; a negative max has no limit.
type clientSlots struct {
	max int

	mu sync.Mutex           // guards n
	n  map[netip.Prefix]int // requests in progress by address; absent when none
}

// newClientSlots returns slots for at most max requests per address.
func newClientSlots(max int) *clientSlots {
	return &clientSlots{max: max, n: make(map[netip.Prefix]int)}
}

// acquire takes a slot for the address key if it has one free.
func (c *clientSlots) acquire(key netip.Prefix) bool {
	if c.max < 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] >= c.max {
		return false
	}
	c.n[key]++
	return true
}

// release frees a slot taken by acquire.
func (c *clientSlots) release(key netip.Prefix) {
	if c.max < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] <= 1 {
		delete(c.n, key)
		return
	}
	c.n[key]--
}

// clientKey is the address a request is counted under: the remote IPv4
// address, or the /64 network of an IPv6 one, since one IPv6 host usually
// has a whole /64 to choose from. Addresses that do not parse share the
// zero key.
func clientKey(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	a := ap.Addr().Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}
