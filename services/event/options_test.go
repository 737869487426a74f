package event

import "testing"

// TestOptionsDefaults: the zero Options give the documented defaults.
func TestOptionsDefaults(t *testing.T) {
	s := New(nil, Options{})
	if s.maxDeliver != DefaultMaxDeliver || s.maxSubs != DefaultMaxSubscriptions || DefaultMaxSubscriptions != 100 {
		t.Fatalf("maxDeliver %d, maxSubs %d", s.maxDeliver, s.maxSubs)
	}
	if s := New(nil, Options{MaxDeliver: 2, MaxSubscriptions: 7}); s.maxDeliver != 2 || s.maxSubs != 7 {
		t.Fatalf("maxDeliver %d, maxSubs %d", s.maxDeliver, s.maxSubs)
	}
}
