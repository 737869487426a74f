package store

import (
	"fmt"
	"testing"
)

func TestCacheStaysBounded(t *testing.T) {
	c := newCache[string](100)
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
