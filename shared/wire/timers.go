package wire

import "time"

// Timer events, on workflows.<wf>.events.timers, each in the same atomic
// batch as the change it belongs to (timer_skipped alone: it changes
// nothing). Their due_at is the timer's due time.
const (
	// EventTimerSet: a change put the token into a place with a timer
	// transition (or changed an at-timer's time).
	EventTimerSet = "timer_set"
	// EventTimerFired: the timer fired its transition (its
	// token_transitioned event, triggered_by "timer", is in the same batch).
	EventTimerFired = "timer_fired"
	// EventTimerSkipped: the timer fell due but the transition's guards
	// failed; reason says why. The token stays; the timer is spent.
	EventTimerSkipped = "timer_skipped"
)

// TimerTriggeredBy is the triggered_by of a fire a timer made.
const TimerTriggeredBy = "timer"

// TimerEvent is the payload of a timer event: an Event with when the timer
// falls due and, for timer_skipped, why it did not fire.
type TimerEvent struct {
	Event
	DueAt  time.Time `json:"due_at"`
	Reason string    `json:"reason,omitempty"`
	// LagMs is how long after its due time a timer fired (timer_fired).
	LagMs int64 `json:"lag_ms,omitempty"`
}

// TimerDue is the body of a timer's schedule and of the message the server
// publishes when it falls due.
type TimerDue struct {
	WorkflowID   string    `json:"workflowId"`
	TokenID      string    `json:"tokenId"`
	TransitionID string    `json:"transitionId"`
	Revision     uint64    `json:"revision"` // the entry's revision
	DueAt        time.Time `json:"dueAt"`
}
