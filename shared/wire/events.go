package wire

import (
	"math"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// MaxSequence is the last stream sequence there can be: nothing follows
// it, so a cursor at it selects nothing (the next sequence would overflow).
const MaxSequence uint64 = math.MaxUint64

// EventRecord is a stored event with its place in the stream.
type EventRecord struct {
	Sequence uint64    `json:"sequence"` // the event message's own stream sequence
	Subject  string    `json:"subject"`
	Time     time.Time `json:"time"`
	Event    Event     `json:"event"`
}

// HistoryRequest asks for a workflow's (or one token's) events in stream
// order, starting after a sequence or at a time, filtered by type and time.
type HistoryRequest struct {
	WorkflowID    string    `json:"workflowId"`
	TokenID       string    `json:"tokenId,omitempty"`
	EventTypes    []string  `json:"eventTypes,omitempty"`
	AfterSequence uint64    `json:"afterSequence,omitempty"`
	Since         time.Time `json:"since,omitzero"`
	Until         time.Time `json:"until,omitzero"`
	First         int       `json:"first,omitempty"`
}

// EventPage is one page of events.
type EventPage struct {
	Items []EventRecord `json:"items"`
	// Next is the afterSequence of the following page; 0 when the scan
	// reached the end of the stream.
	Next uint64 `json:"next,omitempty"`
}

// Validate checks ids and filters.
func (r *HistoryRequest) Validate() error {
	if err := ValidWorkflowID(r.WorkflowID); err != nil {
		return err
	}
	if r.TokenID != "" {
		if err := ValidTokenID(r.TokenID); err != nil {
			return err
		}
	}
	if r.First < 0 {
		return fail.New(fail.BadInput, "first must not be negative")
	}
	if !r.Since.IsZero() && !r.Until.IsZero() && r.Until.Before(r.Since) {
		return fail.New(fail.BadInput, "until is before since")
	}
	return nil
}

// Matches reports whether a stored event passes the request's filters.
func (r *HistoryRequest) Matches(rec EventRecord) bool {
	if r.TokenID != "" && rec.Event.TokenID != r.TokenID {
		return false
	}
	if !r.Since.IsZero() && rec.Time.Before(r.Since) {
		return false
	}
	if !r.Until.IsZero() && rec.Time.After(r.Until) {
		return false
	}
	return TypeIn(r.EventTypes, rec.Event.EventType)
}

// JetStream stamps a message with int64 nanoseconds since 1970, so every
// stored event lies strictly between these two times: a time outside them
// selects as the bound does, and passed on as a start time it would
// overflow (2262 wraps to 1677 and a since in 2262 read every event).
func storedTimeFloor() time.Time   { return time.Unix(0, -1).UTC() }
func storedTimeCeiling() time.Time { return time.Unix(0, math.MaxInt64).UTC() }

// ClampEventTime moves t into the range of stored event times (1970 to
// 2262, plus one nanosecond either side) without changing which stored
// events it selects as a since or until filter. The result is never the
// zero time, which on the wire means "absent".
func ClampEventTime(t time.Time) time.Time {
	switch {
	case t.Before(storedTimeFloor()):
		return storedTimeFloor()
	case t.After(storedTimeCeiling()):
		return storedTimeCeiling()
	}
	return t
}

// Normalize clamps the since and until given into the range of stored
// event times (ClampEventTime).
func (r *HistoryRequest) Normalize() {
	if !r.Since.IsZero() {
		r.Since = ClampEventTime(r.Since)
	}
	if !r.Until.IsZero() {
		r.Until = ClampEventTime(r.Until)
	}
}

// Exhausted reports whether no stored event can match a normalized
// request: afterSequence is the last sequence there can be (nothing
// follows it, and the next would overflow), since is after every stored
// time, or until before every one.
func (r *HistoryRequest) Exhausted() bool {
	return r.AfterSequence == MaxSequence || r.Since.Equal(storedTimeCeiling()) || r.Until.Equal(storedTimeFloor())
}

// StartTime returns the time a normalized request's scan starts at, or
// false when it starts after a sequence (afterSequence, or the start of
// the stream when since is before every stored event).
func (r *HistoryRequest) StartTime() (time.Time, bool) {
	if r.AfterSequence > 0 || r.Since.IsZero() || r.Since.Equal(storedTimeFloor()) {
		return time.Time{}, false
	}
	return r.Since, true
}

// TypeIn reports whether t is in types; an empty list allows every type.
func TypeIn(types []string, t string) bool {
	if len(types) == 0 {
		return true
	}
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

// StatsRequest asks for a workflow's statistics.
type StatsRequest struct {
	WorkflowID string `json:"workflowId"`
	// WindowMinutes is the recent window for transitionsPerMinute (default 60).
	WindowMinutes int `json:"windowMinutes,omitempty"`
}

// Validate checks the id and window.
func (r *StatsRequest) Validate() error {
	if r.WindowMinutes < 0 || r.WindowMinutes > 7*24*60 {
		return fail.New(fail.BadInput, "windowMinutes must be between 0 and 10080")
	}
	return ValidWorkflowID(r.WorkflowID)
}

// Stats describes a workflow's tokens and events.
type Stats struct {
	WorkflowID           string         `json:"workflowId"`
	Tokens               int            `json:"tokens"`
	TokensPerPlace       map[string]int `json:"tokensPerPlace"`
	Events               int            `json:"events"`
	EventsPerType        map[string]int `json:"eventsPerType"`
	WindowMinutes        int            `json:"windowMinutes"`
	TransitionsInWindow  int            `json:"transitionsInWindow"`
	TransitionsPerMinute float64        `json:"transitionsPerMinute"`
}

// Subscription delivery policies.
const (
	DeliverNew      = "new"      // only events committed after the subscription is created
	DeliverAll      = "all"      // every stored event
	DeliverSequence = "sequence" // events from StartSequence on
)

// SubscribeRequest creates (or finds) a named durable subscription to a
// workflow's events. Each name is an independent subscriber.
type SubscribeRequest struct {
	WorkflowID    string `json:"workflowId"`
	Name          string `json:"name"`
	Deliver       string `json:"deliver,omitempty"` // new (default), all, sequence
	StartSequence uint64 `json:"startSequence,omitempty"`
}

// Validate checks ids and the delivery policy.
func (r *SubscribeRequest) Validate() error {
	if err := first(ValidWorkflowID(r.WorkflowID), name("subscription name", r.Name, true)); err != nil {
		return err
	}
	switch r.Deliver {
	case "", DeliverNew, DeliverAll:
	case DeliverSequence:
		if r.StartSequence == 0 {
			return fail.New(fail.BadInput, "startSequence is required with deliver=sequence")
		}
	default:
		return fail.New(fail.BadInput, "deliver must be new, all or sequence")
	}
	return nil
}

// SubscriptionRef names a durable subscription.
type SubscriptionRef struct {
	WorkflowID string `json:"workflowId"`
	Name       string `json:"name"`
}

// Validate checks ids.
func (r *SubscriptionRef) Validate() error {
	return first(ValidWorkflowID(r.WorkflowID), name("subscription name", r.Name, true))
}

// ListSubscriptionsRequest asks for a workflow's durable subscriptions.
type ListSubscriptionsRequest struct {
	WorkflowID string `json:"workflowId"`
}

// Validate checks the id.
func (r *ListSubscriptionsRequest) Validate() error { return ValidWorkflowID(r.WorkflowID) }

// SubscriptionInfo describes a durable subscription: where to consume it
// with JetStream, and how far its subscriber got.
type SubscriptionInfo struct {
	WorkflowID  string `json:"workflowId"`
	Name        string `json:"name"`
	Stream      string `json:"stream"`
	Consumer    string `json:"consumer"`
	Filter      string `json:"filter"`
	MaxDeliver  int    `json:"maxDeliver"`
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ackPending"`
	Redelivered int    `json:"redelivered"`
	AckFloor    uint64 `json:"ackFloor"`
}

// SubscriptionList lists durable subscriptions.
type SubscriptionList struct {
	Items []SubscriptionInfo `json:"items"`
}
