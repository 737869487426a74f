package transport

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"init", `{"type":"connection_init"}`, true},
		{"init null payload", `{"type":"connection_init","payload":null}`, true},
		{"init object payload", `{"type":"connection_init","payload":{"a":1}}`, true},
		{"ping array payload", `{"type":"ping","payload":[]}`, false},
		{"subscribe", `{"type":"subscribe","id":"1","payload":{"query":"{a}","operationName":null,"variables":{"n":1},"extensions":null}}`, true},
		{"subscribe empty id", `{"type":"subscribe","id":"","payload":{"query":"{a}"}}`, false},
		{"subscribe query not string", `{"type":"subscribe","id":"1","payload":{"query":1}}`, false},
		{"subscribe variables array", `{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":[]}}`, false},
		{"subscribe operationName number", `{"type":"subscribe","id":"1","payload":{"query":"{a}","operationName":1}}`, false},
		{"subscribe extensions string", `{"type":"subscribe","id":"1","payload":{"query":"{a}","extensions":"x"}}`, false},
		{"subscribe no payload", `{"type":"subscribe","id":"1"}`, false},
		{"complete", `{"type":"complete","id":"1"}`, true},
		{"complete no id", `{"type":"complete"}`, false},
		{"ack from client", `{"type":"connection_ack"}`, false},
		{"error from client", `{"type":"error","id":"1","payload":[{"message":"x"}]}`, false},
		{"type number", `{"type":1}`, false},
		{"array", `[]`, false},
		{"null", `null`, false},
		{"two values", `{"type":"ping"}{}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseMessage([]byte(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v; want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, errInvalidMessage) {
				t.Fatalf("err %v does not wrap errInvalidMessage", err)
			}
		})
	}
}

func TestParseMessageKeepsNumbers(t *testing.T) {
	m, err := parseMessage([]byte(`{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":{"n":12345678901234567890}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := m.Request.Variables["n"].(json.Number); !ok || n.String() != "12345678901234567890" {
		t.Fatalf("variable n = %#v; want json.Number", m.Request.Variables["n"])
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"type":"subscribe","id":"1","payload":{"query":"{a}"}}`))
	f.Add([]byte(`{"type":"ping","payload":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMessage(data)
		if err == nil && m.Type == msgSubscribe && m.ID == "" {
			t.Fatal("subscribe accepted without id")
		}
	})
}
