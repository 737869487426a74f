package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/subjects"
)

// baselines are the raw NATS and JetStream operations under our paths,
// done by a bare client on the same server and connection type.
type baselines struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	kv      jetstream.KeyValue
	echo    micro.Service
	echoNC  *nats.Conn
	payload []byte
	wf      jetstream.StreamConfig // the benchmark workflow's stream: replicas, storage, duplicate window
	group   *grouped               // the bare group committer's setup, nil until its case runs
}

const rawStream = "CBBENCH_RAW"

// tokenSized is about the size of a fresh token's JSON.
var tokenSized = []byte(`{"id":"6f1e8d5a-3c1b-4f7e-9a42-0c2b7d9e5f10","workflowId":"cbbench","place":"a","data":{},"metadata":{},` +
	`"createdAt":"2026-11-26T18:00:00.000000000Z","updatedAt":"2026-11-26T18:00:00.000000000Z","history":[],` +
	`"transitionHistory":[{"fromPlace":"a","toPlace":"a","transitionId":"create","timestamp":"2026-11-26T18:00:00Z","natsSequence":3}],` +
	`"revision":1,"natsSequence":3,"natsSubject":"workflows.cbbench.places.a.tokens.6f1e8d5a-3c1b-4f7e-9a42-0c2b7d9e5f10"}`)

func newBaselines(ctx context.Context, t *system) (*baselines, error) {
	js, err := jetstream.New(t.nc)
	if err != nil {
		return nil, err
	}
	b := &baselines{nc: t.nc, js: js, payload: tokenSized}
	wf, err := js.Stream(ctx, subjects.StreamName(benchWorkflow))
	if err != nil {
		return nil, fmt.Errorf("the benchmark workflow's stream: %w", err)
	}
	b.wf = wf.CachedInfo().Config
	// The raw stream and bucket are replicated as the workflow's stream is
	// (R3 on a cluster deployed with --replicas 3), so raw rows pay the
	// same replication as ours.
	b.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: rawStream, Subjects: []string{"cbbench.raw.>"},
		Replicas: b.wf.Replicas, AllowDirect: true, AllowAtomicPublish: true, AllowRollup: true, AllowMsgTTL: true})
	if err != nil {
		return nil, fmt.Errorf("baseline stream: %w", err)
	}
	if b.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "CBBENCH_KV", Replicas: b.wf.Replicas}); err != nil {
		return nil, fmt.Errorf("baseline bucket: %w", err)
	}
	if _, err := js.Publish(ctx, "cbbench.raw.get", b.payload); err != nil {
		return nil, err
	}
	return b, b.startEcho(t)
}

// startEcho runs a micro echo service connected like our services are:
// in-process to an embedded server, or over TCP to a remote one.
func (b *baselines) startEcho(t *system) error {
	var err error
	if b.echoNC, err = t.serviceConn("cbbench-echo"); err != nil {
		return err
	}
	b.echo, err = micro.AddService(b.echoNC, micro.Config{Name: "cbbench_echo", Version: "1.0.0",
		Endpoint: &micro.EndpointConfig{Subject: "cbbench.echo", Handler: micro.HandlerFunc(func(r micro.Request) {
			_ = r.Respond(r.Data())
		})}})
	return err
}

func (b *baselines) close() {
	_ = b.echo.Stop()
	b.echoNC.Close()
	if b.group != nil {
		b.group.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.js.DeleteStream(ctx, rawStream)
	_ = b.js.DeleteKeyValue(ctx, "CBBENCH_KV")
}

type namedOp struct {
	name string
	f    op
}

// cases returns the baseline operations for n clients, each client on its
// own keys and subjects.
func (b *baselines) cases(n int) []namedOp {
	revs, evRevs, seqs := make([]uint64, n), make([]uint64, n), make([]uint64, n)
	return []namedOp{
		{"raw: request/reply (micro echo)", func(ctx context.Context, _, _ int) error {
			_, err := b.nc.RequestWithContext(ctx, "cbbench.echo", b.payload)
			return err
		}},
		{"raw: JetStream publish", func(ctx context.Context, w, _ int) error {
			_, err := b.js.Publish(ctx, "cbbench.raw.pub."+strconv.Itoa(w), b.payload)
			return err
		}},
		{"raw: KV update (CAS)", func(ctx context.Context, w, _ int) error { return b.kvUpdate(ctx, revs, w, n, "u") }},
		{"raw: KV CAS update + event publish", func(ctx context.Context, w, i int) error {
			if err := b.kvUpdate(ctx, evRevs, w, n, "e"); err != nil {
				return err
			}
			_, err := b.js.Publish(ctx, "cbbench.raw.events", b.payload, jetstream.WithMsgID(fmt.Sprintf("%d-%d-%d", n, w, i)))
			return err
		}},
		{"raw: atomic batch, 3 msgs", func(ctx context.Context, w, i int) error { return b.batch(ctx, seqs, w, n) }},
		{"raw: direct get", func(ctx context.Context, _, _ int) error {
			_, err := b.stream.GetLastMsgForSubject(ctx, "cbbench.raw.get")
			return err
		}},
		// The floor of a read served by a service: one hop, one read.
		{"raw: micro echo, then direct get", func(ctx context.Context, _, _ int) error {
			if _, err := b.nc.RequestWithContext(ctx, "cbbench.echo", b.payload); err != nil {
				return err
			}
			_, err := b.stream.GetLastMsgForSubject(ctx, "cbbench.raw.get")
			return err
		}},
	}
}

func (b *baselines) kvUpdate(ctx context.Context, revs []uint64, w, n int, tag string) error {
	key := fmt.Sprintf("%s%d_%d", tag, n, w)
	if revs[w] == 0 {
		rev, err := b.kv.Put(ctx, key, b.payload)
		revs[w] = rev
		return err
	}
	rev, err := b.kv.Update(ctx, key, b.payload, revs[w])
	if err == nil {
		revs[w] = rev
	}
	return err
}

// batch commits [state with CAS + rollup, second state with rollup, event]:
// the shape of one transition, as one atomic batch.
func (b *baselines) batch(ctx context.Context, seqs []uint64, w, n int) error {
	subj := fmt.Sprintf("cbbench.raw.tok.%d.%d", n, w)
	m1 := nats.NewMsg(subj + ".a")
	m1.Data = b.payload
	m1.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(seqs[w], 10))
	m1.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m2 := nats.NewMsg(subj + ".b")
	m2.Data = b.payload
	m2.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m3 := nats.NewMsg("cbbench.raw.batchevents")
	m3.Data = b.payload
	ack, err := jetstreamext.PublishMsgBatch(ctx, b.js, []*nats.Msg{m1, m2, m3},
		jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: 10 * time.Second})
	if err == nil {
		seqs[w] = ack.Sequence - 2
	}
	return err
}
