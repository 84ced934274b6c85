package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// TestWriteMessageMatchesEncodingJSON: the direct encoding of a tool
// result is the same JSON value encoding/json gives, for every kind of
// text (escapes, controls, invalid UTF-8, line separators, the rows fence)
// and every optional field; messages it does not know go through
// encoding/json.
func TestWriteMessageMatchesEncodingJSON(t *testing.T) {
	texts := []string{
		"", "plain", `quote " backslash \ slash /`, "new\nline\r\ttab", "\x00\x01\x1f\x7f",
		"<rows-0123456789ab>\n[1,\"a&b\"]\n</rows-0123456789ab>", "bad \xff\xfe utf-8 \xe2\x82", "sep \u2028 \u2029 end",
		"emoji 🦫 and ünïcödé", strings.Repeat("x\"", 40000),
	}
	var results []*mcp.CallToolResult
	for _, s := range texts {
		results = append(results, &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(s)}})
	}
	results = append(results,
		&mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("a"), mcp.NewTextContent("b")}, StructuredContent: json.RawMessage(`{"rows":[[1,"x"]],"n":1.50}`)},
		withMeta(&mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("Refused (x): no.")}, IsError: true}, "airlock/error", map[string]any{"code": "x", "reason": "no"}),
		typed(&mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("typed")}}, "complete"),
		&mcp.CallToolResult{Content: []mcp.Content{}},
		// Not direct: other content, other metadata, structured Go values.
		&mcp.CallToolResult{Content: []mcp.Content{mcp.NewImageContent("aGk=", "image/png")}},
		withMeta(&mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("m")}}, "other", 1),
		&mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("s")}, StructuredContent: map[string]any{"a": []int{1}}},
	)
	for i, res := range results {
		for _, id := range []any{int64(7), "s-7"} {
			msg := mcp.NewJSONRPCResultResponse(mcp.NewRequestId(id), res)
			var buf bytes.Buffer
			w := bufio.NewWriterSize(&buf, 64)
			if err := writeMessage(w, msg); err != nil {
				t.Fatalf("result %d: %v", i, err)
			}
			out := buf.Bytes()
			if bytes.Count(out, []byte("\n")) != 1 || out[len(out)-1] != '\n' {
				t.Fatalf("result %d: not one line: %q", i, out)
			}
			want, err := json.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			var got, exp any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("result %d: invalid JSON %q: %v", i, out, err)
			}
			if err := json.Unmarshal(want, &exp); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, exp) {
				t.Errorf("result %d:\n got %.300s\nwant %.300s", i, out, want)
			}
		}
	}
	// Structured content that is not JSON is refused before anything is
	// written: the stream never carries half a message.
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	bad := &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("x")}, StructuredContent: json.RawMessage(`{"a":`)}
	if err := writeMessage(w, mcp.NewJSONRPCResultResponse(mcp.NewRequestId(int64(1)), bad)); err == nil || buf.Len() != 0 || w.Buffered() != 0 {
		t.Errorf("bad structured content: err %v, %d bytes written", err, buf.Len()+w.Buffered())
	}
}

func withMeta(res *mcp.CallToolResult, key string, v any) *mcp.CallToolResult {
	res.Meta = &mcp.Meta{AdditionalFields: map[string]any{key: v}}
	return res
}

func typed(res *mcp.CallToolResult, t mcp.ResultType) *mcp.CallToolResult {
	res.ResultType = t
	return res
}
