package server

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/quota"
)

// publishQuotas keeps the services' quota bucket equal to the auth file's
// tenants section, at start and after every reload, so the services hold
// direct NATS clients to the same quotas. Until a service has created the
// bucket, it tries again every second.
func (s *Server) publishQuotas(nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	latest := make(chan map[string]quota.Quota, 1)
	s.opts.Auth.OnLoad(func(q map[string]quota.Quota) {
		select { // only the newest file matters
		case <-latest:
		default:
		}
		latest <- q
	})
	go func() {
		for {
			select {
			case q := <-latest:
				s.publish(js, q)
			case <-s.closing.Done():
				return
			}
		}
	}()
	return nil
}

// publish writes q into the bucket, retrying until it succeeds or the
// edge shuts down.
func (s *Server) publish(js jetstream.JetStream, q map[string]quota.Quota) {
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(s.closing, 5*time.Second)
		err := quota.Publish(ctx, js, q)
		cancel()
		if err == nil {
			s.opts.Log.Info().Int("tenants", len(q)).Msg("tenant quotas published")
			return
		}
		if attempt%30 == 0 {
			s.opts.Log.Warn().Err(err).Msg("publish tenant quotas; retrying every second")
		}
		select {
		case <-time.After(time.Second):
		case <-s.closing.Done():
			return
		}
	}
}
