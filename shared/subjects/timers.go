package subjects

import "strconv"

// Timers (services/token/timers.go). A token's pending timer is a
// scheduled message in its workflow's stream (nats-server message
// scheduling), one subject per token, transition and entry into the
// place, so a schedule is never replaced by one of another entry:
//
//	workflows.<wf>.timers.<tokenId>.<transitionId>.<enteredRevision>  the schedule (Nats-Schedule: @at <time>)
//	workflows.<wf>.due.<tokenId>.<transitionId>.<enteredRevision>     what the server publishes when it falls due
//
// The token service consumes the due subjects with the durable pull
// consumer TimerConsumer.

// TimerSchedule is the subject of a token's timer for one entry.
func TimerSchedule(workflowID, tokenID, transitionID string, rev uint64) string {
	return join("workflows", workflowID, "timers", tokenID, transitionID, strconv.FormatUint(rev, 10))
}

// TimerDue is the subject the server publishes a due timer on.
func TimerDue(workflowID, tokenID, transitionID string, rev uint64) string {
	return join("workflows", workflowID, "due", tokenID, transitionID, strconv.FormatUint(rev, 10))
}

// AllTimersDue matches every due subject of a workflow.
func AllTimersDue(workflowID string) string { return join("workflows", workflowID, "due", ">") }

// TimerEvents is the subject of timer_set, timer_fired and timer_skipped events.
func TimerEvents(workflowID string) string { return join("workflows", workflowID, "events", "timers") }

// TimerConsumer is the durable pull consumer of a workflow stream's due
// timers, shared by every token-service instance.
const TimerConsumer = "cb_timers"
