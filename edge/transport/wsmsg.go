package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cbnats/circuitbreaker/edge/gql"
)

// Subprotocol is the WebSocket subprotocol served by WebSocket.
const Subprotocol = "graphql-transport-ws"

// graphql-transport-ws message types.
const (
	msgConnectionInit = "connection_init"
	msgConnectionAck  = "connection_ack"
	msgPing           = "ping"
	msgPong           = "pong"
	msgSubscribe      = "subscribe"
	msgNext           = "next"
	msgError          = "error"
	msgComplete       = "complete"
)

// graphql-transport-ws close codes (PROTOCOL.md) and the standard code used
// for slow clients.
const (
	CloseBadRequest              = 4400 // invalid message
	CloseUnauthorized            = 4401 // subscribe before connection_ack
	CloseForbidden               = 4403 // OnConnect refused
	CloseSubprotocolNotAccepted  = 4406 // no graphql-transport-ws subprotocol
	CloseInitTimeout             = 4408 // no connection_init in time
	CloseSubscriberAlreadyExists = 4409 // duplicate operation id
	CloseTooManyInitRequests     = 4429 // second connection_init
	CloseTryAgainLater           = 1013 // client too slow to read
)

// CodeTooManySubscriptions is the extensions.code of the error sent for an
// operation beyond Options.MaxSubscriptions.
const CodeTooManySubscriptions = "TOO_MANY_SUBSCRIPTIONS"

// inMessage is a decoded client message.
type inMessage struct {
	Type    string
	ID      string
	Payload map[string]any // connection_init, ping, pong
	Request gql.Request    // subscribe
}

// rawMessage is the wire shape of a message before validation.
type rawMessage struct {
	Type    any             `json:"type"`
	ID      any             `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// outMessage is a server message.
type outMessage struct {
	ID      string `json:"id,omitempty"`
	Type    string `json:"type"`
	Payload any    `json:"payload,omitempty"`
}

// errInvalidMessage marks a message that breaks the protocol (close 4400).
var errInvalidMessage = errors.New("invalid message")

// parseMessage decodes and validates one client message like graphql-ws's
// validateMessage; only client-to-server types are accepted.
func parseMessage(data []byte) (inMessage, error) {
	var raw rawMessage
	if err := decodeJSON(data, &raw); err != nil {
		return inMessage{}, fmt.Errorf("%w: message is not a JSON object", errInvalidMessage)
	}
	typ, ok := raw.Type.(string)
	if !ok || typ == "" {
		return inMessage{}, fmt.Errorf("%w: message is missing the 'type' string", errInvalidMessage)
	}
	m := inMessage{Type: typ}
	var err error
	switch typ {
	case msgConnectionInit, msgPing, msgPong:
		m.Payload, err = optionalObject(raw.Payload, "payload")
	case msgSubscribe:
		if m.ID, err = messageID(raw.ID); err == nil {
			m.Request, err = subscribePayload(raw.Payload)
		}
	case msgComplete:
		m.ID, err = messageID(raw.ID)
	default:
		err = fmt.Errorf("unexpected message type %q", typ)
	}
	if err != nil {
		return inMessage{}, fmt.Errorf("%w: %q message: %w", errInvalidMessage, typ, err)
	}
	return m, nil
}

// messageID checks an operation id: a non-empty string.
func messageID(v any) (string, error) {
	id, ok := v.(string)
	if !ok || id == "" {
		return "", errors.New("'id' must be a non-empty string")
	}
	return id, nil
}

// subscribePayload decodes a subscribe payload into a request.
func subscribePayload(raw json.RawMessage) (gql.Request, error) {
	var p map[string]any
	if err := decodeJSON(raw, &p); err != nil || p == nil {
		return gql.Request{}, errors.New("'payload' must be an object")
	}
	var req gql.Request
	var ok bool
	if req.Query, ok = p["query"].(string); !ok {
		return req, errors.New("'payload.query' must be a string")
	}
	if v := p["operationName"]; v != nil {
		if req.OperationName, ok = v.(string); !ok {
			return req, errors.New("'payload.operationName' must be a string")
		}
	}
	if v := p["variables"]; v != nil {
		if req.Variables, ok = v.(map[string]any); !ok {
			return req, errors.New("'payload.variables' must be an object")
		}
	}
	if v := p["extensions"]; v != nil {
		if req.Extensions, ok = v.(map[string]any); !ok {
			return req, errors.New("'payload.extensions' must be an object")
		}
	}
	return req, nil
}

// optionalObject decodes an absent, null or object value.
func optionalObject(raw json.RawMessage, name string) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var v any
	if err := decodeJSON(raw, &v); err != nil {
		return nil, err
	}
	if v == nil {
		return nil, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("'%s' must be an object or null", name)
	}
	return obj, nil
}

// decodeJSON decodes exactly one JSON value with numbers kept as
// json.Number, as the executor expects for variables.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// encodeNext encodes a next message around r's own encoding, which the
// executor wrote as compact JSON: it is not parsed and compacted again (a
// result of megabytes costs one copy).
func encodeNext(id string, r *gql.Response) []byte {
	payload, err := r.MarshalJSON()
	if err != nil {
		return encodeMessage(outMessage{ID: id, Type: msgNext, Payload: internalErrorPayload(msgNext)})
	}
	quoted, _ := json.Marshal(id)
	b := make([]byte, 0, len(payload)+len(quoted)+32)
	b = append(b, `{"id":`...)
	b = append(b, quoted...)
	b = append(b, `,"type":"next","payload":`...)
	b = append(b, payload...)
	return append(b, '}')
}

// encodeMessage encodes a server message; a *gql.Response payload is
// written by its own MarshalJSON (errors first, data only when present).
func encodeMessage(m outMessage) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		// Only a payload that cannot be encoded gets here; report it as
		// an error result rather than dropping the message.
		b, _ = json.Marshal(outMessage{ID: m.ID, Type: m.Type, Payload: internalErrorPayload(m.Type)})
	}
	return b
}

// internalErrorPayload is the payload replacing one that cannot be encoded.
func internalErrorPayload(typ string) any {
	errs := []*gql.Error{{Message: "internal error: encoding response", Extensions: map[string]any{"code": gql.CodeInternal}}}
	if typ == msgError {
		return errs
	}
	return &gql.Response{Errors: errs}
}

// closeReason keeps a close reason within the 123 bytes a close frame
// allows.
func closeReason(reason, fallback string) string {
	if len(reason) <= 123 {
		return reason
	}
	return fallback
}
