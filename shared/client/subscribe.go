package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// Delivery is one event from a durable subscription. Ack it once handled;
// an event not acked in time (30 s) is delivered again, up to the
// configured max_deliver.
type Delivery struct {
	Record wire.EventRecord
	msg    jetstream.Msg
}

// Ack confirms the event was handled; the subscription moves past it.
func (d *Delivery) Ack(ctx context.Context) error { return d.msg.DoubleAck(ctx) }

// Nak asks for the event to be delivered again now.
func (d *Delivery) Nak() error { return d.msg.Nak() }

// Subscription is a durable, resumable subscription to a workflow's events.
// Every name is an independent subscriber that gets every event; reopening
// a name resumes after its last acked event.
type Subscription struct {
	Info *wire.SubscriptionInfo
	it   jetstream.MessagesContext
}

// SubscribeTokenEvents opens the named durable subscription to a workflow's
// events (creating it with deliver policy r.Deliver if it does not exist),
// the equivalent of the original's subscribe_to_token_events. Call Next to
// receive events and Stop when done; the subscription itself stays until
// DeleteSubscription.
func (c *Client) SubscribeTokenEvents(ctx context.Context, r *wire.SubscribeRequest) (*Subscription, error) {
	info, err := c.CreateSubscription(ctx, r)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return nil, jserr.Classify(err)
	}
	cons, err := js.Consumer(ctx, info.Stream, info.Consumer)
	if err != nil {
		return nil, jserr.Classify(err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(16))
	if err != nil {
		return nil, jserr.Classify(err)
	}
	return &Subscription{Info: info, it: it}, nil
}

// Next blocks until the next event arrives, ctx ends or the subscription
// stops. A Next that gives up at ctx's end loses nothing.
func (s *Subscription) Next(ctx context.Context) (*Delivery, error) {
	m, err := s.it.Next(jetstream.NextContext(ctx))
	switch {
	case ctx.Err() != nil:
		return nil, fail.Wrap(fail.Timeout, ctx.Err(), "no event before the deadline")
	case err != nil:
		return nil, fail.Wrap(fail.Unavailable, err, "subscription stopped: "+err.Error())
	}
	return decodeDelivery(m)
}

func decodeDelivery(m jetstream.Msg) (*Delivery, error) {
	meta, err := m.Metadata()
	if err != nil {
		return nil, fail.Wrap(fail.Internal, err, "event without JetStream metadata")
	}
	d := &Delivery{msg: m, Record: wire.EventRecord{Sequence: meta.Sequence.Stream, Subject: m.Subject(), Time: meta.Timestamp}}
	if err := json.Unmarshal(m.Data(), &d.Record.Event); err != nil {
		_ = m.Term()
		return nil, fail.Wrap(fail.Internal, err, fmt.Sprintf("undecodable event %d", meta.Sequence.Stream))
	}
	return d, nil
}

// Stop stops receiving. Events fetched but not yet handed out are given
// back (nak), so reopening the subscription gets them at once; events
// handed out but not acked come back after the ack wait.
func (s *Subscription) Stop() {
	s.it.Drain()
	for {
		m, err := s.it.Next()
		if err != nil {
			return
		}
		_ = m.Nak()
	}
}
