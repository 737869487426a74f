package systemtest

import (
	"errors"
	"github.com/cbnats/circuitbreaker/deploy/internal/testkit"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/cbnats/circuitbreaker/shared/client"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/natstest"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

// TestMalformedRequests: raw bodies that are not the request shape get a
// 400 with a message, on every endpoint.
func TestMalformedRequests(t *testing.T) {
	s := start(t, "")
	for _, subj := range []string{subjects.WorkflowCreate.In(subjects.AllTenants), subjects.WorkflowGet.In(subjects.AllTenants), subjects.WorkflowList.In(subjects.AllTenants),
		subjects.TokenCreate.In(subjects.AllTenants), subjects.TokenGet.In(subjects.AllTenants), subjects.TokenFind.In(subjects.AllTenants), subjects.TokenList.In(subjects.AllTenants), subjects.TokenInPlace.In(subjects.AllTenants),
		subjects.TokenAvailable.In(subjects.AllTenants), subjects.TokenFire.In(subjects.AllTenants), subjects.TokenUpdate.In(subjects.AllTenants)} {
		for _, body := range []string{`{`, `[]`, `"x"`, `{"id": 5, "tokenId": 5, "workflowId": 5, "first": "x"}`} {
			msg := testkit.Must(s.nc.RequestWithContext(ctx(t), subj, []byte(body)))
			if code := msg.Header.Get(micro.ErrorCodeHeader); code != "400" {
				t.Errorf("%s %s: code %q (%s), want 400", subj, body, code, msg.Header.Get(micro.ErrorHeader))
			}
		}
	}
}

// TestBadInputChangesNothing: invalid requests get a clear typed error and
// leave the stream exactly as it was.
func TestBadInputChangesNothing(t *testing.T) {
	s, c := start(t, ""), ctx(t)
	wf := testkit.Must(s.c.CreateWorkflow(c, race("bad")))
	tok := testkit.Must(s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID}))
	js := testkit.Must(jetstream.New(s.nc))
	before := testkit.Must(testkit.Must(js.Stream(c, subjects.StreamName(wf.ID))).Info(c)).State.LastSeq
	big := `{"blob":"` + strings.Repeat("x", 9<<20) + `"}`
	cases := []struct {
		name string
		call func() error
		kind *fail.Error
		msg  string
	}{
		{"non-canonical uuid", func() error { _, err := s.c.GetToken(c, strings.ToUpper(tok.ID)); return err }, fail.ErrBadInput, "Invalid token ID format"},
		{"not a uuid", func() error { _, err := s.c.GetToken(c, "abc"); return err }, fail.ErrBadInput, "Invalid token ID format"},
		{"unknown token", func() error { _, err := s.c.GetToken(c, "123e4567-e89b-12d3-a456-426614174000"); return err }, fail.ErrNotFound, "Token not found"},
		{"unknown workflow", func() error {
			_, err := s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: "nope"})
			return err
		}, fail.ErrNotFound, "Workflow not found: nope"},
		{"wildcard workflow", func() error { _, err := s.c.TokensInPlace(c, "*", "a", wire.Page{}); return err }, fail.ErrBadInput, "Invalid workflow ID"},
		{"wildcard place", func() error { _, err := s.c.TokensInPlace(c, wf.ID, ">", wire.Page{}); return err }, fail.ErrBadInput, "Invalid place"},
		{"unknown place", func() error { _, err := s.c.TokensInPlace(c, wf.ID, "zz", wire.Page{}); return err }, fail.ErrNotFound, "Place 'zz' not found"},
		{"bad initial place", func() error {
			_, err := s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID, InitialPlace: "zz"})
			return err
		}, fail.ErrBadInput, "Place 'zz'"},
		{"metadata not object", func() error {
			_, err := s.c.CreateToken(c, &wire.CreateTokenRequest{WorkflowID: wf.ID, Metadata: []byte(`[1]`)})
			return err
		}, fail.ErrBadInput, "metadata"},
		{"invalid transition", func() error {
			_, err := s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "nope"})
			return err
		}, fail.ErrInvalidTransition, "Invalid transition"},
		{"oversized data", func() error {
			_, err := s.c.Fire(c, &wire.FireRequest{TokenID: tok.ID, TransitionID: "tick", Data: []byte(big)})
			return err
		}, fail.ErrBadInput, ""},
		{"unsafe place name", func() error {
			r := race("bad2")
			r.Places = append(r.Places, "in review")
			_, err := s.c.CreateWorkflow(c, r)
			return err
		}, fail.ErrBadInput, "Invalid workflow"},
		{"dotted workflow id", func() error { _, err := s.c.CreateWorkflow(c, race("v1.2")); return err }, fail.ErrBadInput, ""},
		{"duplicate workflow id", func() error { _, err := s.c.CreateWorkflow(c, race("bad")); return err }, fail.ErrConflict, "already exists"},
		{"initial place missing", func() error {
			r := race("bad3")
			r.InitialPlace = "x"
			_, err := s.c.CreateWorkflow(c, r)
			return err
		}, fail.ErrBadInput, "Invalid workflow: Initial place 'x' not found in places"},
		{"unknown condition", func() error {
			r := race("bad4")
			r.Transitions[0].Conditions = []string{"no_such_rule"}
			_, err := s.c.CreateWorkflow(c, r)
			return err
		}, fail.ErrBadInput, "no_such_rule"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v (%v), want %v containing %q", err, fail.KindOf(err), tc.kind.Kind, tc.msg)
			}
		})
	}
	after := testkit.Must(testkit.Must(js.Stream(c, subjects.StreamName(wf.ID))).Info(c)).State.LastSeq
	if after != before {
		t.Fatalf("stream moved from %d to %d on bad input", before, after)
	}
	if _, err := js.Stream(c, subjects.StreamName("bad2")); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("invalid workflow left a stream: %v", err)
	}
}

// TestNoResponders: with no service running, a call fails fast as UNAVAILABLE.
func TestNoResponders(t *testing.T) {
	nc := natstest.Connect(t, natstest.Server(t))
	_, err := client.New(nc).GetToken(ctx(t), "123e4567-e89b-12d3-a456-426614174000")
	if !errors.Is(err, fail.ErrUnavailable) {
		t.Fatalf("err = %v, want UNAVAILABLE", err)
	}
}
