package wire

import (
	"strconv"
	"strings"
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// Bounds of an analytics window and a performance time range.
const (
	DefaultAnalyticsWindow = 24 * time.Hour
	MaxAnalyticsWindow     = 30 * 24 * time.Hour
	DefaultTimeRange       = time.Hour
	MaxTimeRange           = time.Hour
)

// ParseWindow reads a duration such as "15m", "1h", "24h" or "7d" (Go
// durations plus a "d" of 24 hours), whole minutes between 1m and max;
// "" is def.
func ParseWindow(name, s string, def, max time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if days, err = strconv.Atoi(n); err == nil {
			d = time.Duration(days) * 24 * time.Hour
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d < time.Minute || d > max || d%time.Minute != 0 {
		return 0, fail.New(fail.BadInput, "%s must be a whole number of minutes between 1m and %s, such as \"1h\", \"24h\" or \"7d\", not '%s'",
			name, FormatDuration(max), clip(s))
	}
	return d, nil
}

// FormatDuration renders d as the original guide did ("2h 15m"): days,
// hours, minutes and seconds, largest first, zero parts left out; below a
// second, milliseconds ("350ms"), and "0s" for zero.
func FormatDuration(d time.Duration) string {
	if d < time.Second {
		if d <= 0 {
			return "0s"
		}
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	var parts []string
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			parts = append(parts, strconv.FormatInt(int64(n), 10)+u.name)
			d -= n * u.d
		}
	}
	return strings.Join(parts, " ")
}

// AnalyticsRequest asks for a workflow's analytics over a recent window.
type AnalyticsRequest struct {
	WorkflowID string `json:"workflowId"`
	// Window is the recent period of throughput and periods (default 24h,
	// at most 30d).
	Window string `json:"window,omitempty"`
}

// Validate checks the id and window.
func (r *AnalyticsRequest) Validate() error {
	if _, err := ParseWindow("window", r.Window, DefaultAnalyticsWindow, MaxAnalyticsWindow); err != nil {
		return err
	}
	return ValidWorkflowID(r.WorkflowID)
}

func (r *AnalyticsRequest) WorkflowRef() *string { return &r.WorkflowID }

// Analytics is what a workflow's events add up to. Durations are seconds.
type Analytics struct {
	WorkflowID string `json:"workflowId"`
	// TotalTokens counts the tokens created; LiveTokens those not (yet)
	// in a terminal place.
	TotalTokens int64 `json:"totalTokens"`
	LiveTokens  int64 `json:"liveTokens"`
	// TokensPerPlace counts the tokens in each place now.
	TokensPerPlace []PlaceCount `json:"tokensPerPlace"`
	// AverageTransitionTime is the mean time between a token's entering
	// a place (created or moved there) and its next transition.
	AverageTransitionTime float64 `json:"averageTransitionTime"`
	Transitions           int64   `json:"transitions"`
	// Places has the time tokens spent in each place (stays that ended).
	Places []PlaceTime `json:"places"`
	// Completion is the time from creation to a terminal place of every
	// token that reached one.
	Completion DurationStats `json:"completion"`
	Throughput Throughput    `json:"throughput"`
	// Periods is the window minute by minute (windows up to 6h) or hour
	// by hour, oldest first.
	Periods       []Period  `json:"periods"`
	Events        int64     `json:"events"`
	LastSequence  uint64    `json:"lastSequence"`
	CoversHistory bool      `json:"coversHistory"`
	Since         time.Time `json:"since,omitzero"`
}

// PlaceCount is how many tokens a place holds.
type PlaceCount struct {
	Place string `json:"place"`
	Count int64  `json:"count"`
}

// PlaceTime is the time tokens spent in one place.
type PlaceTime struct {
	Place   string        `json:"place"`
	Tokens  int64         `json:"tokens"`  // in the place now
	Entered int64         `json:"entered"` // entries ever
	Stay    DurationStats `json:"stay"`    // stays that ended
}

// DurationStats summarises durations; p50 and p95 come from log-spaced
// buckets (see services/event's analytics) and are absent without data.
type DurationStats struct {
	Count   int64    `json:"count"`
	Average float64  `json:"average"`
	P50     *float64 `json:"p50,omitempty"`
	P95     *float64 `json:"p95,omitempty"`
}

// Throughput is the guide's throughput over the window.
type Throughput struct {
	Period                string  `json:"period"` // "last_24h"
	WindowSeconds         int64   `json:"windowSeconds"`
	TokensCreated         int64   `json:"tokensCreated"`
	Transitions           int64   `json:"transitions"`
	TokensCompleted       int64   `json:"tokensCompleted"`
	AverageProcessingTime string  `json:"averageProcessingTime"` // "2h 15m"
	AverageProcessingSecs float64 `json:"averageProcessingSeconds"`
	TransitionsPerMinute  float64 `json:"transitionsPerMinute"`
}

// Period is one minute or hour of the window.
type Period struct {
	Start             time.Time `json:"start"`
	Seconds           int64     `json:"seconds"`
	Events            int64     `json:"events"`
	TokensCreated     int64     `json:"tokensCreated"`
	Transitions       int64     `json:"transitions"`
	TokensCompleted   int64     `json:"tokensCompleted"`
	AverageCompletion float64   `json:"averageCompletion"` // seconds, 0 without completions
}
