package main

import (
	"context"
	"fmt"
	"time"

	"github.com/cbnats/circuitbreaker/deploy/internal/timerlag"
	"github.com/cbnats/circuitbreaker/shared/client"
)

// timers measures timer lag (issue 17): --timers timers due in the same
// second, set by 16 clients beforehand; how late each fires (its fire's
// commit minus its due time) and how far fires stray from due order.
func (b *bench) timers(ctx context.Context, c *client.Client) error {
	if !b.s.only.MatchString("timers") {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	r, err := timerlag.Run(ctx, c, timerlag.Options{Timers: b.s.timers, Clients: 16,
		Workflow: fmt.Sprintf("cbbench_timers_%d", time.Now().Unix()), Wait: 2 * time.Minute,
		Progress: func(f string, a ...any) { fmt.Fprintf(b.progress, f+"\n", a...) }})
	if err != nil {
		return fmt.Errorf("timers case: %w", err)
	}
	name := fmt.Sprintf("timers: %d due in one second, fire lag", r.Timers)
	b.results = append(b.results, Result{Operation: name, Clients: 16, Ops: r.Fired, Errors: r.Timers - r.Fired,
		PerSecond: r.FireRate, P50: float64(r.P50.Microseconds()), P99: float64(r.P99.Microseconds()),
		Note: fmt.Sprintf("max %v, last %v after the second began, %d overtaken by ≤ %v",
			r.Max.Round(time.Millisecond), r.LastFired.Round(time.Millisecond), r.Overtaken, r.MaxOvertake.Round(time.Millisecond))})
	b.notes = append(b.notes, r.String())
	return nil
}
