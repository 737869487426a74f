package rpc

import "github.com/nats-io/nats.go/micro"

// Instance is a running service. Stop stops intake (micro drains the
// endpoint subscriptions), waits for the requests in flight, then runs the
// closers in order.
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
	i.srv.Wait()
	for _, c := range i.closers {
		c()
	}
}
