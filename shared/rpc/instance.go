package rpc

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/config"
	"github.com/cbnats/circuitbreaker/shared/metrics"
)

// Instance is a running service. Stop stops intake (micro drains the
// endpoint subscriptions; requests they still deliver are refused with
// ErrStopping), waits for the requests in flight, then runs the closers in
// order.
type Instance struct {
	micro   micro.Service
	srv     *Server
	closers []func()
}

// NewInstance ties a registered micro service to the Server running its
// handlers and to what must be closed after them.
func NewInstance(ms micro.Service, srv *Server, closers ...func()) *Instance {
	return &Instance{micro: ms, srv: srv, closers: closers}
}

// Stop stops the service in order.
func (i *Instance) Stop() {
	_ = i.micro.Stop()
	i.srv.Close()
	i.srv.Wait()
	for _, c := range i.closers {
		c()
	}
}

// ServiceOptions are what every service is started with.
type ServiceOptions struct {
	Store       config.Store
	Concurrency int // requests served at once
	Metrics     *metrics.Registry
	Log         zerolog.Logger
}

// Server returns the Server that runs the named service's handlers and
// replies on nc.
func (o ServiceOptions) Server(nc *nats.Conn, service string) *Server {
	return NewServer(nc, o.Log, Options{Concurrency: o.Concurrency, Timeout: o.Store.RequestTimeout,
		Service: service, Metrics: o.Metrics})
}
