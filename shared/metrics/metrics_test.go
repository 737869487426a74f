package metrics

import (
	"strings"
	"testing"
	"time"
)

func TestExposition(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("cb_requests_total", "Requests.", "endpoint", "code")
	c.Inc("fire", "200")
	c.Inc("fire", "200")
	c.Inc("get", "404")
	g := r.Gauge("cb_subscriptions_open", "Open subscriptions.")
	g.Add(3)
	g.Add(-1)
	h := r.Histogram("cb_latency_seconds", "Latency.", "endpoint")
	h.Observe(300*time.Microsecond, "fire")
	h.Observe(2*time.Second, "fire")
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# TYPE cb_requests_total counter\n",
		`cb_requests_total{endpoint="fire",code="200"} 2` + "\n",
		`cb_requests_total{endpoint="get",code="404"} 1` + "\n",
		"cb_subscriptions_open 2\n",
		`cb_latency_seconds_bucket{endpoint="fire",le="0.0005"} 1` + "\n",
		`cb_latency_seconds_bucket{endpoint="fire",le="1"} 1` + "\n",
		`cb_latency_seconds_bucket{endpoint="fire",le="2.5"} 2` + "\n",
		`cb_latency_seconds_bucket{endpoint="fire",le="+Inf"} 2` + "\n",
		`cb_latency_seconds_count{endpoint="fire"} 2` + "\n",
		`cb_latency_seconds_sum{endpoint="fire"} 2.0003` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}
