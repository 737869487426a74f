package event

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// consumerPrefix marks the durable consumers that are subscriptions.
const consumerPrefix = "sub_"

// subscribe creates the named durable consumer on the workflow's events, or
// returns it if it exists (asking again for a name is not counted twice).
func (s *Service) subscribe(ctx context.Context, r *wire.SubscribeRequest) (*wire.SubscriptionInfo, error) {
	st, err := s.stream(ctx, r.WorkflowID)
	if err != nil {
		return nil, err
	}
	cfg := s.consumerConfig(r)
	c, err := st.Consumer(ctx, cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c, err = s.create(ctx, st, cfg)
	}
	if err != nil {
		return nil, jserr.Classify(err)
	}
	return s.describe(ctx, r.WorkflowID, c)
}

// consumerConfig is the durable consumer of a subscription.
func (s *Service) consumerConfig(r *wire.SubscribeRequest) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       consumerPrefix + r.Name,
		Description:   "Circuit Breaker event subscription " + r.Name,
		FilterSubject: subjects.AllEvents(r.WorkflowID),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    s.maxDeliver,
		DeliverPolicy: jetstream.DeliverNewPolicy,
	}
	switch r.Deliver {
	case wire.DeliverAll:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case wire.DeliverSequence:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, r.StartSequence
	}
	return cfg
}

// create creates a subscription's consumer unless its workflow already has
// the quota of subscriptions. This instance creates one at a time, so a
// burst of requests cannot all pass the count together; instances count
// apart, so n instances racing may overshoot the quota by n-1.
func (s *Service) create(ctx context.Context, st jetstream.Stream, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	select {
	case s.creating <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("create subscription %s: %w", cfg.Durable, ctx.Err())
	}
	defer func() { <-s.creating }()
	if c, err := st.Consumer(ctx, cfg.Durable); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return c, err // created meanwhile by a request for the same name
	}
	n, err := s.countSubscriptions(ctx, st)
	if err != nil {
		return nil, err
	}
	if n >= s.maxSubs {
		s.refused.Inc()
		return nil, fail.New(fail.ResourceExhausted,
			"event subscription quota reached: at most %d durable subscriptions per workflow", s.maxSubs)
	}
	c, err := st.CreateConsumer(ctx, cfg)
	if errors.Is(err, jetstream.ErrMaximumConsumersLimit) {
		s.refused.Inc()
		return nil, fail.Wrap(fail.ResourceExhausted, err, "event subscription refused: the workflow's stream has reached its consumer limit")
	}
	return c, err
}

// countSubscriptions counts the durable subscriptions on a workflow's
// stream (its other consumers, such as live watchers, are not counted).
func (s *Service) countSubscriptions(ctx context.Context, st jetstream.Stream) (int, error) {
	n := 0
	names := st.ConsumerNames(ctx)
	for name := range names.Name() {
		if strings.HasPrefix(name, consumerPrefix) {
			n++
		}
	}
	return n, jserr.Classify(names.Err())
}

func (s *Service) describe(ctx context.Context, wf string, c jetstream.Consumer) (*wire.SubscriptionInfo, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return nil, jserr.Classify(err)
	}
	return toInfo(wf, info), nil
}

func toInfo(wf string, info *jetstream.ConsumerInfo) *wire.SubscriptionInfo {
	return &wire.SubscriptionInfo{
		WorkflowID: wf, Name: strings.TrimPrefix(info.Name, consumerPrefix),
		Stream: info.Stream, Consumer: info.Name, Filter: info.Config.FilterSubject,
		MaxDeliver: info.Config.MaxDeliver, Pending: info.NumPending, AckPending: info.NumAckPending,
		Redelivered: info.NumRedelivered, AckFloor: info.AckFloor.Stream,
	}
}

func (s *Service) listSubscriptions(ctx context.Context, r *wire.ListSubscriptionsRequest) (*wire.SubscriptionList, error) {
	st, err := s.stream(ctx, r.WorkflowID)
	if err != nil {
		return nil, err
	}
	out := &wire.SubscriptionList{Items: []wire.SubscriptionInfo{}}
	lister := st.ListConsumers(ctx)
	for info := range lister.Info() {
		if strings.HasPrefix(info.Name, consumerPrefix) {
			out.Items = append(out.Items, *toInfo(r.WorkflowID, info))
		}
	}
	return out, jserr.Classify(lister.Err())
}

func (s *Service) unsubscribe(ctx context.Context, r *wire.SubscriptionRef) (*wire.SubscriptionRef, error) {
	st, err := s.stream(ctx, r.WorkflowID)
	if err != nil {
		return nil, err
	}
	err = st.DeleteConsumer(ctx, consumerPrefix+r.Name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fail.New(fail.NotFound, "subscription '%s' not found on workflow '%s'", r.Name, r.WorkflowID)
	}
	if err != nil {
		return nil, jserr.Classify(err)
	}
	return r, nil
}
