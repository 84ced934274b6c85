package tools

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/scopes"
)

// FuzzAppendJSONString checks the row encoder's strings against
// encoding/json: always valid JSON, and the same string once decoded.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `quo"te\back`, "new\nline\ttab\r", "\x00\x01\x1f\x7f",
		"\u2028\u2029", "\xff\xfe invalid", "héllo wörld", "<script>&amp;</script>", "\u202e\u200b\U000e0041"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendJSONString(nil, []byte(s))
		if !json.Valid(got) {
			t.Fatalf("invalid JSON for %q: %s", s, got)
		}
		want, _ := json.Marshal(s)
		var a, b string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want, &b); err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatalf("%q: got %s, encoding/json %s", s, got, want)
		}
	})
}

func TestJSONNumber(t *testing.T) {
	for in, want := range map[string]bool{
		"0": true, "-0": true, "12": true, "12.50": true, "-1.5e-07": true, "1e+20": true, "1E5": true,
		"": false, "-": false, "01": false, ".5": false, "5.": false, "1e": false, "NaN": false,
		"Infinity": false, "-Infinity": false, "1_000": false, "0x10": false, " 1": false,
	} {
		if got := jsonNumber([]byte(in)); got != want {
			t.Errorf("jsonNumber(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestAppendCellCopies proves that an encoded cell shares no memory with
// the buffer it was read from: pgx reuses that buffer for the next row.
func TestAppendCellCopies(t *testing.T) {
	for _, oid := range []uint32{oidJSON, oidJSONB, oidInt4, oidInt8, oidNumeric, oidFloat8, oidBool, oidTimestamp, 25} {
		raw := []byte(`{"a":[1,2,{"b":"c"}]}`)
		switch oid {
		case oidInt4, oidInt8, oidNumeric, oidFloat8:
			raw = []byte("12345")
		case oidBool:
			raw = []byte("t")
		case oidTimestamp:
			raw = []byte("2024-01-02 03:04:05")
		}
		got, _ := appendCell(nil, oid, raw, 1<<20)
		want := string(got)
		for i := range raw {
			raw[i] = ']'
		}
		if string(got) != want {
			t.Fatalf("oid %d: the encoded cell changed with the read buffer: %s", oid, got)
		}
	}
}

// TestAppendCellJSONOneLine: PostgreSQL's json keeps its input's
// whitespace, newlines included, and each row must stay one line of the
// text rendering. Compacting must leave every token as written: escapes,
// duplicate keys, key order, numbers.
func TestAppendCellJSONOneLine(t *testing.T) {
	for _, tc := range []struct {
		oid     uint32
		in, out string
	}{
		{oidJSON, "{\"k\": 1,  \"k\" : \"dup\",\n\t\"arr\": [ 1, 2 ,3 ],\r\n \"esc\": \"caf\\u00e9 \\n\", \"n\": 1.50e+300}",
			`{"k":1,"k":"dup","arr":[1,2,3],"esc":"caf\u00e9 \n","n":1.50e+300}`},
		{oidJSON, "\t\"str\"\n", `"str"`},
		{oidJSON, " 42 ", `42`},
		{oidJSONB, `{"a": [1, 2], "b": "x y"}`, `{"a":[1,2],"b":"x y"}`},
	} {
		got, cut := appendCell([]byte("["), tc.oid, []byte(tc.in), 1<<20)
		if string(got) != "["+tc.out || cut {
			t.Errorf("oid %d, %q: got %s (cut %v), want [%s", tc.oid, tc.in, got, cut, tc.out)
		}
	}
}

// TestUnencodableResultIsAnswered: a result whose structured content
// cannot be encoded becomes an isError answer naming the failure, never a
// dropped response.
func TestUnencodableResultIsAnswered(t *testing.T) {
	env := &Env{Scope: testScope(t), Audit: audit.NewLog(nil, discardLogger()), Log: discardLogger()}
	for name, bad := range map[string]any{
		"NaN":         map[string]any{"x": math.NaN()},
		"channel":     map[string]any{"x": make(chan int)},
		"invalid raw": json.RawMessage(`{"rows":[1,2]]`),
	} {
		t.Run(name, func(t *testing.T) {
			res := env.respond(context.Background(), audit.Event{Tool: "query_readonly"}, time.Now(), nil, nil,
				&mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("ok")}, StructuredContent: bad})
			p := ErrorOf(res)
			if !res.IsError || p == nil || p.Code != "result_not_encodable" || res.StructuredContent != nil {
				t.Fatalf("got %+v", res)
			}
			if _, err := json.Marshal(res); err != nil {
				t.Fatalf("the error answer itself does not encode: %v", err)
			}
			if !strings.Contains(res.Content[0].(mcp.TextContent).Text, "could not be encoded") {
				t.Fatalf("text: %v", res.Content)
			}
		})
	}
	// A good result passes through as the JSON it will be sent as.
	res := env.respond(context.Background(), audit.Event{Tool: "query_readonly"}, time.Now(), nil, nil,
		&mcp.CallToolResult{StructuredContent: map[string]any{"a": 1}})
	if raw, ok := res.StructuredContent.(json.RawMessage); !ok || !reflect.DeepEqual(string(raw), `{"a":1}`) {
		t.Fatalf("got %#v", res.StructuredContent)
	}
}

func testScope(t *testing.T) *scopes.Scope {
	t.Helper()
	s, err := scopes.Parse([]byte(`{"name": "values", "read": {"tables": {"public.orders": {}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func discardLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }
