package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

const eventsWorkflow = "cbbench_events"

// fanout measures events delivered to 1..N concurrent subscribers (each an
// ordered consumer, as GraphQL subscriptions use) beside one raw ordered
// consumer reading the same events.
func (b *bench) fanout(ctx context.Context, c *client.Client, base *baselines) error {
	if !b.s.only.MatchString("events") {
		return nil
	}
	after, err := b.produce(ctx, c)
	if err != nil {
		return err
	}
	raw, err := b.rawRead(ctx, base, after)
	if err != nil {
		return err
	}
	b.results = append(b.results, raw)
	for _, n := range b.s.subscribers {
		r, err := b.subscribers(ctx, c, n, after)
		if err != nil {
			return err
		}
		b.results = append(b.results, r)
		b.ratio(r.Operation, n, raw.Operation, 1)
	}
	return nil
}

// produce writes at least s.events events and returns the sequence before
// the first.
func (b *bench) produce(ctx context.Context, c *client.Client) (uint64, error) {
	_, err := c.CreateWorkflow(ctx, &wire.CreateWorkflowRequest{ID: eventsWorkflow, Name: "cbbench events",
		Places: []string{"a"}, InitialPlace: "a", Transitions: []flow.Transition{{ID: "tick", FromPlaces: []string{"a"}, ToPlace: "a"}}})
	if err != nil && !isConflict(err) {
		return 0, err
	}
	fmt.Fprintf(b.progress, "producing %d events ...\n", b.s.events)
	toks, err := tokensOf(ctx, c, 32)
	if err != nil {
		return 0, err
	}
	per := b.s.events / len(toks)
	var wg sync.WaitGroup
	errs := make(chan error, len(toks))
	for _, id := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if _, err := c.Fire(ctx, &wire.FireRequest{TokenID: id, TransitionID: "tick"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	h, err := c.History(ctx, &wire.HistoryRequest{WorkflowID: eventsWorkflow, First: 1})
	if err != nil || len(h.Items) == 0 {
		return 0, errors.Join(err, errors.New("no events stored"))
	}
	return h.Items[0].Sequence - 1, nil
}

func tokensOf(ctx context.Context, c *client.Client, n int) ([]string, error) {
	out := make([]string, n)
	for i := range out {
		t, err := c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: eventsWorkflow})
		if err != nil {
			return nil, err
		}
		out[i] = t.ID
	}
	return out, nil
}

// rawRead reads s.events events with one bare ordered consumer.
func (b *bench) rawRead(ctx context.Context, base *baselines, after uint64) (Result, error) {
	cons, err := base.js.OrderedConsumer(ctx, subjects.StreamName(eventsWorkflow), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjects.AllEvents(eventsWorkflow)}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1})
	if err != nil {
		return Result{}, err
	}
	it, err := cons.Messages()
	if err != nil {
		return Result{}, err
	}
	defer it.Stop()
	start := time.Now()
	for range b.s.events {
		if _, err := it.Next(); err != nil {
			return Result{}, err
		}
	}
	return rate("raw: ordered consumer, events", 1, b.s.events, time.Since(start)), nil
}

// subscribers has n watchers read s.events events each, at once.
func (b *bench) subscribers(ctx context.Context, c *client.Client, n int, after uint64) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		ch, err := c.WatchEvents(ctx, eventsWorkflow, after, nil)
		if err != nil {
			return Result{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range b.s.events {
				if _, ok := <-ch; !ok {
					errs <- errors.New("watch ended early")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return Result{}, err
	}
	return rate("events delivered to subscribers", n, n*b.s.events, time.Since(start)), nil
}

func rate(name string, clients, n int, d time.Duration) Result {
	return Result{Operation: name, Clients: clients, Ops: n, PerSecond: float64(n) / d.Seconds()}
}
