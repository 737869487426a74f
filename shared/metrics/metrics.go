// Package metrics keeps counters, gauges and latency histograms and writes
// them in the Prometheus text exposition format. A Registry is passed to
// whoever records; there is no global registry.
package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBuckets are latency buckets in seconds, from 50 µs to 10 s.
var DefaultBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}

// Registry holds metric families by name. It is safe for concurrent use.
type Registry struct {
	mu       sync.Mutex // guards families
	families map[string]*family
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{families: make(map[string]*family)} }

type kind string

const (
	counterKind   kind = "counter"
	gaugeKind     kind = "gauge"
	histogramKind kind = "histogram"
)

// family is one metric name with its series by label values.
type family struct {
	name, help string
	kind       kind
	labels     []string
	buckets    []float64

	mu     sync.Mutex // guards series
	series map[string]*series
}

type series struct {
	labels string         // rendered {k="v",…}
	value  atomic.Int64   // counters and gauges
	counts []atomic.Int64 // histogram buckets (+Inf last)
	sum    atomic.Int64   // histogram sum in nanoseconds
}

func (r *Registry) family(name, help string, k kind, labels []string, buckets []float64) *family {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.families[name]; ok {
		return f
	}
	f := &family{name: name, help: help, kind: k, labels: labels, buckets: buckets, series: make(map[string]*series)}
	r.families[name] = f
	return f
}

func (f *family) with(values []string) *series {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s wants %d label values, got %d", f.name, len(f.labels), len(values)))
	}
	key := strings.Join(values, "\xff")
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.series[key]; ok {
		return s
	}
	s := &series{labels: render(f.labels, values)}
	if f.kind == histogramKind {
		s.counts = make([]atomic.Int64, len(f.buckets)+1)
	}
	f.series[key] = s
	return s
}

func render(names, values []string) string {
	if len(names) == 0 {
		return ""
	}
	parts := make([]string, len(names))
	for i := range names {
		parts[i] = fmt.Sprintf("%s=%q", names[i], values[i])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Counter is a monotonically increasing count.
type Counter struct{ f *family }

// Counter returns the counter family name with the given label names.
func (r *Registry) Counter(name, help string, labels ...string) Counter {
	return Counter{r.family(name, help, counterKind, labels, nil)}
}

// Inc adds one to the series with these label values.
func (c Counter) Inc(values ...string) { c.f.with(values).value.Add(1) }

// Add adds n to the series with these label values.
func (c Counter) Add(n int64, values ...string) { c.f.with(values).value.Add(n) }

// Gauge is a value that goes up and down.
type Gauge struct{ f *family }

// Gauge returns the gauge family name.
func (r *Registry) Gauge(name, help string, labels ...string) Gauge {
	return Gauge{r.family(name, help, gaugeKind, labels, nil)}
}

// Add adds d (which may be negative) to the series.
func (g Gauge) Add(d int64, values ...string) { g.f.with(values).value.Add(d) }

// Histogram counts durations in buckets.
type Histogram struct{ f *family }

// Histogram returns the latency histogram family name (seconds).
func (r *Registry) Histogram(name, help string, labels ...string) Histogram {
	return Histogram{r.family(name, help, histogramKind, labels, DefaultBuckets)}
}

// Observe records one duration.
func (h Histogram) Observe(d time.Duration, values ...string) {
	s := h.f.with(values)
	i := sort.SearchFloat64s(h.f.buckets, d.Seconds())
	s.counts[i].Add(1)
	s.sum.Add(int64(d))
}

// WriteTo writes every family in the text exposition format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	names := make([]string, 0, len(r.families))
	for n := range r.families {
		names = append(names, n)
	}
	r.mu.Unlock()
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		r.mu.Lock()
		f := r.families[n]
		r.mu.Unlock()
		f.write(&b)
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func (f *family) write(b *strings.Builder) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.kind)
	f.mu.Lock()
	keys := make([]string, 0, len(f.series))
	for k := range f.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	all := make([]*series, len(keys))
	for i, k := range keys {
		all[i] = f.series[k]
	}
	f.mu.Unlock()
	for _, s := range all {
		if f.kind != histogramKind {
			fmt.Fprintf(b, "%s%s %d\n", f.name, s.labels, s.value.Load())
			continue
		}
		f.writeHistogram(b, s)
	}
}

func (f *family) writeHistogram(b *strings.Builder, s *series) {
	var cum int64
	for i, le := range append(append([]float64{}, f.buckets...), math.Inf(1)) {
		cum += s.counts[i].Load()
		fmt.Fprintf(b, "%s_bucket%s %d\n", f.name, withLE(s.labels, le), cum)
	}
	fmt.Fprintf(b, "%s_sum%s %g\n%s_count%s %d\n", f.name, s.labels, time.Duration(s.sum.Load()).Seconds(), f.name, s.labels, cum)
}

func withLE(labels string, le float64) string {
	v := "+Inf"
	if !math.IsInf(le, 1) {
		v = fmt.Sprintf("%g", le)
	}
	if labels == "" {
		return `{le="` + v + `"}`
	}
	return labels[:len(labels)-1] + `,le="` + v + `"}`
}

// Handler serves the registry at /metrics.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = r.WriteTo(w)
	})
}
