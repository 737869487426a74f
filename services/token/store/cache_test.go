package store

import (
	"fmt"
	"testing"
)

func TestCacheStaysBounded(t *testing.T) {
	c := newCache[string](100, nil)
	for i := range 1000 {
		c.put(fmt.Sprint(i), "wf")
		if n := len(c.cur) + len(c.prev); n > 100 {
			t.Fatalf("%d entries after %d puts", n, i+1)
		}
	}
	if _, ok := c.get("999"); !ok {
		t.Fatal("the newest id was evicted")
	}
	if _, ok := c.get("0"); ok {
		t.Fatal("the oldest id survived")
	}
	c.put("hot", "wf")
	for i := range 60 { // one rotation: "hot" moves to prev
		c.put(fmt.Sprint("x", i), "wf")
	}
	if wf, ok := c.get("hot"); !ok || wf != "wf" {
		t.Fatal("a recent id was lost at rotation")
	}
	c.remove("hot")
	if _, ok := c.get("hot"); ok {
		t.Fatal("a removed id is still there")
	}
}

func TestCacheBudgetCountsCost(t *testing.T) {
	c := newCache[[]byte](1000, func(b []byte) int { return len(b) })
	for i := range 100 {
		c.put(fmt.Sprint(i), make([]byte, 100))
		if n := len(c.cur) + len(c.prev); n > 10 {
			t.Fatalf("%d entries of 100 bytes in a budget of 1000", n)
		}
	}
	c.put("big", make([]byte, 5000)) // larger than a generation: kept alone
	if _, ok := c.get("big"); !ok {
		t.Fatal("an entry larger than the budget was not kept")
	}
}

// TestCacheReplaceKeepsItsCost: a hot entry replaced again and again does
// not push the others out.
func TestCacheReplaceKeepsItsCost(t *testing.T) {
	c := newCache[[]byte](1000, func(b []byte) int { return len(b) })
	c.put("cold", make([]byte, 100))
	for range 100 {
		c.put("hot", make([]byte, 100))
	}
	if _, ok := c.cur["cold"]; !ok {
		t.Fatal("replacing one entry rotated the others out")
	}
}
