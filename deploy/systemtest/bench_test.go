package systemtest

import (
	"context"
	"fmt"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// The benchmarks run our paths beside bare JetStream clients doing the
// same durable writes, in the same process and run, so their ratio means
// something on a noisy machine. RunParallel with SetParallelism(8) runs 8
// clients per core: 16 on this 2-core machine, 8 with -cpu 1.
//
//	go test ./deploy/systemtest -run '^$' -bench . -benchtime 2s

func benchSystem(b *testing.B) (*system, context.Context) {
	s := startN(b, "", 1, nil)
	testkit.Must(s.c.CreateWorkflow(context.Background(), race("bench")))
	return s, context.Background()
}

func parallel(b *testing.B, f func(pb *testing.PB)) {
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(f)
}

func BenchmarkCreateToken(b *testing.B) {
	s, c := benchSystem(b)
	parallel(b, func(pb *testing.PB) {
		for pb.Next() {
			testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "bench"}))
		}
	})
}

func BenchmarkFire(b *testing.B) {
	s, c := benchSystem(b)
	var next atomic.Int64
	parallel(b, func(pb *testing.PB) {
		tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "bench"}))
		_ = next.Add(1)
		for pb.Next() {
			testkit.Must(s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "tick"}))
		}
	})
}

func BenchmarkGetToken(b *testing.B) {
	s, c := benchSystem(b)
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "bench"}))
	parallel(b, func(pb *testing.PB) {
		for pb.Next() {
			testkit.Must(s.c.GetToken(c, tok.ID))
		}
	})
}

// bareJS is a plain JetStream client on the same server, over TCP like the
// clients above.
func bareJS(b *testing.B, s *system) jetstream.JetStream {
	nc := testkit.Must(nats.Connect(s.stack.ClientURL()))
	b.Cleanup(nc.Close)
	return testkit.Must(jetstream.New(nc))
}

var tokenBody = testkit.Must(jsonBody(&flow.Token{ID: "123e4567-e89b-12d3-a456-426614174000", WorkflowID: "bench", Place: "a",
	Data: []byte(`{}`), Metadata: []byte(`{}`), Records: 1}))

// BenchmarkBareKVUpdatePlusEvent is what a user would hand-write: a KV
// compare-and-swap update, then a separate event publish (not atomic).
func BenchmarkBareKVUpdatePlusEvent(b *testing.B) {
	s, c := benchSystem(b)
	js := bareJS(b, s)
	kv := testkit.Must(js.CreateKeyValue(c, jetstream.KeyValueConfig{Bucket: "bare"}))
	var n atomic.Int64
	parallel(b, func(pb *testing.PB) {
		key := "t" + strconv.FormatInt(n.Add(1), 10)
		rev := testkit.Must(kv.Create(c, key, tokenBody))
		for i := 0; pb.Next(); i++ {
			rev = testkit.Must(kv.Update(c, key, tokenBody, rev))
			testkit.Must(js.Publish(c, "workflows.bench.events.transitions", tokenBody, jetstream.WithMsgID(fmt.Sprintf("%s:%d", key, i))))
		}
	})
}

// BenchmarkBareAtomicBatch commits one atomic batch (state + event) per change.
func BenchmarkBareAtomicBatch(b *testing.B) {
	s, c := benchSystem(b)
	js := bareJS(b, s)
	var n atomic.Int64
	parallel(b, func(pb *testing.PB) {
		subj := "workflows.bench.places.a.tokens.bare" + strconv.FormatInt(n.Add(1), 10)
		seq := uint64(0)
		for i := 0; pb.Next(); i++ {
			st := nats.NewMsg(subj)
			st.Data = tokenBody
			st.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(seq, 10))
			st.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
			ev := nats.NewMsg("workflows.bench.events.transitions")
			ev.Data = tokenBody
			ack := testkit.Must(jetstreamext.PublishMsgBatch(c, js, []*nats.Msg{st, ev}, jetstreamext.BatchFlowControl{AckTimeout: rpcTimeout}))
			seq = ack.Sequence - 1
		}
	})
}

// BenchmarkBareDirectGet is the raw read under GetToken.
func BenchmarkBareDirectGet(b *testing.B) {
	s, c := benchSystem(b)
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "bench"}))
	js := bareJS(b, s)
	st := testkit.Must(js.Stream(c, "WORKFLOW_bench"))
	parallel(b, func(pb *testing.PB) {
		for pb.Next() {
			testkit.Must(st.GetLastMsgForSubject(c, tok.NatsSubject))
		}
	})
}
