// Package jserr classifies NATS and JetStream failures into fail kinds, so
// every service reports storage trouble the same way.
package jserr

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// JetStream API error codes the services act on.
const (
	CodeWrongLastSequence         = 10071 // a compare-and-swap failed
	CodeWrongLastSequenceConstant = 10164 // the same, on replicated streams
	CodeBatchDuplicateMsgID       = 10201 // an atomic batch holds a message id the stream has seen (within its duplicate window)
)

// DuplicateMsgID reports an atomic batch refused because one of its
// messages carries a message id the stream stored within its duplicate
// window.
func DuplicateMsgID(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == CodeBatchDuplicateMsgID
}

// WrongSequence reports a failed compare-and-swap (per subject or per stream).
func WrongSequence(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == CodeWrongLastSequence || api.ErrorCode == CodeWrongLastSequenceConstant)
}

// Classify turns err into a *fail.Error (nil stays nil; a *fail.Error is kept).
func Classify(err error) error {
	var fe *fail.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, nats.ErrTimeout):
		return fail.Wrap(fail.Timeout, err, "JetStream did not answer in time; the outcome of a write is unknown")
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fail.Wrap(fail.Unavailable, err, "JetStream unavailable")
	case errors.Is(err, nats.ErrMaxPayload):
		return fail.Wrap(fail.BadInput, err, "too large to store")
	}
	return fail.Wrap(fail.Internal, err, "storage error: "+err.Error())
}
