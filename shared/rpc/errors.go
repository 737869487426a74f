package rpc

import (
	"context"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// codes maps each error kind to the numeric code in micro's error header.
var codes = map[fail.Kind]int{
	fail.BadInput:          400,
	fail.NotFound:          404,
	fail.Conflict:          409,
	fail.InvalidTransition: 422,
	fail.GuardFailed:       422,
	fail.Unavailable:       503,
	fail.Timeout:           504,
	fail.ResourceExhausted: 429,
	fail.Forbidden:         403,
	fail.Internal:          500,
}

// kinds maps kind names (the Cb-Error-Kind header) back to kinds.
var kinds = func() map[string]fail.Kind {
	m := make(map[string]fail.Kind, len(codes))
	for k := range codes {
		m[k.String()] = k
	}
	return m
}()

// Code returns the micro error code for err's kind.
func Code(err error) int { return codes[fail.KindOf(err)] }

// fromHeaders rebuilds the error a service sent, or returns nil if the reply
// carries no error.
func fromHeaders(h nats.Header) error {
	code := h.Get(micro.ErrorCodeHeader)
	if code == "" {
		return nil
	}
	msg := h.Get(micro.ErrorHeader)
	if k, ok := kinds[h.Get(subjects.HeaderErrorKind)]; ok {
		return &fail.Error{Kind: k, Message: msg}
	}
	n, _ := strconv.Atoi(code)
	for k, c := range codes {
		if c == n && k != fail.GuardFailed {
			return &fail.Error{Kind: k, Message: msg}
		}
	}
	return &fail.Error{Kind: fail.Internal, Message: msg}
}

// transportError turns a NATS request failure into a typed error.
func transportError(subject string, err error) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fail.Wrap(fail.Unavailable, err, "service unavailable: no responders on "+subject)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fail.Wrap(fail.Unavailable, err, "no reply from "+subject+" before the deadline (a change may still have been applied: read to settle it)")
	case errors.Is(err, context.Canceled):
		return fail.Wrap(fail.Unavailable, err, "request cancelled: "+subject)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
		return fail.Wrap(fail.Unavailable, err, "NATS connection closed")
	case errors.Is(err, nats.ErrMaxPayload):
		return fail.Wrap(fail.BadInput, err, "request too large")
	}
	return fail.Wrap(fail.Unavailable, err, "request failed: "+err.Error())
}
