package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one measured row.
type Result struct {
	Operation string  `json:"operation"`
	Clients   int     `json:"clients"`
	Ops       int     `json:"ops"`
	Errors    int     `json:"errors"`
	PerSecond float64 `json:"opsPerSecond"`
	P50       float64 `json:"p50Micros"`
	P99       float64 `json:"p99Micros"`
	Baseline  string  `json:"baseline,omitempty"`
	Ratio     float64 `json:"ratio,omitempty"` // throughput / baseline throughput
	Note      string  `json:"note,omitempty"`
}

// op is one operation by worker w (0 ≤ w < clients), iteration i.
type op func(ctx context.Context, w, i int) error

// measure runs op from clients closed-loop workers for d (at most max
// operations in all) and reports throughput and latency percentiles.
func measure(name string, clients int, d time.Duration, max int, f op) Result {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	var firstErr error
	start := time.Now()
	end, _ := ctx.Deadline()
	var wg sync.WaitGroup
	var issued atomic.Int64
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1024)
			bad := 0
			for i := 0; ctx.Err() == nil; i++ {
				if issued.Add(1) > int64(max) {
					break
				}
				t0 := time.Now()
				if err := f(ctx, w, i); err != nil {
					if !time.Now().Before(end) { // cut off by the end of the case
						break
					}
					bad++
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "  %s: %d errors, first: %v\n", name, errs, firstErr)
	}
	return summarize(name, clients, lat, errs, el)
}

func summarize(name string, clients int, lat []time.Duration, errs int, el time.Duration) Result {
	slices.Sort(lat)
	r := Result{Operation: name, Clients: clients, Ops: len(lat), Errors: errs}
	if len(lat) == 0 {
		return r
	}
	r.PerSecond = float64(len(lat)) / el.Seconds()
	r.P50 = micros(lat[len(lat)/2])
	r.P99 = micros(lat[min(len(lat)-1, len(lat)*99/100)])
	return r
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
