package server

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/edge/live"
	"github.com/cbnats/circuitbreaker/shared/metrics"
)

// newHub returns the hub of live subscriptions, reading streams on liveNC
// (a connection of their own, so that no subscriber can starve request
// replies).
func newHub(liveNC *nats.Conn, o live.Options, reg *metrics.Registry) (*live.Hub, error) {
	js, err := jetstream.New(liveNC)
	if err != nil {
		return nil, err
	}
	return live.New(js, o, reg), nil
}
