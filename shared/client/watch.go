package client

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// watchBuffer is how many items a watch holds for a slow receiver before
// it stops reading from JetStream (flow control then holds the rest on the
// server; nothing else waits for this receiver).
const watchBuffer = 64

// watch runs an ordered consumer on one workflow stream and sends what
// decode yields to out until ctx ends. The consumer is deleted at the end
// (and expires on its own 10 s after a crash).
func watch[T any](ctx context.Context, c *Client, wf string, cfg jetstream.OrderedConsumerConfig,
	decode func(jetstream.Msg) (T, bool)) (<-chan T, error) {
	js, err := jetstream.New(c.nc)
	if err != nil {
		return nil, jserr.Classify(err)
	}
	cfg.InactiveThreshold = 10 * time.Second
	cons, err := js.OrderedConsumer(ctx, subjects.StreamName(wf), cfg)
	if err != nil {
		return nil, jserr.Classify(err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, jserr.Classify(err)
	}
	out := make(chan T, watchBuffer)
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	go func() {
		defer close(out)
		defer deleteConsumer(js, wf, cons)
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			v, ok := decode(m)
			if !ok {
				continue
			}
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func deleteConsumer(js jetstream.JetStream, wf string, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = js.DeleteConsumer(ctx, subjects.StreamName(wf), info.Name)
}

// WatchEvents streams a workflow's events as they are committed: the
// events after afterSequence when it is set, else only new ones; of the
// given types only, when types is not empty. The channel closes when ctx
// ends. Each watcher reads the stream itself: no service is involved.
func (c *Client) WatchEvents(ctx context.Context, workflowID string, afterSequence uint64, types []string) (<-chan wire.EventRecord, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subjects.AllEvents(workflowID)}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if afterSequence > 0 && afterSequence < wire.MaxSequence { // at the end: only new events
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, afterSequence+1
	}
	return watch(ctx, c, workflowID, cfg, func(m jetstream.Msg) (wire.EventRecord, bool) {
		meta, err := m.Metadata()
		if err != nil {
			return wire.EventRecord{}, false
		}
		rec := wire.EventRecord{Sequence: meta.Sequence.Stream, Subject: m.Subject(), Time: meta.Timestamp}
		ok := json.Unmarshal(m.Data(), &rec.Event) == nil && wire.TypeIn(types, rec.Event.EventType)
		return rec, ok
	})
}

// WatchToken streams a token's state each time it changes, starting with
// its current state. The channel closes when ctx ends.
func (c *Client) WatchToken(ctx context.Context, tokenID string) (<-chan *flow.Token, error) {
	cur, err := c.GetToken(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	var last uint64
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjects.TokenAnyPlace(cur.WorkflowID, tokenID)},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	}
	return watch(ctx, c, cur.WorkflowID, cfg, func(m jetstream.Msg) (*flow.Token, bool) {
		if m.Headers().Get(subjects.HeaderTokenOp) == subjects.TokenOpDelete {
			return nil, false
		}
		t := new(flow.Token)
		if json.Unmarshal(m.Data(), t) != nil || t.Revision <= last {
			return nil, false
		}
		last = t.Revision
		return t, true
	})
}
