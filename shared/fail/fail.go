// Package fail defines the one error type that crosses every boundary of the
// system: a Kind (what went wrong, stable and machine readable) and a message
// for people. Services return *Error values; the rpc layer carries the kind
// over NATS as a micro error code and rebuilds the same *Error on the caller's
// side, so errors.Is(err, fail.ErrNotFound) works across the wire.
package fail

import (
	"errors"
	"fmt"
)

// Kind classifies an error. The set is small and fixed.
type Kind uint8

// The kinds of error. Their numeric values are not part of any wire format.
const (
	Internal          Kind = iota // a bug or an unexpected failure
	BadInput                      // the request is malformed or invalid
	NotFound                      // the thing asked for does not exist
	Conflict                      // a concurrent change won, or the thing exists already
	InvalidTransition             // the transition cannot fire from the token's place
	GuardFailed                   // the transition's guard rules rejected the token
	Unavailable                   // a dependency is down or overloaded; retry later
	Timeout                       // the deadline passed; the outcome may be unknown
	ResourceExhausted             // a quota or limit was reached; the message names it
	Forbidden                     // the caller may not do this (its role or tenant)
)

var kindNames = [...]string{
	Internal:          "INTERNAL",
	BadInput:          "BAD_USER_INPUT",
	NotFound:          "NOT_FOUND",
	Conflict:          "CONFLICT",
	InvalidTransition: "INVALID_TRANSITION",
	GuardFailed:       "GUARD_FAILED",
	Unavailable:       "UNAVAILABLE",
	Timeout:           "TIMEOUT",
	ResourceExhausted: "RESOURCE_EXHAUSTED",
	Forbidden:         "FORBIDDEN",
}

// String returns the kind's stable name, as used in GraphQL extensions.code.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "INTERNAL"
}

// Error is an error of a known Kind with a message fit to show a client.
type Error struct {
	Kind    Kind
	Message string
	Err     error // optional cause, never sent over the wire
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error of the same kind whose message is
// empty (a sentinel) or equal.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && (t.Message == "" || t.Message == e.Message)
}

// Sentinels to compare against with errors.Is; they match any error of their kind.
var (
	ErrInternal          = &Error{Kind: Internal}
	ErrBadInput          = &Error{Kind: BadInput}
	ErrNotFound          = &Error{Kind: NotFound}
	ErrConflict          = &Error{Kind: Conflict}
	ErrInvalidTransition = &Error{Kind: InvalidTransition}
	ErrGuardFailed       = &Error{Kind: GuardFailed}
	ErrUnavailable       = &Error{Kind: Unavailable}
	ErrTimeout           = &Error{Kind: Timeout}
	ErrResourceExhausted = &Error{Kind: ResourceExhausted}
	ErrForbidden         = &Error{Kind: Forbidden}
)

// New returns an *Error of kind k with a formatted message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind k with message msg that keeps err as its cause.
func Wrap(k Kind, err error, msg string) *Error {
	return &Error{Kind: k, Message: msg, Err: err}
}

// KindOf returns the kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}
