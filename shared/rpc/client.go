package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 5 * time.Second

type requestIDKey struct{}

// WithRequestID returns a context carrying a request id that Call forwards
// in a header and the endpoint adapter puts in its logs.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Call sends req as JSON to subject and decodes the reply into a new Resp.
// A service error comes back as a *fail.Error of the kind the service sent,
// so errors.Is(err, fail.ErrNotFound) works across NATS. No responders,
// and no reply before the deadline, are fail.Unavailable (after a missing
// reply the outcome is unknown: the service may have committed); a service
// that ran out of time itself answers fail.Timeout. A request refused by a
// stopping instance (ErrStopping: never worked on) is sent once more.
func Call[Req, Resp any](ctx context.Context, nc *nats.Conn, subject string, req *Req) (*Resp, error) {
	raw, err := CallRaw(ctx, nc, subject, req)
	if err != nil {
		return nil, err
	}
	resp := new(Resp)
	if err := json.Unmarshal(raw, resp); err != nil {
		return nil, fail.Wrap(fail.Internal, err, "undecodable reply from "+subject)
	}
	return resp, nil
}

// CallRaw is Call returning the reply's JSON undecoded, for callers that
// pass it on (or measure the request without the decoding).
func CallRaw[Req any](ctx context.Context, nc *nats.Conn, subject string, req *Req) (json.RawMessage, error) {
	msg, err := request(ctx, nc, subject, req)
	if err != nil {
		return nil, err
	}
	return msg.Data, nil
}

func request(ctx context.Context, nc *nats.Conn, subject string, req any) (*nats.Msg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fail.Wrap(fail.BadInput, err, "unencodable request: "+err.Error())
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	m := nats.NewMsg(subject)
	m.Data = body
	if id := RequestID(ctx); id != "" {
		m.Header.Set(subjects.HeaderRequestID, id)
	}
	dl, _ := ctx.Deadline()
	m.Header.Set(subjects.HeaderDeadline, dl.UTC().Format(time.RFC3339Nano))
	for attempt := 0; ; attempt++ {
		reply, err := nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return nil, transportError(subject, err)
		}
		err = fromHeaders(reply.Header)
		// A stopping instance refused the request unworked, after the server
		// stopped routing to it: the next attempt reaches another instance.
		if errors.Is(err, ErrStopping) && attempt == 0 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return reply, nil
	}
}
