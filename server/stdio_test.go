package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFrameReader(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, c := range []struct {
		name, in, out string
		refused       []string // "id/bytes" of each refused message
	}{
		{"passes messages through", "{\"id\":1}\n{\"id\":2}\n", "{\"id\":1}\n{\"id\":2}\n", nil},
		{"last message without a newline", "{\"id\":1}\n{\"id\":2}", "{\"id\":1}\n{\"id\":2}", nil},
		{"at the limit", strings.Repeat("y", 63) + "\n", strings.Repeat("y", 63) + "\n", nil},
		{"over the limit by one", strings.Repeat("y", 64) + "\n", "", []string{"null/65"}},
		{"refused with its id", "a\n{\"jsonrpc\":\"2.0\",\"id\":7,\"params\":\"" + long + "\"}\nb\n", "a\nb\n", []string{"7/137"}},
		{"string id", "{\"id\":\"q-1\",\"x\":\"" + long + "\"}\n", "", []string{"\"q-1\"/120"}},
		{"id after the large field", "{\"x\":\"" + long + "\",\"id\":8}\n", "", []string{"null/116"}},
		{"object id is no id", "{\"id\":{\"a\":1},\"x\":\"" + long + "\"}\n", "", []string{"null/122"}},
		{"oversized at end of input", "a\n" + long, "a\n", []string{"null/100"}},
		{"not JSON", long + "\nc\n", "c\n", []string{"null/101"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var refused []string
			// The input arrives one byte per read into a 16-byte buffer,
			// so messages span many chunks.
			f := newFrameReader(nil, 64, func(id json.RawMessage, n int64) {
				if id == nil {
					id = json.RawMessage("null")
				}
				refused = append(refused, fmt.Sprintf("%s/%d", id, n))
			})
			f.r = bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(c.in)), 16)
			var out []byte
			for {
				msg, err := f.message()
				out = append(out, msg...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if string(out) != c.out {
				t.Errorf("out = %q, want %q", out, c.out)
			}
			if !slices.Equal(refused, c.refused) {
				t.Errorf("refused = %v, want %v", refused, c.refused)
			}
		})
	}
}

func TestOversizedResponse(t *testing.T) {
	var m struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct{ Code int }
	}
	if err := json.Unmarshal(oversizedResponse(json.RawMessage("42"), 1<<30), &m); err != nil {
		t.Fatal(err)
	}
	if m.JSONRPC != "2.0" || string(m.ID) != "42" || m.Error.Code != -32600 {
		t.Errorf("response = %+v", m)
	}
	if err := json.Unmarshal(oversizedResponse(nil, 1<<30), &m); err != nil || string(m.ID) != "null" {
		t.Errorf("response without id = %+v, %v", m, err)
	}
}
