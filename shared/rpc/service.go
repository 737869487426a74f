package rpc

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Spec describes one endpoint; its texts are published as endpoint
// metadata, so `nats micro info` documents requests and replies.
type Spec struct {
	Name        string
	Subject     subjects.Request // served in every scope: Subject.Pattern()
	Description string
	Request     string // the request body, e.g. `{"id": "<uuid>"}`
	Response    string // the reply body
	Handler     micro.Handler
}

// Service names and describes a micro service.
type Service struct {
	Name        string
	Version     string
	Description string
	Metadata    map[string]string
}

// AddService registers svc with its endpoints on nc, in the shared queue
// group. Each endpoint's STATS data reports the real work time measured by
// srv, which runs the endpoints' handlers.
func AddService(nc *nats.Conn, svc Service, specs []Spec, srv *Server) (micro.Service, error) {
	cfg := micro.Config{
		Name:         svc.Name,
		Version:      svc.Version,
		Description:  svc.Description,
		Metadata:     svc.Metadata,
		QueueGroup:   subjects.QueueGroup,
		StatsHandler: func(e *micro.Endpoint) any { return srv.Stats(e.Subject) },
	}
	ms, err := micro.AddService(nc, cfg)
	if err != nil {
		return nil, fmt.Errorf("rpc: add service %s: %w", svc.Name, err)
	}
	for _, s := range specs {
		meta := map[string]string{"description": s.Description, "request": s.Request, "response": s.Response}
		err := ms.AddEndpoint(s.Name, s.Handler, micro.WithEndpointSubject(s.Subject.Pattern()), micro.WithEndpointMetadata(meta))
		if err != nil {
			_ = ms.Stop()
			return nil, fmt.Errorf("rpc: add endpoint %s.%s: %w", svc.Name, s.Name, err)
		}
	}
	return ms, nil
}
