package main

import (
	"context"

	"encoding/json"
	"fmt"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

const (
	placesWorkflow = "cbbench_places"
	hotTokens      = 1000
	warmTokens     = 100
)

// places measures tokens-in-place for 1,000 tokens in a place, and for a
// place of 100 (a short page), while the workflow grows to each size, and
// the process's memory at each size. Both places come first in the
// stream, so what grows is what follows them.
func (b *bench) places(ctx context.Context, c *client.Client) error {
	if !b.s.only.MatchString("tokens in place") {
		return nil
	}
	_, err := c.CreateWorkflow(ctx, &wire.CreateWorkflowRequest{ID: placesWorkflow, Name: "cbbench places",
		Places: []string{"hot", "warm", "cold"}, InitialPlace: "cold",
		Transitions: []flow.Transition{{ID: "heat", FromPlaces: []string{"cold"}, ToPlace: "hot"}}})
	if err != nil && !isConflict(err) {
		return err
	}
	if err := seed(ctx, c, "hot", hotTokens); err != nil {
		return err
	}
	// A deployment whose cbbench_places predates the warm place has none.
	warm := seed(ctx, c, "warm", warmTokens) == nil
	have := hotTokens
	for _, size := range b.s.placeSizes {
		if size > have {
			fmt.Fprintf(b.progress, "seeding %d tokens ...\n", size-have)
			if err := seed(ctx, c, "cold", size-have); err != nil {
				return err
			}
			have = size
		}
		name := fmt.Sprintf("tokens in place: 1000 of %d", have)
		b.run(name, 1, func(ctx context.Context, _, i int) error {
			raw, err := rpc.CallRaw(ctx, b.t.nc, subjects.TokenInPlace.In(subjects.AllTenants),
				&wire.TokensInPlaceRequest{WorkflowID: placesWorkflow, Place: "hot", Page: wire.Page{First: hotTokens}})
			if err != nil || i > 0 {
				return err
			}
			// The first answer is counted; like the other NATS rows, the
			// client does not decode the rest.
			var p wire.RawTokenPage
			if err := json.Unmarshal(raw, &p); err != nil || len(p.Items) != hotTokens {
				return fmt.Errorf("%d tokens listed, want %d (%v)", len(p.Items), hotTokens, err)
			}
			return nil
		}, "")
		if warm {
			b.run(fmt.Sprintf("tokens in place: 100 of %d", have), 1, func(ctx context.Context, _, i int) error {
				raw, err := rpc.CallRaw(ctx, b.t.nc, subjects.TokenInPlace.In(subjects.AllTenants),
					&wire.TokensInPlaceRequest{WorkflowID: placesWorkflow, Place: "warm", Page: wire.Page{First: hotTokens}})
				if err != nil || i > 0 {
					return err
				}
				var p wire.RawTokenPage
				if err := json.Unmarshal(raw, &p); err != nil || len(p.Items) < warmTokens {
					return fmt.Errorf("%d tokens listed, want %d (%v)", len(p.Items), warmTokens, err)
				}
				return nil
			}, "")
		}
		bare := fmt.Sprintf("raw: batch get of the same 1000 of %d", have)
		js, err := jetstream.New(b.t.nc)
		if err != nil {
			return err
		}
		b.run(bare, 1, func(ctx context.Context, _, _ int) error { return batchGet(ctx, js, hotTokens) }, "")
		b.ratio(name, 1, bare, 1)
		if rss, peak, ok := memory("self"); ok && b.t.stack != nil {
			b.notes = append(b.notes, fmt.Sprintf("memory with %d tokens stored: RSS %d MiB, peak %d MiB (whole process: NATS server, services, edge)", have, rss>>10, peak>>10))
		}
		for name, pid := range b.s.pids {
			if rss, peak, ok := memory(strconv.Itoa(pid)); ok {
				b.notes = append(b.notes, fmt.Sprintf("memory of %s (pid %d) with %d tokens stored: RSS %d MiB, peak %d MiB", name, pid, have, rss>>10, peak>>10))
			}
		}
	}
	return nil
}

// seed creates n tokens in place from 64 concurrent clients.
func seed(ctx context.Context, c *client.Client, place string, n int) error {
	return seedWith(ctx, n, func() error {
		_, err := c.CreateToken(ctx, &wire.CreateTokenRequest{WorkflowID: placesWorkflow, InitialPlace: place})
		return err
	})
}

// seedWith runs create n times on 64 workers.
func seedWith(ctx context.Context, n int, create func() error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := create(); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// memory returns a process's resident and peak resident memory in KiB
// ("self" for this one).
func memory(pid string) (rss, peak int, ok bool) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			peak = n
		}
	}
	return rss, peak, rss > 0
}

// batchGet reads the hot place's messages with direct batch gets, as a
// client that knows the layout would: the floor of tokens-in-place.
func batchGet(ctx context.Context, js jetstream.JetStream, want int) error {
	got, after := 0, uint64(0)
	for got < want {
		it, err := jetstreamext.GetBatch(ctx, js, subjects.StreamName(placesWorkflow), want-got+8,
			jetstreamext.GetBatchSeq(after+1), jetstreamext.GetBatchSubject(subjects.PlaceTokens(placesWorkflow, "hot")))
		if err != nil {
			return err
		}
		n := 0
		for msg, err := range it {
			if err != nil {
				return err
			}
			got, after, n = got+1, msg.Sequence, n+1
		}
		if n == 0 {
			return fmt.Errorf("batch get: %d of %d", got, want)
		}
	}
	return nil
}
