// Package jsread reads stream messages in one of two ways. Direct gets are
// fast and may be answered by any replica; on a replicated stream a
// follower that has not applied the latest write yet answers with an older
// message. Reads through the stream leader (the STREAM.MSG.GET API) always
// see every acknowledged write. A single server uses direct gets; a
// cluster (replicas > 1) reads through the leader, so read-your-writes
// holds there too.
package jsread

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reader reads messages of any stream.
type Reader struct {
	js     jetstream.JetStream
	leader bool
}

// New returns a Reader; leader selects reads through the stream leader.
func New(js jetstream.JetStream, leader bool) Reader { return Reader{js: js, leader: leader} }

// Leader reports whether reads go through the stream leader.
func (r Reader) Leader() bool { return r.leader }

// Last returns the newest message on subject (which may hold wildcards);
// jetstream.ErrMsgNotFound when there is none.
func (r Reader) Last(ctx context.Context, st jetstream.Stream, subject string) (*jetstream.RawStreamMsg, error) {
	if !r.leader {
		return st.GetLastMsgForSubject(ctx, subject)
	}
	return r.msgGet(ctx, st.CachedInfo().Config.Name, msgGetRequest{LastFor: subject})
}

// Next returns the first message at or after seq on filter through the
// leader; jetstream.ErrMsgNotFound when there is none.
func (r Reader) Next(ctx context.Context, stream string, seq uint64, filter string) (*jetstream.RawStreamMsg, error) {
	return r.msgGet(ctx, stream, msgGetRequest{Seq: seq, NextFor: filter})
}

// LastOf is Last on a stream known by name only.
func (r Reader) LastOf(ctx context.Context, stream, subject string) (*jetstream.RawStreamMsg, error) {
	return r.msgGet(ctx, stream, msgGetRequest{LastFor: subject})
}

type msgGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
}

type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *struct {
		Subject  string    `json:"subject"`
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs,omitempty"`
		Data     []byte    `json:"data,omitempty"`
		Time     time.Time `json:"time"`
	} `json:"message,omitempty"`
}

// codeMessageNotFound is JetStream's "no message found" error code.
const codeMessageNotFound = 10037

func (r Reader) msgGet(ctx context.Context, stream string, req msgGetRequest) (*jetstream.RawStreamMsg, error) {
	body, _ := json.Marshal(req)
	reply, err := r.js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return nil, err
	}
	var resp msgGetResponse
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, err
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == codeMessageNotFound:
		return nil, jetstream.ErrMsgNotFound
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound:
		return nil, jetstream.ErrStreamNotFound
	case resp.Error != nil:
		return nil, resp.Error
	case resp.Message == nil:
		return nil, errors.New("jsread: empty STREAM.MSG.GET response")
	}
	m := resp.Message
	msg := &jetstream.RawStreamMsg{Subject: m.Subject, Sequence: m.Sequence, Data: m.Data, Time: m.Time}
	if len(m.Header) > 0 {
		if msg.Header, err = nats.DecodeHeadersMsg(m.Header); err != nil {
			return nil, err
		}
	}
	return msg, nil
}

// KV returns the value of key in a bucket; jetstream.ErrKeyNotFound when
// it is absent or deleted.
func (r Reader) KV(ctx context.Context, kv jetstream.KeyValue, key string) ([]byte, error) {
	if !r.leader {
		e, err := kv.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		return e.Value(), nil
	}
	msg, err := r.LastOf(ctx, "KV_"+kv.Bucket(), "$KV."+kv.Bucket()+"."+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && msg.Header.Get("KV-Operation") != "") {
		return nil, jetstream.ErrKeyNotFound
	}
	if err != nil {
		return nil, err
	}
	return msg.Data, nil
}
