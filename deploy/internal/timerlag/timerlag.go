// Package timerlag measures how late timers fire when many fall due in
// the same second: it creates n tokens whose at-timers are due one after
// another within one whole second, waits until all have fired and reports
// the lag of each (the fire's commit stamp minus its due time) and how
// far the fires strayed from due order. cbbench's "timers" case and the
// system test of 10,000 timers run it.
package timerlag

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Options of a run.
type Options struct {
	Timers   int           // timers due in the same second
	Clients  int           // concurrent creators
	Workflow string        // id of the workflow to create
	Wait     time.Duration // how long after the second to wait for the fires
	Progress func(format string, args ...any)
}

// Report is what a run measured.
type Report struct {
	Timers      int
	Fired       int
	CreateRate  float64       // tokens created per second (the lead was sized from it)
	Second      time.Time     // the second every timer fell due in
	P50, P99    time.Duration // lag of a timer: its fire's commit minus its due time
	Max         time.Duration
	LastFired   time.Duration // the last fire's commit, after the start of the second
	FireRate    float64       // fires per second, first to last
	Overtaken   int           // fires committed after a fire of a timer due later
	MaxOvertake time.Duration // the most a timer was overtaken by (due time of the later-due fire committed before it, minus its own)
}

func (r Report) String() string {
	return fmt.Sprintf("%d of %d timers due within one second fired; lag p50 %v, p99 %v, max %v; last fire %v after the second began (%.0f fires/s); %d fired after a later-due one (by ≤ %v); created at %.0f/s",
		r.Fired, r.Timers, r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Max.Round(time.Millisecond),
		r.LastFired.Round(time.Millisecond), r.FireRate, r.Overtaken, r.MaxOvertake.Round(time.Millisecond), r.CreateRate)
}

// Definition is the workflow of a run: tokens wait in "hold" until
// data.due, then "due" moves them to "fired".
func Definition(id string) *wire.CreateWorkflowRequest {
	return &wire.CreateWorkflowRequest{ID: id, Name: "timer lag", Places: []string{"hold", "fired"}, InitialPlace: "hold",
		Transitions: []flow.Transition{{ID: "due", FromPlaces: []string{"hold"}, ToPlace: "fired", At: "data.due"}}}
}

// Run creates the workflow and the timers, waits for the fires and
// measures them.
func Run(ctx context.Context, c *client.Client, o Options) (Report, error) {
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
	o.Clients = max(o.Clients, 1)
	r := Report{Timers: o.Timers}
	// A pilot of tokens without a due time (so without a timer) sizes the
	// lead: every timer must be set before its second begins. When the
	// machine slows down and creating runs into the second, the run starts
	// again on a new workflow with a lead sized from the rate just seen.
	if _, err := c.CreateWorkflow(ctx, Definition(o.Workflow+"_pilot")); err != nil {
		return r, err
	}
	pilot := min(500, o.Timers/10+20)
	t0 := time.Now()
	if err := create(ctx, c, o.Workflow+"_pilot", o.Clients, pilot, func(int) json.RawMessage { return nil }); err != nil {
		return r, err
	}
	r.CreateRate = float64(pilot) / time.Since(t0).Seconds()
	const attempts = 3
	for attempt := 1; ; attempt++ {
		wf := o.Workflow
		if attempt > 1 {
			wf = fmt.Sprintf("%s_%d", o.Workflow, attempt)
		}
		if _, err := c.CreateWorkflow(ctx, Definition(wf)); err != nil {
			return r, err
		}
		lead := time.Duration(float64(o.Timers)/r.CreateRate*float64(attempt+1)*float64(time.Second)) + 1500*time.Millisecond
		r.Second = time.Now().Add(lead).Truncate(time.Second).Add(time.Second)
		due := func(i int) time.Time { return r.Second.Add(time.Duration(i) * time.Second / time.Duration(o.Timers)) }
		o.Progress("creating %d timers due in the second from %s (creating at %.0f/s) ...", o.Timers, r.Second.Format("15:04:05"), r.CreateRate)
		t0 = time.Now()
		err := create(ctx, c, wf, o.Clients, o.Timers, func(i int) json.RawMessage {
			b, _ := json.Marshal(map[string]string{"due": due(i).UTC().Format(time.RFC3339Nano)})
			return b
		})
		if err != nil {
			return r, err
		}
		r.CreateRate = float64(o.Timers) / time.Since(t0).Seconds()
		if late := time.Now(); late.Before(r.Second) {
			o.Workflow = wf
			break
		} else if attempt == attempts {
			return r, fmt.Errorf("creating the timers ran %v into their second %d times: the machine is too busy to measure", late.Sub(r.Second), attempts)
		} else {
			o.Progress("creating ran %v into the second (%.0f/s): again with a longer lead", late.Sub(r.Second), r.CreateRate)
		}
	}
	deadline := r.Second.Add(time.Second + o.Wait)
	var fired []*flow.Token
	for {
		var err error
		if fired, err = inPlace(ctx, c, o.Workflow, "fired"); err != nil {
			return r, err
		}
		if len(fired) == o.Timers || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.Fired = len(fired)
	if r.Fired == 0 {
		return r, fmt.Errorf("no timer fired within %v of its second", o.Wait)
	}
	measure(&r, fired)
	return r, nil
}

// create makes n tokens of wf with data(i), clients at a time, in order of i.
func create(ctx context.Context, c *client.Client, wf string, clients, n int, data func(int) json.RawMessage) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first atomic.Value
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.Load() != nil {
					return
				}
				if _, err := c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: wf, Data: data(i)}); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

// inPlace lists every token in place.
func inPlace(ctx context.Context, c *client.Client, wf, place string) ([]*flow.Token, error) {
	var out []*flow.Token
	p := wire.Page{First: 1000}
	for {
		page, err := c.TokensInPlace(ctx, wf, place, p)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			return out, nil
		}
		p.After = page.Next
	}
}

// measure fills r's lags and order from the fired tokens.
func measure(r *Report, fired []*flow.Token) {
	type fire struct {
		due, at time.Time
		seq     uint64
	}
	fs := make([]fire, 0, len(fired))
	for _, t := range fired {
		var d struct {
			Due time.Time `json:"due"`
		}
		_ = json.Unmarshal(t.Data, &d)
		fs = append(fs, fire{due: d.Due, at: t.NatsTimestamp, seq: t.NatsSequence})
	}
	slices.SortFunc(fs, func(a, b fire) int { return int(a.seq) - int(b.seq) })
	lags := make([]time.Duration, len(fs))
	var latestDue time.Time
	for i, f := range fs {
		lags[i] = f.at.Sub(f.due)
		if f.due.Before(latestDue) {
			r.Overtaken++
			r.MaxOvertake = max(r.MaxOvertake, latestDue.Sub(f.due))
		} else {
			latestDue = f.due
		}
	}
	first, last := fs[0].at, fs[len(fs)-1].at
	for _, f := range fs {
		first, last = minTime(first, f.at), maxTime(last, f.at)
	}
	r.LastFired = last.Sub(r.Second)
	if span := last.Sub(first).Seconds(); span > 0 {
		r.FireRate = float64(len(fs)) / span
	}
	slices.Sort(lags)
	r.P50, r.P99, r.Max = lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1]
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
