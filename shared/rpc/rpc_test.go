package rpc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/natstest"
	"github.com/cbnats/circuitbreaker/shared/rpc"
	"github.com/cbnats/circuitbreaker/shared/subjects"
)

type echoReq struct {
	Name string `json:"name"`
}

func (r *echoReq) Validate() error {
	if r.Name == "bad" {
		return fail.New(fail.BadInput, "name must not be bad")
	}
	return nil
}

type echoResp struct {
	Hello string `json:"hello"`
	ID    string `json:"id"`
}

// serve runs h as endpoint cb.echo and returns a client connection.
func serve(t *testing.T, o rpc.Options, h rpc.Handler[echoReq, echoResp]) *nats.Conn {
	t.Helper()
	ns := natstest.Server(t)
	nc := natstest.Connect(t, ns)
	srv := rpc.NewServer(nc, zerolog.Nop(), o)
	svc, err := rpc.AddService(nc, rpc.Service{Name: "echo", Version: "1.0.0"},
		[]rpc.Spec{{Name: "echo", Subject: "test.echo", Handler: rpc.Endpoint(srv, h)}}, srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(); srv.Wait() })
	if err := nc.Flush(); err != nil { // the endpoint's subscription is registered
		t.Fatal(err)
	}
	return natstest.Connect(t, ns)
}

func echo(ctx context.Context, r *echoReq) (*echoResp, error) {
	switch r.Name {
	case "missing":
		return nil, fail.New(fail.NotFound, "Token not found: x")
	case "guard":
		return nil, fail.New(fail.GuardFailed, "Guard failed: rule 'r'")
	case "oops":
		return nil, errors.New("database on fire")
	case "panic":
		panic("boom")
	case "slow":
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &echoResp{Hello: r.Name, ID: rpc.RequestID(ctx)}, nil
}

func TestErrorsCrossTheWire(t *testing.T) {
	nc := serve(t, rpc.Options{}, echo)
	ctx := rpc.WithRequestID(context.Background(), "req-1")
	cases := []struct {
		name string
		kind *fail.Error
		msg  string
	}{
		{"bad", fail.ErrBadInput, "name must not be bad"},
		{"missing", fail.ErrNotFound, "Token not found: x"},
		{"guard", fail.ErrGuardFailed, "Guard failed: rule 'r'"},
		{"oops", fail.ErrInternal, "internal error"},
		{"panic", fail.ErrInternal, "internal error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rpc.Call[echoReq, echoResp](ctx, nc, "cb._all.test.echo", &echoReq{Name: tc.name})
			if !errors.Is(err, tc.kind) || err.Error() != tc.msg {
				t.Fatalf("err = %v (%v), want %v %q", err, fail.KindOf(err), tc.kind.Kind, tc.msg)
			}
		})
	}
	resp, err := rpc.Call[echoReq, echoResp](ctx, nc, "cb._all.test.echo", &echoReq{Name: "ok"})
	if err != nil || resp.Hello != "ok" || resp.ID != "req-1" {
		t.Fatalf("resp = %+v, %v", resp, err)
	}
}

func TestMalformedBody(t *testing.T) {
	nc := serve(t, rpc.Options{}, echo)
	msg, err := nc.Request("cb._all.test.echo", []byte(`{"name":`), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get(micro.ErrorCodeHeader) != "400" || !strings.HasPrefix(msg.Header.Get(micro.ErrorHeader), "invalid request body") {
		t.Fatalf("headers = %v", msg.Header)
	}
}

// TestCallerDeadlineReachesHandler: the handler's ctx ends when the
// caller's does, so services stop working for callers that left.
func TestCallerDeadlineReachesHandler(t *testing.T) {
	nc := serve(t, rpc.Options{Timeout: time.Minute}, echo)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := rpc.Call[echoReq, echoResp](ctx, nc, "cb._all.test.echo", &echoReq{Name: "slow"})
	if (!errors.Is(err, fail.ErrTimeout) && !errors.Is(err, fail.ErrUnavailable)) || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

// TestOverloadFailsFast: with the pool full, a request whose deadline
// passes while waiting gets UNAVAILABLE instead of queueing forever.
func TestOverloadFailsFast(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	nc := serve(t, rpc.Options{Concurrency: 1}, func(ctx context.Context, r *echoReq) (*echoResp, error) {
		if r.Name == "hold" {
			close(held)
			<-release
		}
		return &echoResp{Hello: r.Name}, nil
	})
	defer close(release)
	go func() {
		_, _ = rpc.Call[echoReq, echoResp](context.Background(), nc, "cb._all.test.echo", &echoReq{Name: "hold"})
	}()
	<-held // "hold" has the only slot
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := rpc.Call[echoReq, echoResp](ctx, nc, "cb._all.test.echo", &echoReq{Name: "next"})
	if !errors.Is(err, fail.ErrUnavailable) && !errors.Is(err, fail.ErrTimeout) {
		t.Fatalf("err = %v, want UNAVAILABLE or TIMEOUT", err)
	}
}

func TestNoResponders(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	_, err := rpc.Call[echoReq, echoResp](context.Background(), nc, "cb.nobody", &echoReq{})
	if !errors.Is(err, fail.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

// TestQueueBoundRefusesAtOnce: past the pool and its queue, a request is
// refused immediately, long before its deadline.
func TestQueueBoundRefusesAtOnce(t *testing.T) {
	held, release := make(chan struct{}, 2), make(chan struct{})
	nc := serve(t, rpc.Options{Concurrency: 1, MaxQueue: 1}, func(ctx context.Context, r *echoReq) (*echoResp, error) {
		held <- struct{}{}
		<-release
		return &echoResp{Hello: r.Name}, nil
	})
	defer close(release)
	for range 2 { // one runs, one waits for the slot
		go func() {
			_, _ = rpc.Call[echoReq, echoResp](context.Background(), nc, "cb._all.test.echo", &echoReq{Name: "hold"})
		}()
	}
	<-held
	// The second "hold" may not be queued yet: an attempt that gets queued
	// instead waits out its own short deadline. Once the queue is full, an
	// attempt is refused at once, far inside that deadline.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		_, err := rpc.Call[echoReq, echoResp](ctx, nc, "cb._all.test.echo", &echoReq{Name: "third"})
		cancel()
		if errors.Is(err, fail.ErrUnavailable) && time.Since(start) < 150*time.Millisecond {
			return
		}
	}
	t.Fatal("never refused at once")
}

// TestClosedServerRefusesAtOnce: after Close (an instance stopping, its
// subscription still draining), a request is refused at once with
// ErrStopping, which NotServed recognises, while the one admitted before
// is answered and Wait waits for it.
func TestClosedServerRefusesAtOnce(t *testing.T) {
	ns := natstest.Server(t)
	nc := natstest.Connect(t, ns)
	srv := rpc.NewServer(nc, zerolog.Nop(), rpc.Options{})
	started, release := make(chan struct{}), make(chan struct{})
	h := func(ctx context.Context, r *echoReq) (*echoResp, error) {
		if r.Name == "wait" {
			close(started)
			<-release
		}
		return &echoResp{Hello: r.Name}, nil
	}
	svc, err := rpc.AddService(nc, rpc.Service{Name: "echo", Version: "1.0.0"},
		[]rpc.Spec{{Name: "echo", Subject: "test.echo", Handler: rpc.Endpoint(srv, h)}}, srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := nc.Flush(); err != nil { // the server has the service's subscriptions
		t.Fatal(err)
	}
	client := natstest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	inFlight := make(chan error, 1)
	go func() {
		_, err := rpc.Call[echoReq, echoResp](ctx, client, "cb._all.test.echo", &echoReq{Name: "wait"})
		inFlight <- err
	}()
	select {
	case <-started:
	case err := <-inFlight:
		t.Fatalf("the first request ended before its handler started: %v", err)
	}
	srv.Close()
	start := time.Now()
	_, err = rpc.Call[echoReq, echoResp](ctx, client, "cb._all.test.echo", &echoReq{Name: "late"})
	if !errors.Is(err, rpc.ErrStopping) || !rpc.NotServed(err) || time.Since(start) > time.Second {
		t.Fatalf("after Close: err = %v after %v, want ErrStopping at once", err, time.Since(start))
	}
	close(release)
	srv.Wait()
	if err := <-inFlight; err != nil {
		t.Fatalf("the request admitted before Close: %v", err)
	}
}

// TestStoppingInstanceIsRetried: a request refused by a stopping instance
// (ErrStopping, never worked on) is sent once more and reaches another.
func TestStoppingInstanceIsRetried(t *testing.T) {
	ns := natstest.Server(t)
	nc, client := natstest.Connect(t, ns), natstest.Connect(t, ns)
	stopping := nats.Header{micro.ErrorHeader: {rpc.ErrStopping.Message}, micro.ErrorCodeHeader: {"503"},
		subjects.HeaderErrorKind: {fail.Unavailable.String()}}
	var first *nats.Subscription
	first, err := nc.QueueSubscribe("cb._all.test.echo", "cb", func(m *nats.Msg) {
		// The other instance is there before this one goes.
		if _, err := nc.QueueSubscribe("cb._all.test.echo", "cb", func(m *nats.Msg) { _ = m.Respond([]byte(`{"hello":"other"}`)) }); err != nil {
			t.Error(err)
		}
		_ = first.Unsubscribe()
		_ = nc.Flush()
		_ = m.RespondMsg(&nats.Msg{Header: stopping})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := rpc.Call[echoReq, echoResp](ctx, client, "cb._all.test.echo", &echoReq{Name: "x"})
	if err != nil || resp.Hello != "other" {
		t.Fatalf("resp = %+v, err = %v; want the other instance's answer", resp, err)
	}
}
