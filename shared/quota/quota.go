// Package quota holds what each tenant may use, where every service reads
// it, and counts what a tenant uses.
//
// The quotas live in the KV bucket CB_TENANTS (tenant → Quota as JSON).
// The edge writes it from its auth file at start and on every reload
// (Publish), and each service keeps a watched copy (Book), so a quota
// holds for direct NATS clients too, not only for GraphQL.
//
// A tenant's live tokens are counted in the counter stream CB_USAGE
// (nats-server's distributed counters: a message with a Nats-Incr header
// adds to its subject's total), one subject per tenant. The count is
// raised after a create commits; it is a soft limit: creates in flight at
// once may pass it by their number, and a process killed between the
// commit and the count leaves the count one short.
package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/jserr"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// Quota is what one tenant may use; a zero field is no limit.
type Quota struct {
	MaxWorkflows      int     `json:"maxWorkflows,omitempty" yaml:"maxWorkflows"`
	MaxLiveTokens     int64   `json:"maxLiveTokens,omitempty" yaml:"maxLiveTokens"`
	RequestsPerSecond float64 `json:"requestsPerSecond,omitempty" yaml:"requestsPerSecond"`
}

// Check returns a RESOURCE_EXHAUSTED error naming the limit when a tenant
// that uses used of something may not have one more under limit (0: none).
func Check(tenant, name string, used, limit int64) error {
	if limit <= 0 || used < limit {
		return nil
	}
	return fail.New(fail.ResourceExhausted, "tenant %s has %d %s: its quota (%s) is %d", tenant, used, what[name], name, limit)
}

var what = map[string]string{"maxWorkflows": "workflows", "maxLiveTokens": "live tokens"}

// bucket creates (or updates) the quotas' bucket.
func bucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: subjects.TenantsBucket,
		Description: "Quotas per tenant, written by the edge from its auth file", Replicas: max(replicas, 1), History: 1})
	if err != nil {
		return nil, fmt.Errorf("quota: bucket %s: %w", subjects.TenantsBucket, err)
	}
	return kv, nil
}

// Publish makes the bucket hold exactly quotas: tenants no longer listed
// lose theirs. The services create the bucket (Watch); until one has,
// Publish fails with jetstream.ErrBucketNotFound.
func Publish(ctx context.Context, js jetstream.JetStream, quotas map[string]Quota) error {
	kv, err := js.KeyValue(ctx, subjects.TenantsBucket)
	if err != nil {
		return fmt.Errorf("quota: bucket %s: %w", subjects.TenantsBucket, err)
	}
	for tenant, q := range quotas {
		b, _ := json.Marshal(q)
		if _, err := kv.Put(ctx, tenant, b); err != nil {
			return fmt.Errorf("quota: put %s: %w", tenant, err)
		}
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("quota: list: %w", err)
	}
	for k := range keys.Keys() {
		if _, ok := quotas[k]; !ok {
			if err := kv.Delete(ctx, k); err != nil {
				return fmt.Errorf("quota: delete %s: %w", k, err)
			}
		}
	}
	return nil
}

// Book is the quotas of every tenant as last seen in the bucket.
type Book struct {
	mu     sync.RWMutex
	quotas map[string]Quota
	stop   func() error
}

// Watch opens the bucket (creating it) and keeps a Book current with it.
func Watch(ctx context.Context, js jetstream.JetStream, replicas int) (*Book, error) {
	kv, err := bucket(ctx, js, replicas)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(context.Background())
	if err != nil {
		return nil, fmt.Errorf("quota: watch: %w", err)
	}
	b := &Book{quotas: map[string]Quota{}, stop: w.Stop}
	go b.follow(w.Updates())
	return b, nil
}

func (b *Book) follow(updates <-chan jetstream.KeyValueEntry) {
	for e := range updates {
		if e == nil { // the initial values are in
			continue
		}
		var q Quota
		if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &q) != nil {
			continue // not written by Publish: no quota rather than a wrong one
		}
		b.mu.Lock()
		b.quotas[e.Key()] = q // deleted: the zero Quota, no limit
		b.mu.Unlock()
	}
}

// Of returns a tenant's quota (the zero Quota for a tenant without one,
// and for workflows of no tenant).
func (b *Book) Of(tenant string) Quota {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.quotas[tenant]
}

// Close stops following the bucket.
func (b *Book) Close() { _ = b.stop() }

// Usage counts each tenant's live tokens in the counter stream CB_USAGE.
type Usage struct {
	js jetstream.JetStream
	st jetstream.Stream
}

// OpenUsage creates (or updates) the counter stream.
func OpenUsage(ctx context.Context, js jetstream.JetStream, replicas int) (*Usage, error) {
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: subjects.UsageStream,
		Description: "Live tokens per tenant (counters)", Subjects: []string{subjects.UsageTokens("*")},
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1), AllowMsgCounter: true, AllowDirect: true})
	if err != nil {
		return nil, fmt.Errorf("quota: stream %s: %w", subjects.UsageStream, err)
	}
	return &Usage{js: js, st: st}, nil
}

// Counter is a Usage that only adds to counts (AddLiveTokens), for a
// service that does not own the counter stream (and does not create it).
func Counter(js jetstream.JetStream) *Usage { return &Usage{js: js} }

// LiveTokens returns a tenant's count of live tokens.
func (u *Usage) LiveTokens(ctx context.Context, tenant string) (int64, error) {
	if u.st == nil {
		return 0, fail.New(fail.Internal, "quota: a Counter cannot read counts")
	}
	msg, err := u.st.GetLastMsgForSubject(ctx, subjects.UsageTokens(tenant))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, jserr.Classify(err)
	}
	var c struct {
		Val string `json:"val"`
	}
	if err := json.Unmarshal(msg.Data, &c); err != nil {
		return 0, fail.Wrap(fail.Internal, err, "unreadable usage counter")
	}
	n, err := strconv.ParseInt(c.Val, 10, 64)
	if err != nil {
		return 0, fail.Wrap(fail.Internal, err, "unreadable usage counter")
	}
	return n, nil
}

// AddLiveTokens adds n (negative: removes) to a tenant's count.
func (u *Usage) AddLiveTokens(ctx context.Context, tenant string, n int64) error {
	m := nats.NewMsg(subjects.UsageTokens(tenant))
	m.Header.Set("Nats-Incr", fmt.Sprintf("%+d", n))
	if _, err := u.js.PublishMsg(ctx, m); err != nil {
		return jserr.Classify(err)
	}
	return nil
}
