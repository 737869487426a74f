package token

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cbnats/circuitbreaker/services/token/store"
	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/flow"
	"github.com/cbnats/circuitbreaker/shared/natstest"
	"github.com/cbnats/circuitbreaker/shared/quota"
	"github.com/cbnats/circuitbreaker/shared/subjects"
	"github.com/cbnats/circuitbreaker/shared/wire"
)

const crashWF = "crash"

// crashService is a token Service on a real server with one workflow,
// crashWF (places a → b), written straight to its stream.
func crashService(t *testing.T) (context.Context, *Service, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	js, err := jetstream.New(natstest.Connect(t, natstest.Server(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: subjects.StreamName(crashWF), Subjects: subjects.StreamSubjects(crashWF),
		AllowDirect: true, AllowRollup: true, AllowAtomicPublish: true, AllowMsgTTL: true, DenyDelete: true}); err != nil {
		t.Fatal(err)
	}
	def, _ := json.Marshal(flow.Definition{ID: crashWF, Name: crashWF, Places: []string{"a", "b"}, InitialPlace: "a",
		Transitions: []flow.Transition{{ID: "go", FromPlaces: []string{"a"}, ToPlace: "b"}}})
	if _, err := js.Publish(ctx, subjects.Definition(crashWF), def); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, subjects.Layout(crashWF), []byte(`{"layout":2}`)); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, js, zerolog.Nop(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	book, err := quota.Watch(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(book.Close)
	usage, err := quota.OpenUsage(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, New(st, nil, &tenants{quotas: book, usage: usage, log: zerolog.Nop()}), js
}

// subjectsLeft returns the subjects of a stream matching filter that still hold messages.
func subjectsLeft(t *testing.T, ctx context.Context, js jetstream.JetStream, stream, filter string) map[string]uint64 {
	t.Helper()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects
}

// deletedEvents counts the token_deleted events of a token.
func deletedEvents(t *testing.T, ctx context.Context, js jetstream.JetStream, tokenID string) int {
	t.Helper()
	st, _ := js.Stream(ctx, subjects.StreamName(crashWF))
	n := 0
	for seq := uint64(1); ; seq++ {
		msg, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			info, _ := st.Info(ctx)
			if seq > info.State.LastSeq {
				return n
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var ev wire.Event
		if msg.Subject == subjects.LifecycleEvents(crashWF) && json.Unmarshal(msg.Data, &ev) == nil &&
			ev.EventType == wire.EventTokenDeleted && ev.TokenID == tokenID {
			n++
		}
	}
}

// TestDeleteFinishesAfterACrash: a delete that stopped after its first
// step (the tombstone and token_deleted event committed; state, history
// and index entry still stored), or after purging the token's messages
// but before its index entry, is finished by running the delete again:
// nothing is left but one token_deleted event, and it answers true; a
// third run answers false.
func TestDeleteFinishesAfterACrash(t *testing.T) {
	ctx, svc, js := crashService(t)
	for _, archived := range []bool{false, true} {
		raw, err := svc.createHere(ctx, &wire.CreateTokenRequest{WorkflowID: crashWF})
		if err != nil {
			t.Fatal(err)
		}
		var tok flow.Token
		_ = json.Unmarshal(*raw, &tok)
		if _, err := svc.fireHere(ctx, &wire.FireRequest{TokenID: tok.ID, TransitionID: "go"}); err != nil {
			t.Fatal(err)
		}
		if archived {
			if _, err := svc.archiveHere(ctx, &wire.ArchiveTokenRequest{TokenID: tok.ID}); err != nil {
				t.Fatal(err)
			}
		}
		// Step 1 alone, as a delete stopped right after it.
		cur, err := svc.store.Get(ctx, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.store.Remove(ctx, cur, wire.Event{EventType: wire.EventTokenDeleted, TokenID: tok.ID, WorkflowID: crashWF,
			Place: cur.Place, Timestamp: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.store.Get(ctx, tok.ID); !errors.Is(err, fail.ErrNotFound) {
			t.Fatalf("after step 1 the token reads: %v", err)
		}
		if left := subjectsLeft(t, ctx, js, subjects.StreamName(crashWF), subjects.TokenHistory(crashWF, tok.ID)); len(left) == 0 {
			t.Fatal("step 1 removed the history: nothing left to finish")
		}
		if _, ok, _ := svc.store.Indexed(ctx, tok.ID); !ok {
			t.Fatal("step 1 removed the index entry")
		}

		// Run again: it finishes.
		raw, err = svc.deleteHere(ctx, &wire.DeleteTokenRequest{TokenID: tok.ID})
		if err != nil || string(*raw) != `{"deleted":true}` {
			t.Fatalf("delete run again: %s, %v", *raw, err)
		}
		for _, filter := range []string{subjects.TokenAnyPlace(crashWF, tok.ID), subjects.ArchivedToken(crashWF, tok.ID), subjects.TokenHistory(crashWF, tok.ID)} {
			if left := subjectsLeft(t, ctx, js, subjects.StreamName(crashWF), filter); len(left) != 0 {
				t.Errorf("archived=%v: left on %s: %v", archived, filter, left)
			}
		}
		if left := subjectsLeft(t, ctx, js, subjects.KVStream(subjects.TokenIndexBucket), subjects.KVKey(subjects.TokenIndexBucket, tok.ID)); len(left) != 0 {
			t.Errorf("archived=%v: index left: %v", archived, left)
		}
		if n := deletedEvents(t, ctx, js, tok.ID); n != 1 {
			t.Errorf("archived=%v: %d token_deleted events, want 1", archived, n)
		}
		raw, err = svc.deleteHere(ctx, &wire.DeleteTokenRequest{TokenID: tok.ID})
		if err != nil || string(*raw) != `{"deleted":false}` {
			t.Fatalf("a third run: %s, %v", *raw, err)
		}
	}

	// Stopped after the purge of the messages, before the index entry: an
	// index entry whose token has nothing left.
	const orphan = "00000000-0000-4000-8000-0000000000aa"
	kv, err := js.KeyValue(ctx, subjects.TokenIndexBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, orphan, []byte(crashWF)); err != nil {
		t.Fatal(err)
	}
	raw, err := svc.deleteHere(ctx, &wire.DeleteTokenRequest{TokenID: orphan})
	if err != nil || string(*raw) != `{"deleted":true}` {
		t.Fatalf("delete of a half-deleted token: %s, %v", *raw, err)
	}
	if left := subjectsLeft(t, ctx, js, subjects.KVStream(subjects.TokenIndexBucket), subjects.KVKey(subjects.TokenIndexBucket, orphan)); len(left) != 0 {
		t.Errorf("index left: %v", left)
	}
}
