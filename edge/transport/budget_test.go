package transport

import (
	"context"
	"testing"
	"time"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

// TestBudgetBoundsAConnection: two operations of one connection share its
// budget; while nothing is written, the second cannot buffer past it and
// overflows after the wait, though its own message buffer has room.
func TestBudgetBoundsAConnection(t *testing.T) {
	bud := newBudget(100)
	results := func(n int) <-chan *gql.Response {
		ch := make(chan *gql.Response, n)
		for range n {
			ch <- &gql.Response{}
		}
		close(ch)
		return ch
	}
	encode := func(*gql.Response) []byte { return make([]byte, 40) }
	paused := make(chan struct{})
	send := func([]byte) bool { <-paused; return false }
	first := make(chan bool, 1)
	go func() {
		first <- forward(context.Background(), results(2), 64, bud, time.Second, encode, send, func() {})
	}()
	for deadline := time.Now().Add(5 * time.Second); ; { // the first operation takes 80 of 100 bytes
		bud.mu.Lock()
		used := bud.used
		bud.mu.Unlock()
		if used == 80 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first operation buffered %d bytes, want 80", used)
		}
		time.Sleep(time.Millisecond)
	}
	overflowed := false
	start := time.Now()
	ok := forward(context.Background(), results(1), 64, bud, 200*time.Millisecond, encode, send, func() { overflowed = true })
	if ok || !overflowed {
		t.Fatalf("second operation: ok=%v overflowed=%v; want an overflow", ok, overflowed)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("overflow after %v, want about 200ms", d)
	}
	close(paused)
	<-first
	if bud.used != 0 {
		t.Fatalf("%d bytes still counted after both ended", bud.used)
	}
}

// TestBudgetAdmitsOneLargeMessage: a message larger than the whole budget
// is buffered when nothing else is.
func TestBudgetAdmitsOneLargeMessage(t *testing.T) {
	bud := newBudget(10)
	if !bud.take(context.Background(), 1000, time.Millisecond) {
		t.Fatal("a lone large message was refused")
	}
	if bud.take(context.Background(), 1, 10*time.Millisecond) {
		t.Fatal("a second message fit past the budget")
	}
	bud.give(1000)
	if !bud.take(context.Background(), 5, time.Millisecond) {
		t.Fatal("freed bytes were not reusable")
	}
}
