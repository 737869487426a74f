package wire

import (
	"time"

	"github.com/cbnats/circuitbreaker/shared/fail"
)

// WorkflowHealthRequest asks for a workflow's health.
type WorkflowHealthRequest struct {
	WorkflowID string `json:"workflowId"`
}

func (r *WorkflowHealthRequest) Validate() error      { return ValidWorkflowID(r.WorkflowID) }
func (r *WorkflowHealthRequest) WorkflowRef() *string { return &r.WorkflowID }

// WorkflowHealth is a workflow's stream, its event subscriptions and the
// rates of its changes.
type WorkflowHealth struct {
	WorkflowID    string `json:"workflowId"`
	StreamName    string `json:"streamName"`
	MessageCount  uint64 `json:"messageCount"`
	Bytes         uint64 `json:"bytes"`
	FirstSequence uint64 `json:"firstSequence"`
	LastSequence  uint64 `json:"lastSequence"`
	Consumers     int    `json:"consumers"`
	Leader        string `json:"leader"`
	Replicas      int    `json:"replicas"`
	InSync        bool   `json:"inSync"`
	// ConsumerLag is the events the workflow's durable subscriptions
	// have not been delivered yet, summed (each is in Subscriptions).
	ConsumerLag   uint64             `json:"consumerLag"`
	Subscriptions []SubscriptionInfo `json:"subscriptions"`
	// ThroughputPerMinute is the workflow's events (committed changes)
	// per minute over the last 15 minutes, from its analytics.
	ThroughputPerMinute float64 `json:"throughputPerMinute"`
	// ErrorRate and AvgProcessingTime are the token service's (every
	// instance, since it started): errors / requests and the mean work
	// time in milliseconds of its create, fire and update endpoints.
	ErrorRate         float64 `json:"errorRate"`
	AvgProcessingTime float64 `json:"avgProcessingTime"`
	ServiceRequests   int64   `json:"serviceRequests"`
	ServiceInstances  int     `json:"serviceInstances"`
}

// SystemHealthRequest asks for the system's health; it has no fields.
type SystemHealthRequest struct{}

// SystemHealth is JetStream and the servers as the services' NATS user
// sees them.
type SystemHealth struct {
	ConnectedServers int             `json:"connectedServers"`
	Servers          []ServerStat    `json:"servers"`
	TotalStreams     int             `json:"totalStreams"`
	TotalConsumers   int             `json:"totalConsumers"`
	TotalMessages    uint64          `json:"totalMessages"`
	TotalBytes       uint64          `json:"totalBytes"`
	SystemResources  SystemResources `json:"systemResources"`
	ClusterStatus    ClusterStatus   `json:"clusterStatus"`
	APIRequests      uint64          `json:"apiRequests"`
	APIErrors        uint64          `json:"apiErrors"`
	Domain           string          `json:"domain,omitempty"`
}

// ServerStat is one server's view of the account ($SYS.REQ.ACCOUNT.PING.STATZ).
type ServerStat struct {
	Name             string `json:"name"`
	Cluster          string `json:"cluster,omitempty"`
	Connections      int    `json:"connections"`
	Subscriptions    uint32 `json:"subscriptions"`
	MessagesReceived uint64 `json:"messagesReceived"`
	BytesReceived    uint64 `json:"bytesReceived"`
	MessagesSent     uint64 `json:"messagesSent"`
	BytesSent        uint64 `json:"bytesSent"`
	SlowConsumers    int64  `json:"slowConsumers"`
}

// SystemResources is the account's JetStream use ($JS.API.INFO), bytes.
type SystemResources struct {
	MemoryUsage uint64 `json:"memoryUsage"`
	DiskUsage   uint64 `json:"diskUsage"`
	MemoryLimit int64  `json:"memoryLimit"` // -1: no limit
	DiskLimit   int64  `json:"diskLimit"`
}

// ClusterStatus is the streams' replication.
type ClusterStatus struct {
	Name            string `json:"name,omitempty"`
	Leader          string `json:"leader"`          // of the catalogue stream
	Replicas        int    `json:"replicas"`        // the most any stream has
	InSync          bool   `json:"inSync"`          // every replica current and online, every stream led
	LaggingReplicas int    `json:"laggingReplicas"` // replicas not current or offline
	Leaderless      int    `json:"leaderlessStreams"`
}

// PerformanceRequest asks for rates over a recent time range.
type PerformanceRequest struct {
	// TimeRange such as "5m" or "1h" (default and most: 1h).
	TimeRange string `json:"timeRange,omitempty"`
}

// Validate checks the range.
func (r *PerformanceRequest) Validate() error {
	_, err := ParseWindow("timeRange", r.TimeRange, DefaultTimeRange, MaxTimeRange)
	return err
}

// Performance is what the event service measured over the time range.
type Performance struct {
	TimeRange string `json:"timeRange"`
	// MeasuredSeconds is the span the rates are over: the time range, or
	// less when this instance has sampled for less.
	MeasuredSeconds   float64        `json:"measuredSeconds"`
	MessagesPerSecond float64        `json:"messagesPerSecond"`
	BytesPerSecond    float64        `json:"bytesPerSecond"`
	MessagesOutPerSec float64        `json:"messagesOutPerSecond"`
	BytesOutPerSecond float64        `json:"bytesOutPerSecond"`
	AvgLatency        float64        `json:"avgLatency"` // milliseconds
	P50Latency        float64        `json:"p50Latency"`
	P95Latency        float64        `json:"p95Latency"`
	P99Latency        float64        `json:"p99Latency"`
	Requests          int64          `json:"requests"`
	ErrorRate         float64        `json:"errorRate"`
	ConnectionCount   int            `json:"connectionCount"`
	StreamMetrics     []StreamMetric `json:"streamMetrics"`
	Since             time.Time      `json:"since"`
}

// StreamMetric is one stream's size and rate.
type StreamMetric struct {
	StreamName    string  `json:"streamName"`
	MessageCount  uint64  `json:"messageCount"`
	Bytes         uint64  `json:"bytes"`
	MessageRate   float64 `json:"messageRate"` // messages stored per second over the range
	ConsumerCount int     `json:"consumerCount"`
}

// ErrEveryTenant refuses a request that shows every tenant's data in a
// tenant's scope.
func ErrEveryTenant(what string) error {
	return fail.New(fail.Forbidden, "%s shows every tenant's streams: it needs a caller acting for every tenant", what)
}
